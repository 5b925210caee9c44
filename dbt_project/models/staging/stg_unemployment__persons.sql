-- Arbeitslose (Bundesagentur für Arbeit): one row per registered unemployed person at the reference date. The
-- Bundesagentur delivers the age at the reference date; long-term unemployed = unemployed one year or longer
-- (unemployed since on or before the reference date minus one year). The start date stays in raw.
with source as (
    select * from {{ source('raw', 'unemployment') }}
)

select
    report_cycle,
    reference_date,
    person_key,
    unterbezirk_id as base_area_id,
    legal_basis,
    cast(age as integer) as age_years,
    unemployed_since <= reference_date - interval 1 year as is_long_term
from source
