-- Aggregation identity: for every cycle and count, the areas of each level add up to the city total.
with levels as (
    select report_cycle, area_level, measure_id, sum(measure_value) as level_total
    from {{ ref('int_area_measures') }}
    where area_level <> 'city'
        and measure_id not in ('residents_previous_cycle', 'residents_change')
    group by all
),

city as (
    select report_cycle, measure_id, measure_value as city_total
    from {{ ref('int_area_measures') }}
    where area_level = 'city'
)

select levels.*, city.city_total
from levels
inner join city using (report_cycle, measure_id)
where levels.level_total <> city.city_total
