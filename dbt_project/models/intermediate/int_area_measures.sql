-- Every count at every area level, in long form: the counts of the base areas added up to every area they lie
-- in (the geography's memberships of the report cycle: the base level itself, every level above it, every
-- level grouping base areas and the city; never averaged), plus the population of the previous cycle. A base
-- area of the geography without a resident or recipient counts zero. Each cycle on its own geography version
-- (the same counts on the current version: int_area_measures_harmonised). The aggregate deliveries' measures
-- (int_aggregate_measures) are added as delivered: at their level and above only.
with long as (
    {{ long_counts('base_area_id') }}
),

-- the measures counted in each cycle (a measure null in a cycle, like the moves of the first cycle, is absent
-- there, not zero)
measures as (
    select distinct report_cycle, measure_id from long
),

memberships as (
    select report_cycle, base_area_id, area_level, area_id
    from {{ source('reference', 'area_memberships') }}
    where report_cycle in (select report_cycle from {{ ref('int_report_cycles') }})
),

by_level as (
    select
        memberships.report_cycle,
        memberships.area_level,
        memberships.area_id,
        measures.measure_id,
        cast(coalesce(sum(long.measure_value), 0) as bigint) as measure_value
    from memberships
    inner join measures
        on memberships.report_cycle = measures.report_cycle
    left join long
        on memberships.report_cycle = long.report_cycle
        and memberships.base_area_id = long.base_area_id
        and measures.measure_id = long.measure_id
    group by all
),

version as (
    select any_value(geography_version) as geography_version from {{ ref('int_area_harmonisation') }}
),

-- the population of the previous cycle on the cycle's own geography version: for a cycle on an older version by
-- area key (the previous cycle is on the same version: only a reform onto the latest version is converted), for a
-- cycle on the current version its previous cycle restated onto that version (int_area_measures_harmonised), so
-- a key that names another area after a reform is never compared with its namesake
previous_residents as (
    select
        current_counts.report_cycle,
        current_counts.area_level,
        current_counts.area_id,
        previous_counts.measure_value as residents_previous_cycle,
        current_counts.measure_value - previous_counts.measure_value as residents_change
    from by_level as current_counts
    inner join {{ ref('int_report_cycles') }} as cycles
        on current_counts.report_cycle = cycles.report_cycle
    inner join by_level as previous_counts
        on previous_counts.report_cycle = cycles.previous_report_cycle
        and previous_counts.area_level = current_counts.area_level
        and previous_counts.area_id = current_counts.area_id
        and previous_counts.measure_id = 'residents'
    where current_counts.measure_id = 'residents'
        and current_counts.report_cycle < (select geography_version from version)

    union all

    select
        report_cycle,
        area_level,
        area_id,
        max(measure_value) filter (where measure_id = 'residents_previous_cycle') as residents_previous_cycle,
        max(measure_value) filter (where measure_id = 'residents_change') as residents_change
    from {{ ref('int_area_measures_harmonised') }}
    where report_cycle >= (select geography_version from version)
        and measure_id in ('residents_previous_cycle', 'residents_change')
    group by report_cycle, area_level, area_id
)

select report_cycle, area_level, area_id, measure_id, measure_value from by_level
union all
select report_cycle, area_level, area_id, 'residents_previous_cycle', residents_previous_cycle from previous_residents
union all
select report_cycle, area_level, area_id, 'residents_change', residents_change from previous_residents
union all
select report_cycle, area_level, area_id, measure_id, measure_value from {{ ref('int_aggregate_measures') }}
