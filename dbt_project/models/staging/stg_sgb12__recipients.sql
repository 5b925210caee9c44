-- SGB XII Empfänger: HLU (3. Kapitel) and GSI (4. Kapitel, Grundsicherung im Alter und bei Erwerbsminderung).
with source as (
    select * from {{ source('raw', 'sgb12') }}
)

select
    report_cycle,
    reference_date,
    person_key,
    benefit_kind,
    unterbezirk_id as base_area_id,
    {{ age_at('birth_date', 'reference_date') }} as age_years
from source
