-- AsylbLG Leistungsberechtigte.
with source as (
    select * from {{ source('raw', 'asylblg') }}
)

select
    report_cycle,
    reference_date,
    person_key,
    unterbezirk_id as base_area_id,
    {{ age_at('birth_date', 'reference_date') }} as age_years
from source
