-- A cycle is modelled only when every source was delivered for it (an empty delivery counts): otherwise
-- its rates would count zero recipients. raw.deliveries is the ingest log the Dagster raw assets write;
-- it is read directly, not as a dbt source, because it is a by-product of those assets. The sources are the
-- raw tables _raw__sources.yml declares (one per social_monitor.deliveries.SOURCES, tests/test_contracts.py),
-- not the partner offices' aggregates (raw.aggregates): without one of those its indicators are absent.
{%- set sources = [] %}
{%- for node in graph.sources.values() if node.source_name == 'raw' and node.name not in ('deliveries', 'aggregates') %}
    {%- do sources.append(node.name) %}
{%- endfor %}
select cycles.report_cycle, count(distinct deliveries.source) as sources_delivered
from {{ ref('int_report_cycles') }} as cycles
left join raw.deliveries as deliveries
    on cycles.report_cycle = deliveries.report_cycle
    and deliveries.source in ('{{ sources | join("', '") }}')
group by cycles.report_cycle
having count(distinct deliveries.source) < {{ sources | length }}
