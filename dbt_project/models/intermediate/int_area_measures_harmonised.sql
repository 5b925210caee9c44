-- Every count of every report cycle on the areas of the current geography version (the memberships of the
-- latest report cycle): the counts of int_base_area_counts added up over each person's base area on the
-- current version (current_base_area_id) to every area it lies in, plus the previous cycle's residents and
-- the change on that same version. For a cycle on the current version these are int_area_measures' counts;
-- for an older cycle a restatement, exact or an estimate as int_area_harmonisation says. An area of the
-- current version without a resident or recipient counts zero. The aggregate deliveries' measures
-- (int_aggregate_measures) are added for the cycles on the current version only (their areas are the current
-- ones): a count per area cannot be restated onto other areas without the persons behind it.
with long as (
    {{ long_counts('current_base_area_id') }}
),

-- the measures counted in each cycle (a measure null in a cycle, like the moves of the first cycle, is absent
-- there, not zero)
measures as (
    select distinct report_cycle, measure_id from long
),

cycles as (
    select report_cycle, previous_report_cycle from {{ ref('int_report_cycles') }}
),

current_memberships as (
    select base_area_id, area_level, area_id
    from {{ source('reference', 'area_memberships') }}
    where report_cycle = (select max(report_cycle) from cycles)
),

by_level as (
    select
        cycles.report_cycle,
        current_memberships.area_level,
        current_memberships.area_id,
        measures.measure_id,
        cast(coalesce(sum(long.measure_value), 0) as bigint) as measure_value
    from cycles
    cross join current_memberships
    inner join measures
        on cycles.report_cycle = measures.report_cycle
    left join long
        on cycles.report_cycle = long.report_cycle
        and current_memberships.base_area_id = long.current_base_area_id
        and measures.measure_id = long.measure_id
    group by all
),

previous_residents as (
    select
        current_counts.report_cycle,
        current_counts.area_level,
        current_counts.area_id,
        previous_counts.measure_value as residents_previous_cycle,
        current_counts.measure_value - previous_counts.measure_value as residents_change
    from by_level as current_counts
    inner join cycles
        on current_counts.report_cycle = cycles.report_cycle
    inner join by_level as previous_counts
        on previous_counts.report_cycle = cycles.previous_report_cycle
        and previous_counts.area_level = current_counts.area_level
        and previous_counts.area_id = current_counts.area_id
        and previous_counts.measure_id = 'residents'
    where current_counts.measure_id = 'residents'
)

select report_cycle, area_level, area_id, measure_id, measure_value from by_level
union all
select report_cycle, area_level, area_id, 'residents_previous_cycle', residents_previous_cycle from previous_residents
union all
select report_cycle, area_level, area_id, 'residents_change', residents_change from previous_residents
union all
select aggregates.report_cycle, aggregates.area_level, aggregates.area_id, aggregates.measure_id, aggregates.measure_value
from {{ ref('int_aggregate_measures') }} as aggregates
where aggregates.report_cycle >= (select any_value(geography_version) from {{ ref('int_area_harmonisation') }})
