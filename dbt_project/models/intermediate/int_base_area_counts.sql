-- Counts per report cycle and base area (the level deliveries carry), each split by the base area's successor
-- on the current geography version (current_base_area_id, int_base_area_successors): every other level adds
-- these up, on the cycle's own version over base_area_id (int_area_measures, along the geography's
-- memberships), on the current version over current_base_area_id (int_area_measures_harmonised). A person of
-- a retired base area is placed in one successor by a number drawn from its pseudonymised key, the same for
-- the register and the benefit records, so every count stays whole and adds up. A base area with neither a
-- resident nor a recipient has no row here; int_area_measures gives every base area of the geography its
-- zeros, so this model does not depend on the geography's areas and a changed geography needs no recount.
--
-- Incremental by report cycle: the only model that reads every person, so it recomputes only the cycles
-- whose deliveries were (re)loaded since it counted them (raw.deliveries.loaded_at), that it has not
-- counted yet, or that it counted with another SGB-II age bound or another placement onto the current
-- version (conversion_stamp); a cycle no longer in the register is dropped; a table from before these
-- stamps is recomputed whole. A change of this model's SQL needs a full refresh (the dbt asset's
-- `full_refresh` run config, or `dbt build --full-refresh`).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='report_cycle',
    on_schema_change='sync_all_columns',
    post_hook="delete from {{ this }} where report_cycle not in (select report_cycle from {{ ref('int_report_cycles') }})",
) }}
{% set bound = var('sgb2_age_bound') %}
with successors as (
    select * from {{ ref('int_base_area_successors') }}
),

-- what the placement onto the current version rests on: a changed conversion or a new latest version
-- recounts every cycle
placement as (
    select md5(coalesce(string_agg(
        concat_ws('|', base_area_id, current_base_area_id, placement_lower, placement_upper), ';'
        order by base_area_id, current_base_area_id), '')) as conversion_stamp
    from successors
),

loads as (
    select report_cycle, max(loaded_at) as deliveries_loaded_at
    from {{ source('raw', 'deliveries') }}
    group by report_cycle
),

cycles as (
    select report_cycles.report_cycle, loads.deliveries_loaded_at
    from {{ ref('int_report_cycles') }} as report_cycles
    left join loads on report_cycles.report_cycle = loads.report_cycle
    {% if is_incremental() and 'conversion_stamp' in adapter.get_columns_in_relation(this) | map(attribute='name') %}
    where not exists (
        select 1 from {{ this }} as counted
        where counted.report_cycle = report_cycles.report_cycle
            and counted.deliveries_loaded_at is not distinct from loads.deliveries_loaded_at
            and counted.sgb2_age_bound = {{ bound }}
            and counted.conversion_stamp = (select conversion_stamp from placement)
    )
    {% endif %}
),

-- each person with its base area's successor on the current version (null for a base area without one,
-- which the own-version counts keep and assert_harmonised_levels_add_up_to_the_own_city reports)
persons as (
    select persons.*, successors.current_base_area_id
    from {{ ref('stg_register__persons') }} as persons
    left join successors
        on persons.base_area_id = successors.base_area_id
        and {{ placement_number('persons.person_key') }} >= successors.placement_lower
        and {{ placement_number('persons.person_key') }} < successors.placement_upper
    where persons.is_main_residence and persons.report_cycle in (select report_cycle from cycles)
),

transfer_recipients as (
    select recipients.*, successors.current_base_area_id
    from {{ ref('int_transfer_recipients') }} as recipients
    left join successors
        on recipients.base_area_id = successors.base_area_id
        and {{ placement_number('recipients.person_key') }} >= successors.placement_lower
        and {{ placement_number('recipients.person_key') }} < successors.placement_upper
    where recipients.report_cycle in (select report_cycle from cycles)
),

residents as (
    select
        report_cycle,
        base_area_id,
        current_base_area_id,
        count(*) as residents,
        count(*) filter (where age_years < 15) as residents_age_0_14,
        count(*) filter (where age_years between 15 and 64) as residents_age_15_64,
        count(*) filter (where age_years >= 65) as residents_age_65_plus,
        count(*) filter (where age_years < 18) as residents_age_0_17,
        count(*) filter (where age_years < 21) as residents_age_0_20,
        count(*) filter (where age_years between 18 and 64) as residents_age_18_64,
        count(*) filter (where age_years < {{ bound }}) as residents_below_sgb2_age_bound,
        count(*) filter (where is_non_german) as residents_non_german
    from persons
    group by report_cycle, base_area_id, current_base_area_id
),

recipients as (
    select
        report_cycle,
        base_area_id,
        current_base_area_id,
        count(*) as recipients_transfer,
        count(*) filter (where age_years < 15) as recipients_transfer_age_0_14,
        count(*) filter (where age_years >= 65) as recipients_transfer_age_65_plus,
        count(*) filter (where scheme = 'sgb2') as recipients_sgb2,
        count(*) filter (where scheme = 'sgb12_hlu') as recipients_sgb12_hlu,
        count(*) filter (where scheme = 'sgb12_gsi') as recipients_sgb12_gsi,
        count(*) filter (where scheme = 'asylblg') as recipients_asylblg
    from transfer_recipients
    group by report_cycle, base_area_id, current_base_area_id
)

select
    cycles.report_cycle,
    counted.base_area_id,
    counted.current_base_area_id,
    coalesce(residents.residents, 0) as residents,
    coalesce(residents.residents_age_0_14, 0) as residents_age_0_14,
    coalesce(residents.residents_age_15_64, 0) as residents_age_15_64,
    coalesce(residents.residents_age_65_plus, 0) as residents_age_65_plus,
    coalesce(residents.residents_age_0_17, 0) as residents_age_0_17,
    coalesce(residents.residents_age_0_20, 0) as residents_age_0_20,
    coalesce(residents.residents_age_18_64, 0) as residents_age_18_64,
    coalesce(residents.residents_below_sgb2_age_bound, 0) as residents_below_sgb2_age_bound,
    coalesce(residents.residents_non_german, 0) as residents_non_german,
    coalesce(recipients.recipients_transfer, 0) as recipients_transfer,
    coalesce(recipients.recipients_transfer_age_0_14, 0) as recipients_transfer_age_0_14,
    coalesce(recipients.recipients_transfer_age_65_plus, 0) as recipients_transfer_age_65_plus,
    coalesce(recipients.recipients_sgb2, 0) as recipients_sgb2,
    coalesce(recipients.recipients_sgb12_hlu, 0) as recipients_sgb12_hlu,
    coalesce(recipients.recipients_sgb12_gsi, 0) as recipients_sgb12_gsi,
    coalesce(recipients.recipients_asylblg, 0) as recipients_asylblg,
    -- what the counts rest on (not measures): the deliveries' load time, the SGB-II age bound and the
    -- placement onto the current version
    cycles.deliveries_loaded_at,
    {{ bound }} as sgb2_age_bound,
    (select conversion_stamp from placement) as conversion_stamp
from cycles
inner join (
    select report_cycle, base_area_id, current_base_area_id from residents
    union
    select report_cycle, base_area_id, current_base_area_id from recipients
) as counted
    on cycles.report_cycle = counted.report_cycle
left join residents
    on counted.report_cycle = residents.report_cycle and counted.base_area_id = residents.base_area_id
    and counted.current_base_area_id is not distinct from residents.current_base_area_id
left join recipients
    on counted.report_cycle = recipients.report_cycle and counted.base_area_id = recipients.base_area_id
    and counted.current_base_area_id is not distinct from recipients.current_base_area_id
