-- Per report cycle and area of the current geography version: whether the area's counts restated on that
-- version (int_area_measures_harmonised) are exact or estimates, what the conversion rests on, and which
-- version it is. A count is an estimate (is_estimate) when a base area of the cycle feeds the area with only
-- part of its persons, the rest going to another area of the same level (a split); it is exact when every
-- base area feeding it has all its successors inside it (an area still valid, a 1:1 renamed one, or an area
-- holding every part of a split one). conversion_status: null where no retired base area feeds the area,
-- published where the conversion rows feeding it are all published, assumed where one of them is assumed.
with cycles as (
    select report_cycle from {{ ref('int_report_cycles') }}
),

latest as (
    select max(report_cycle) as report_cycle from cycles
),

base_level as (
    select area_level from {{ source('reference', 'area_levels') }} where is_base
),

base_areas as (
    select report_cycle, base_area_id
    from {{ source('reference', 'area_memberships') }}
    where area_level = (select area_level from base_level)
),

current_memberships as (
    select base_area_id, area_level, area_id
    from {{ source('reference', 'area_memberships') }}
    where report_cycle = (select report_cycle from latest)
),

-- the version: the first report cycle since which every cycle has the base areas of the latest one
on_latest as (
    select
        report_cycle,
        count(*) = (select count(*) from current_memberships where area_level = (select area_level from base_level))
        and bool_and(base_area_id in (select base_area_id from current_memberships)) as is_on_latest
    from base_areas
    group by report_cycle
),

version as (
    select min(report_cycle) as geography_version
    from on_latest
    where is_on_latest
        and report_cycle <= (select report_cycle from latest)
        and report_cycle > coalesce((
            select max(report_cycle) from on_latest
            where not is_on_latest and report_cycle < (select report_cycle from latest)
        ), -1)
),

-- every base area of a cycle with the areas (every level) of its successors on the current version
placed as (
    select
        base_areas.report_cycle,
        base_areas.base_area_id,
        successors.weight_status,
        current_memberships.area_level,
        current_memberships.area_id
    from base_areas
    inner join {{ ref('int_base_area_successors') }} as successors
        on base_areas.base_area_id = successors.base_area_id
    inner join current_memberships
        on successors.current_base_area_id = current_memberships.base_area_id
    where base_areas.report_cycle in (select report_cycle from cycles)
),

spread as (
    select report_cycle, base_area_id, area_level, count(distinct area_id) > 1 as is_split_across_areas
    from placed
    group by all
),

flags as (
    select
        placed.report_cycle,
        placed.area_level,
        placed.area_id,
        bool_or(spread.is_split_across_areas) as is_estimate,
        case
            when bool_or(placed.weight_status = 'assumed') then 'assumed'
            when bool_or(placed.weight_status = 'published') then 'published'
        end as conversion_status
    from placed
    inner join spread
        on placed.report_cycle = spread.report_cycle
        and placed.base_area_id = spread.base_area_id
        and placed.area_level = spread.area_level
    group by all
),

current_areas as (
    select distinct area_level, area_id from current_memberships
)

select
    cycles.report_cycle,
    current_areas.area_level,
    current_areas.area_id,
    (select geography_version from version) as geography_version,
    coalesce(flags.is_estimate, false) as is_estimate,
    flags.conversion_status
from cycles
cross join current_areas
left join flags
    on cycles.report_cycle = flags.report_cycle
    and current_areas.area_level = flags.area_level
    and current_areas.area_id = flags.area_id
