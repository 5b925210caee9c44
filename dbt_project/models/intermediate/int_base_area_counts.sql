-- Counts per report cycle and base area (the level deliveries carry), each split by the base area's successor
-- on the current geography version (current_base_area_id, int_base_area_successors): every other level adds
-- these up, on the cycle's own version over base_area_id (int_area_measures, along the geography's
-- memberships), on the current version over current_base_area_id (int_area_measures_harmonised). A person of
-- a retired base area is placed in one successor by a number drawn from its pseudonymised key, the same for
-- the register and the benefit records, so every count stays whole and adds up. A base area with neither a
-- resident nor a recipient has no row here; int_area_measures gives every base area of the geography its
-- zeros, so this model does not depend on the geography's areas and a changed geography needs no recount.
--
-- The unemployed are counted in the base area of their unemployment record, by its legal basis (the
-- Bundesagentur's Rechtskreis), so unemployed = unemployed_sgb2 + unemployed_sgb3. A transfer recipient (SGB II
-- or SGB XII) whose person key is in the cycle's unemployment extract is unemployed, all others count in
-- recipients_transfer_not_unemployed (the MSS's S3 numerator), in the area of their benefit record. An
-- unemployed person with legal basis SGB II but no SGB II record, or with an SGB II record in another area,
-- is a supplier's inconsistency: each record still counts once, where it was delivered (the unemployed in
-- the unemployment record's area; the SGB II record is then not "not unemployed"), and the warning test
-- assert_unemployed_sgb2_match_an_sgb2_record counts such persons per cycle.
-- Households (from the register's household key, among main residents) count in the row of their oldest
-- member (ties: the smaller person key), once however many areas their members live in. Moves compare a cycle
-- with the previous one by pseudonymised person key (see moves_in / moves_out below); for the first cycle they
-- are null, never zero.
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

-- the base areas split between several successors: only their persons need a placement number
split_base_areas as (
    select base_area_id from successors group by base_area_id having count(*) > 1
),

-- the first report cycle of the current geography version: a cycle from it on whose previous cycle lies
-- before it compares across the reform
version as (
    select any_value(geography_version) as geography_version from {{ ref('int_area_harmonisation') }}
),

-- what the placement onto the current version rests on: a changed conversion or a new latest version
-- recounts every cycle
placement as (
    select md5(coalesce(string_agg(
        concat_ws('|', base_area_id, current_base_area_id, placement_lower, placement_upper), ';'
        order by base_area_id, current_base_area_id), '') || '|' || coalesce(cast(
        (select geography_version from version) as varchar), '')) as conversion_stamp
    from successors
),

-- a cycle's counts rest on its own deliveries and, for the moves, on the previous cycle's register
loads as (
    select report_cycles.report_cycle, max(deliveries.loaded_at) as deliveries_loaded_at
    from {{ ref('int_report_cycles') }} as report_cycles
    inner join {{ source('raw', 'deliveries') }} as deliveries
        on deliveries.report_cycle = report_cycles.report_cycle
        or (deliveries.report_cycle = report_cycles.previous_report_cycle and deliveries.source = 'register')
    group by report_cycles.report_cycle
),

cycles as (
    select report_cycles.report_cycle, loads.deliveries_loaded_at
    from {{ ref('int_report_cycles') }} as report_cycles
    left join loads on report_cycles.report_cycle = loads.report_cycle
    {% if is_incremental() and 'migration_background_definition' in adapter.get_columns_in_relation(this) | map(attribute='name') %}
    where not exists (
        select 1 from {{ this }} as counted
        where counted.report_cycle = report_cycles.report_cycle
            and counted.deliveries_loaded_at is not distinct from loads.deliveries_loaded_at
            and counted.sgb2_age_bound = {{ bound }}
            and counted.migration_background_definition = {{ migration_background_definition() }}
            and counted.conversion_stamp = (select conversion_stamp from placement)
    )
    {% endif %}
),

-- each person with its base area's successor on the current version (null for a base area without one,
-- which the own-version counts keep and assert_harmonised_levels_add_up_to_the_own_city reports). Not
-- materialized: each count below streams the persons from the table (at W3, 18 M rows, holding them once
-- for all counts spilled under the memory limit: 38 s against 18 s streamed).
persons as not materialized (
    {{ placed_on_current_version(ref('stg_register__persons'),
        "is_main_residence and report_cycle in (select report_cycle from cycles)") }}
),

transfer_recipients as not materialized (
    {{ placed_on_current_version(ref('int_transfer_recipients'), "report_cycle in (select report_cycle from cycles)") }}
),

unemployed_persons as not materialized (
    {{ placed_on_current_version(ref('stg_unemployment__persons'), "report_cycle in (select report_cycle from cycles)") }}
),

residents as (
    select
        report_cycle,
        base_area_id,
        current_base_area_id,
        count(*) as residents,
        count(*) filter (where age_years < 15) as residents_age_0_14,
        count(*) filter (where age_years between 15 and 64) as residents_age_15_64,
        count(*) filter (where age_years between 15 and 24) as residents_age_15_24,
        count(*) filter (where age_years >= 65) as residents_age_65_plus,
        count(*) filter (where age_years < 18) as residents_age_0_17,
        count(*) filter (where age_years < 21) as residents_age_0_20,
        count(*) filter (where age_years between 18 and 64) as residents_age_18_64,
        count(*) filter (where age_years < {{ bound }}) as residents_below_sgb2_age_bound,
        count(*) filter (where is_non_german) as residents_non_german,
        count(*) filter (where has_migration_background) as residents_migration_background
    from persons
    group by report_cycle, base_area_id, current_base_area_id
),

-- each household of main residents once, in the row of its oldest member (ties: the smaller person key). Nearly
-- every household lives in one area: one pass of fixed-size sums over its members (min and max of short area
-- keys) gives its area, its adults and children, and whether it is spread over several areas (or placed in
-- several successors); only a spread household keeps its key
household_members as (
    select
        report_cycle,
        min(base_area_id) as base_area_id,
        min(current_base_area_id) as current_base_area_id,
        count(*) filter (where age_years >= 18) as adults,
        count(*) filter (where age_years < 18) as children,
        case when min(base_area_id) <> max(base_area_id)
                or min(current_base_area_id) <> max(current_base_area_id)
                or count(current_base_area_id) not in (0, count(*))
            then household_key end as spread_household_key
    from persons
    group by report_cycle, household_key
),

-- the households counted per area, each spread household in a row of its own: a few rows per area, so that
-- the two readers below share a small result and not one row per household (DuckDB materializes what two
-- readers share: with the 10 M households' 64-character keys the households took 6.4 s at W3, now 5.4 s)
household_counts as (
    select
        report_cycle,
        base_area_id,
        current_base_area_id,
        spread_household_key,
        count(*) as households,
        count(*) filter (where children > 0) as households_with_children,
        -- exactly one adult (18 or older) and at least one child under 18
        count(*) filter (where children > 0 and adults = 1) as households_single_parent
    from household_members
    group by all
),

-- a spread household's oldest member: the smallest (minus age, person key, areas) of its members. min over a
-- struct compares field by field and, unlike first(... order by ...) or arg_min, aggregates millions of
-- households within the memory limit (it spills)
spread_oldest_members as (
    select
        persons.report_cycle,
        persons.household_key,
        min(struct_pack(
            minus_age := -persons.age_years,
            person_key := persons.person_key,
            base_area_id := persons.base_area_id,
            current_base_area_id := persons.current_base_area_id
        )) as oldest_member
    from persons
    semi join household_counts as spread
        on persons.report_cycle = spread.report_cycle
        and persons.household_key = spread.spread_household_key
    group by persons.report_cycle, persons.household_key
),

households as (
    select
        household_counts.report_cycle,
        case when spread.household_key is null then household_counts.base_area_id
            else spread.oldest_member.base_area_id end as base_area_id,
        case when spread.household_key is null then household_counts.current_base_area_id
            else spread.oldest_member.current_base_area_id end as current_base_area_id,
        cast(sum(household_counts.households) as bigint) as households,
        cast(sum(household_counts.households_with_children) as bigint) as households_with_children,
        cast(sum(household_counts.households_single_parent) as bigint) as households_single_parent
    from household_counts
    left join spread_oldest_members as spread
        on household_counts.report_cycle = spread.report_cycle
        and household_counts.spread_household_key = spread.household_key
    group by all
),

-- each counted cycle with its previous cycle (the first cycle has none: its moves are null) and whether the
-- geography reform onto the current version lies between the two
pairs as (
    select
        report_cycles.report_cycle,
        report_cycles.previous_report_cycle,
        previous.reference_date as previous_reference_date,
        coalesce(report_cycles.previous_report_cycle < (select geography_version from version)
            and report_cycles.report_cycle >= (select geography_version from version), false) as crosses_reform
    from {{ ref('int_report_cycles') }} as report_cycles
    inner join {{ ref('int_report_cycles') }} as previous
        on previous.report_cycle = report_cycles.previous_report_cycle
    where report_cycles.report_cycle in (select report_cycle from cycles)
),

-- the main residents of the previous cycle, each in the base area it left from as the later cycle counts
-- it: its own base area, or across a reform its successor by the placement number (current_base_area_id)
previous_persons as (
    select
        pairs.report_cycle,
        pairs.crosses_reform,
        previous.person_key,
        previous.base_area_id as previous_base_area_id,
        case when pairs.crosses_reform then coalesce(previous.current_base_area_id, previous.base_area_id)
            else previous.base_area_id end as base_area_id,
        previous.current_base_area_id
    from pairs
    inner join ({{ placed_on_current_version(ref('stg_register__persons'), 'is_main_residence') }}) as previous
        on previous.report_cycle = pairs.previous_report_cycle
),

-- the base areas of the later cycle that are the same area as a previous resident's: its base area, or
-- across a reform every successor of it
same_areas as (
    select previous_persons.report_cycle, previous_persons.person_key, previous_persons.previous_base_area_id as base_area_id
    from previous_persons
    where not previous_persons.crosses_reform
    union all
    select previous_persons.report_cycle, previous_persons.person_key, successors.current_base_area_id
    from previous_persons
    inner join successors on previous_persons.previous_base_area_id = successors.base_area_id
    where previous_persons.crosses_reform
),

-- moves out: a main resident of the previous cycle who is no main resident of the same area now (moved
-- away, within the city or out of it, or died: a stock extract cannot tell), matched by person key
moves_out as (
    select report_cycle, base_area_id, current_base_area_id, count(*) as moves_out
    from previous_persons
    where not exists (
        select 1 from persons
        inner join same_areas
            on same_areas.report_cycle = persons.report_cycle
            and same_areas.person_key = persons.person_key
            and same_areas.base_area_id = persons.base_area_id
        where persons.report_cycle = previous_persons.report_cycle
            and persons.person_key = previous_persons.person_key
    )
    group by report_cycle, base_area_id, current_base_area_id
),

-- moves in: a main resident who moved into its address after the previous cycle's reference date, not at
-- its birth (a birth is no move), and was no main resident of the same area then (a move inside the area is
-- no move into it); an unknown move-in date is not counted
moves_in as (
    select persons.report_cycle, persons.base_area_id, persons.current_base_area_id, count(*) as moves_in
    from persons
    inner join pairs on persons.report_cycle = pairs.report_cycle
    where persons.move_in_date > pairs.previous_reference_date
        and not persons.moved_in_at_birth
        and not exists (
            select 1 from same_areas
            where same_areas.report_cycle = persons.report_cycle
                and same_areas.person_key = persons.person_key
                and same_areas.base_area_id = persons.base_area_id
        )
    group by persons.report_cycle, persons.base_area_id, persons.current_base_area_id
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
        count(*) filter (where scheme = 'asylblg') as recipients_asylblg,
        count(*) filter (where scheme = 'sgb2' and age_years < 15) as recipients_sgb2_age_0_14,
        count(*) filter (where scheme = 'sgb12_gsi' and age_years >= 65) as recipients_sgb12_gsi_age_65_plus,
        count(*) filter (
            where scheme in ('sgb2', 'sgb12_hlu', 'sgb12_gsi') and not exists (
                select 1 from unemployed_persons as unemployed
                where unemployed.report_cycle = transfer_recipients.report_cycle
                    and unemployed.person_key = transfer_recipients.person_key
            )
        ) as recipients_transfer_not_unemployed
    from transfer_recipients
    group by report_cycle, base_area_id, current_base_area_id
),

unemployed as (
    select
        report_cycle,
        base_area_id,
        current_base_area_id,
        count(*) as unemployed,
        count(*) filter (where is_long_term) as unemployed_long_term,
        count(*) filter (where age_years between 15 and 24) as unemployed_age_15_24,
        count(*) filter (where legal_basis = 'SGB II') as unemployed_sgb2,
        count(*) filter (where legal_basis = 'SGB III') as unemployed_sgb3
    from unemployed_persons
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
    coalesce(residents.residents_migration_background, 0) as residents_migration_background,
    coalesce(households.households, 0) as households,
    coalesce(households.households_with_children, 0) as households_with_children,
    coalesce(households.households_single_parent, 0) as households_single_parent,
    case when pairs.report_cycle is not null then coalesce(moves_in.moves_in, 0) end as moves_in,
    case when pairs.report_cycle is not null then coalesce(moves_out.moves_out, 0) end as moves_out,
    coalesce(recipients.recipients_transfer, 0) as recipients_transfer,
    coalesce(recipients.recipients_transfer_age_0_14, 0) as recipients_transfer_age_0_14,
    coalesce(recipients.recipients_transfer_age_65_plus, 0) as recipients_transfer_age_65_plus,
    coalesce(recipients.recipients_sgb2, 0) as recipients_sgb2,
    coalesce(recipients.recipients_sgb12_hlu, 0) as recipients_sgb12_hlu,
    coalesce(recipients.recipients_sgb12_gsi, 0) as recipients_sgb12_gsi,
    coalesce(recipients.recipients_asylblg, 0) as recipients_asylblg,
    coalesce(residents.residents_age_15_24, 0) as residents_age_15_24,
    coalesce(recipients.recipients_sgb2_age_0_14, 0) as recipients_sgb2_age_0_14,
    coalesce(recipients.recipients_sgb12_gsi_age_65_plus, 0) as recipients_sgb12_gsi_age_65_plus,
    coalesce(recipients.recipients_transfer_not_unemployed, 0) as recipients_transfer_not_unemployed,
    coalesce(unemployed.unemployed, 0) as unemployed,
    coalesce(unemployed.unemployed_long_term, 0) as unemployed_long_term,
    coalesce(unemployed.unemployed_age_15_24, 0) as unemployed_age_15_24,
    coalesce(unemployed.unemployed_sgb2, 0) as unemployed_sgb2,
    coalesce(unemployed.unemployed_sgb3, 0) as unemployed_sgb3,
    -- what the counts rest on (not measures): the deliveries' load time, the SGB-II age bound and the
    -- placement onto the current version
    cycles.deliveries_loaded_at,
    {{ bound }} as sgb2_age_bound,
    {{ migration_background_definition() }} as migration_background_definition,
    (select conversion_stamp from placement) as conversion_stamp
from cycles
inner join (
    select report_cycle, base_area_id, current_base_area_id from residents
    union
    select report_cycle, base_area_id, current_base_area_id from recipients
    union
    select report_cycle, base_area_id, current_base_area_id from unemployed
    union
    select report_cycle, base_area_id, current_base_area_id from moves_out
) as counted
    on cycles.report_cycle = counted.report_cycle
left join pairs on cycles.report_cycle = pairs.report_cycle
left join residents
    on counted.report_cycle = residents.report_cycle and counted.base_area_id = residents.base_area_id
    and counted.current_base_area_id is not distinct from residents.current_base_area_id
left join recipients
    on counted.report_cycle = recipients.report_cycle and counted.base_area_id = recipients.base_area_id
    and counted.current_base_area_id is not distinct from recipients.current_base_area_id
left join unemployed
    on counted.report_cycle = unemployed.report_cycle and counted.base_area_id = unemployed.base_area_id
    and counted.current_base_area_id is not distinct from unemployed.current_base_area_id
left join households
    on counted.report_cycle = households.report_cycle and counted.base_area_id = households.base_area_id
    and counted.current_base_area_id is not distinct from households.current_base_area_id
left join moves_in
    on counted.report_cycle = moves_in.report_cycle and counted.base_area_id = moves_in.base_area_id
    and counted.current_base_area_id is not distinct from moves_in.current_base_area_id
left join moves_out
    on counted.report_cycle = moves_out.report_cycle and counted.base_area_id = moves_out.base_area_id
    and counted.current_base_area_id is not distinct from moves_out.current_base_area_id
