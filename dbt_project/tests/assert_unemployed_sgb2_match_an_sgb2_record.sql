-- A person the unemployment extract lists under legal basis SGB II should have an SGB II record of the same
-- cycle in the same base area. A careless supplier's extract breaks this (another extraction date, a move
-- between the two extracts). The counts stay whole either way (int_base_area_counts: each record counts once,
-- where it was delivered); this test makes the inconsistency visible as a warning in the Dagster UI, by cycle
-- and as counts only (no person key).
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_unemployment__persons'}}}) }}

select
    unemployed.report_cycle,
    count(*) filter (where sgb2.person_key is null) as sgb2_unemployed_without_sgb2_record,
    count(*) filter (where sgb2.base_area_id <> unemployed.base_area_id) as sgb2_record_in_another_area
from {{ ref('stg_unemployment__persons') }} as unemployed
left join {{ ref('stg_sgb2__recipients') }} as sgb2
    on unemployed.report_cycle = sgb2.report_cycle
    and unemployed.person_key = sgb2.person_key
where unemployed.legal_basis = 'SGB II'
group by unemployed.report_cycle
having count(*) filter (where sgb2.person_key is null or sgb2.base_area_id <> unemployed.base_area_id) > 0
