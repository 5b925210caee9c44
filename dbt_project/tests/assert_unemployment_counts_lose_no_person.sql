-- No person is lost or counted twice by the unemployment counts: per report cycle, the unemployed counted in
-- int_base_area_counts are the rows of the unemployment extract, each under one legal basis; and the SGB II and
-- SGB XII recipients (each person once, int_transfer_recipients) are either in the extract or counted in
-- recipients_transfer_not_unemployed. Counted independently of the model, by a join on the person key.
with counted as (
    select
        report_cycle,
        sum(unemployed) as unemployed,
        sum(unemployed_sgb2 + unemployed_sgb3) as unemployed_by_legal_basis,
        sum(recipients_transfer_not_unemployed) as not_unemployed
    from {{ ref('int_base_area_counts') }}
    group by report_cycle
),

delivered as (
    select report_cycle, count(*) as unemployed
    from {{ ref('stg_unemployment__persons') }}
    group by report_cycle
),

recipients as (
    select
        recipients.report_cycle,
        count(*) as sgb2_sgb12,
        count(unemployed.person_key) as sgb2_sgb12_unemployed
    from {{ ref('int_transfer_recipients') }} as recipients
    left join {{ ref('stg_unemployment__persons') }} as unemployed
        on recipients.report_cycle = unemployed.report_cycle
        and recipients.person_key = unemployed.person_key
    where recipients.scheme in ('sgb2', 'sgb12_hlu', 'sgb12_gsi')
    group by recipients.report_cycle
)

select counted.*, delivered.unemployed as delivered_unemployed, recipients.sgb2_sgb12, recipients.sgb2_sgb12_unemployed
from counted
left join delivered on counted.report_cycle = delivered.report_cycle
left join recipients on counted.report_cycle = recipients.report_cycle
where counted.unemployed <> coalesce(delivered.unemployed, 0)
    or counted.unemployed_by_legal_basis <> counted.unemployed
    or counted.not_unemployed + coalesce(recipients.sgb2_sgb12_unemployed, 0) <> coalesce(recipients.sgb2_sgb12, 0)
