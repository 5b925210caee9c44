-- Every person receiving a transfer benefit (SGB II, SGB XII, AsylbLG) at a reference date, placed in the
-- base area of the benefit record (the level deliveries carry). A person in several schemes is counted once, in the first of
-- SGB II, SGB XII, AsylbLG. Person-level: private warehouse only. A view: int_base_area_counts reads it
-- only for the report cycles it recomputes, and no person-level copy is stored beside raw.
{{ config(materialized='view') }}
with recipients as (
    select report_cycle, person_key, base_area_id, age_years, 'sgb2' as scheme, 1 as priority
    from {{ ref('stg_sgb2__recipients') }}

    union all

    select
        report_cycle, person_key, base_area_id, age_years,
        case benefit_kind when 'HLU' then 'sgb12_hlu' else 'sgb12_gsi' end as scheme,
        2 as priority
    from {{ ref('stg_sgb12__recipients') }}

    union all

    select report_cycle, person_key, base_area_id, age_years, 'asylblg' as scheme, 3 as priority
    from {{ ref('stg_asylblg__recipients') }}
)

select
    report_cycle,
    person_key,
    base_area_id,
    age_years,
    scheme
from recipients
where report_cycle in (select report_cycle from {{ ref('int_report_cycles') }})
qualify row_number() over (partition by report_cycle, person_key order by priority) = 1
