-- A report cycle on the current geography version is its own harmonised series: every count of
-- int_area_measures_harmonised equals int_area_measures there (a city with one version: every cycle). The
-- first cycle of the version compares its residents with the previous cycle on its own version only in the
-- harmonised series, so the previous cycle's residents and the change are compared from the second cycle on.
with current_cycles as (
    select distinct report_cycle, report_cycle = geography_version as is_first
    from {{ ref('int_area_harmonisation') }}
    where report_cycle >= geography_version
),

own as (
    select measures.* from {{ ref('int_area_measures') }} as measures
    inner join current_cycles
        on measures.report_cycle = current_cycles.report_cycle
        and not (current_cycles.is_first and measures.measure_id in ('residents_previous_cycle', 'residents_change'))
),

harmonised as (
    select measures.* from {{ ref('int_area_measures_harmonised') }} as measures
    inner join current_cycles
        on measures.report_cycle = current_cycles.report_cycle
        and not (current_cycles.is_first and measures.measure_id in ('residents_previous_cycle', 'residents_change'))
)

select
    coalesce(own.report_cycle, harmonised.report_cycle) as report_cycle,
    coalesce(own.area_level, harmonised.area_level) as area_level,
    coalesce(own.area_id, harmonised.area_id) as area_id,
    coalesce(own.measure_id, harmonised.measure_id) as measure_id,
    own.measure_value as own_value,
    harmonised.measure_value as harmonised_value
from own
full join harmonised
    on own.report_cycle = harmonised.report_cycle
    and own.area_level = harmonised.area_level
    and own.area_id = harmonised.area_id
    and own.measure_id = harmonised.measure_id
where own.measure_value is distinct from harmonised.measure_value
