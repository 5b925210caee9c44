-- One row per registered person and report cycle, with the age at the reference date. The person key is
-- the keyed-hash pseudonym written at ingestion; birth date, move-in date, street and house number stay in
-- raw and are not carried into the models.
with source as (
    select * from {{ source('raw', 'register') }}
)

select
    report_cycle,
    reference_date,
    person_key,
    unterbezirk_id as base_area_id,
    sex,
    nationality_group,
    nationality_group <> 'deutsch' as is_non_german,
    residence_type = 'H' as is_main_residence,
    {{ age_at('birth_date', 'reference_date') }} as age_years
from source
