-- SGB II Leistungsberechtigte; the Bundesagentur delivers the age at the reference date.
with source as (
    select * from {{ source('raw', 'sgb2') }}
)

select
    report_cycle,
    reference_date,
    person_key,
    unterbezirk_id as base_area_id,
    cast(age as integer) as age_years
from source
