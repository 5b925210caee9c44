-- One row per registered person and report cycle, with the age at the reference date. The person and
-- household keys are the keyed-hash pseudonyms written at ingestion; birth date, street and house number
-- stay in raw and are not carried into the models. The move-in date is carried (private warehouse only) to
-- count moves in since the previous cycle, with whether it is the birth date (born here: a birth, not a
-- move). Migration background as the city defines it (macro has_migration_background, from city.yml).
with source as (
    select * from {{ source('raw', 'register') }}
)

select
    report_cycle,
    reference_date,
    person_key,
    household_key,
    unterbezirk_id as base_area_id,
    sex,
    nationality_group,
    nationality_group <> 'deutsch' as is_non_german,
    {{ has_migration_background() }} as has_migration_background,
    residence_type = 'H' as is_main_residence,
    {{ age_at('birth_date', 'reference_date') }} as age_years,
    move_in_date,
    coalesce(move_in_date = birth_date, false) as moved_in_at_birth
from source
