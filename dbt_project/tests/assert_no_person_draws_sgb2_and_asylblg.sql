-- SGB II and AsylbLG exclude each other by law: a person in both deliveries of a cycle is an error of one of
-- the senders. The models count such a person once (int_transfer_recipients: SGB II first); this test makes
-- the overlap visible as a warning in the Dagster UI, by cycle and as a count only (no person key).
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_sgb2__recipients'}}}) }}

select sgb2.report_cycle, count(*) as persons_in_both
from {{ ref('stg_sgb2__recipients') }} as sgb2
inner join {{ ref('stg_asylblg__recipients') }} as asylblg
    on sgb2.report_cycle = asylblg.report_cycle
    and sgb2.person_key = asylblg.person_key
group by sgb2.report_cycle
