-- A cycle is modelled only when every source was delivered for it (an empty delivery counts): otherwise
-- its rates would count zero recipients. raw.deliveries is the ingest log the Dagster raw assets write;
-- it is read directly, not as a dbt source, because it is a by-product of those four assets.
select cycles.report_cycle, count(distinct deliveries.source) as sources_delivered
from {{ ref('int_report_cycles') }} as cycles
left join raw.deliveries as deliveries
    on cycles.report_cycle = deliveries.report_cycle
    -- person-level sources only: without an aggregate delivery (raw.aggregates) its indicators are absent
    and deliveries.source not in (select distinct delivery from raw.aggregates)
group by cycles.report_cycle
having count(distinct deliveries.source) < 4
