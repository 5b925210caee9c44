-- Each base area's successors on the current geography version (the base areas valid in the latest report
-- cycle): a base area still valid then is its own successor; a retired one goes to the base areas the
-- city's conversion maps it onto (reference.area_conversion), each with its share (weight) of the old area.
-- A person of a retired base area is placed in exactly one successor: the one whose placement interval
-- [placement_lower, placement_upper) holds the number drawn from the person's key (placement_number), so
-- every converted count is a whole number of persons and every sum of counts holds exactly.
--
-- Only the conversion onto the latest version: a chain of reforms (an old area converted onto one that
-- retires too) is not composed; tests/assert_successors_are_current_base_areas.sql refuses it.
with latest as (
    select max(report_cycle) as report_cycle from {{ ref('int_report_cycles') }}
),

base_level as (
    select area_level from {{ source('reference', 'area_levels') }} where is_base
),

current_areas as (
    select distinct base_area_id
    from {{ source('reference', 'area_memberships') }}
    where report_cycle = (select report_cycle from latest)
        and area_level = (select area_level from base_level)
),

converted as (
    select
        old_area_id as base_area_id,
        new_area_id as current_base_area_id,
        weight,
        weight_status,
        sum(weight) over (
            partition by old_area_id order by new_area_id rows between unbounded preceding and current row
        ) as cumulative_weight,
        row_number() over (partition by old_area_id order by new_area_id desc) = 1 as is_last
    from {{ source('reference', 'area_conversion') }}
    where old_area_id not in (select base_area_id from current_areas)
)

select
    base_area_id,
    base_area_id as current_base_area_id,
    cast(1 as double) as weight,
    cast(null as varchar) as weight_status,
    cast(0 as double) as placement_lower,
    cast(1 as double) as placement_upper
from current_areas

union all

select
    base_area_id,
    current_base_area_id,
    cast(weight as double) as weight,
    weight_status,
    cast(cumulative_weight - weight as double) as placement_lower,
    -- the last successor's interval ends at 1 whatever the rounding of the weights
    cast(case when is_last then 1 else cumulative_weight end as double) as placement_upper
from converted
