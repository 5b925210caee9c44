-- The harmonised series loses and invents no one: for every cycle and count, the areas of each level of the
-- current version (the city included) add up to the city total on the cycle's own version. A row here is a
-- person of a base area without a successor on the current version, or placed twice. The aggregate measures
-- are not restated (int_area_measures_harmonised): they are compared in assert_harmonised_equals_own_on_the_current_version.
with harmonised as (
    select report_cycle, area_level, measure_id, sum(measure_value) as level_total
    from {{ ref('int_area_measures_harmonised') }}
    where measure_id not in ('residents_previous_cycle', 'residents_change')
        and measure_id not in (select measure_id from {{ ref('int_aggregate_measures') }})
    group by all
),

own_city as (
    select report_cycle, measure_id, measure_value as city_total
    from {{ ref('int_area_measures') }}
    where area_level = 'city'
        and measure_id not in ('residents_previous_cycle', 'residents_change')
        and measure_id not in (select measure_id from {{ ref('int_aggregate_measures') }})
)

select harmonised.*, own_city.city_total
from harmonised
full join own_city
    on harmonised.report_cycle = own_city.report_cycle and harmonised.measure_id = own_city.measure_id
where harmonised.level_total is distinct from own_city.city_total
