-- The report cycles in the register, each with the previous cycle. That every other source was delivered
-- for each of them is tested (tests/assert_every_cycle_has_all_deliveries.sql).
with cycles as (
    select distinct report_cycle, reference_date
    from {{ ref('stg_register__persons') }}
)

select
    report_cycle,
    reference_date,
    lag(report_cycle) over (order by report_cycle) as previous_report_cycle
from cycles
