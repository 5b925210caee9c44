-- The aggregate measures in long form (report_cycle, area_level, area_id, measure_id, measure_value): every
-- delivered value at its own level, and every additive one added up to each area its areas lie in (their parents
-- up to the city; from the base level also the grouping levels: the geography's containers valid in the cycle).
-- Never below the level delivered: an aggregate of statistische Bezirke has no value for an Unterbezirk. An area
-- above gets a value only when every area of the delivered level that lies in it has one (a declared gap or a
-- quarantined row leaves its containers without a value rather than with an undercount). Generic over measures:
-- a new measure is a catalogue row and a layout entry (config/<city>/deliveries.yml), not SQL.
with cycles as (
    select report_cycle from {{ ref('int_report_cycles') }}
),

delivered as (
    select report_cycle, area_level, area_id, measure_id, measure_value, is_additive
    from {{ ref('stg_aggregates__counts') }}
    where report_cycle in (select report_cycle from cycles)
),

-- the additive measures and the level each is delivered at, per cycle
delivered_levels as (
    select distinct report_cycle, area_level, measure_id
    from delivered
    where is_additive
),

-- the areas of each level valid in each cycle, with every area they lie in during the cycle
containers as (
    select cycles.report_cycle, areas.area_level, areas.area_id, containers.container_level, containers.container_id
    from cycles
    inner join {{ source('reference', 'areas') }} as areas
        on (areas.valid_from is null or areas.valid_from <= cycles.report_cycle)
        and (areas.valid_to is null or cycles.report_cycle <= areas.valid_to)
    inner join {{ source('reference', 'area_containers') }} as containers
        on containers.area_level = areas.area_level
        and containers.area_id = areas.area_id
        and (containers.valid_from is null or containers.valid_from <= cycles.report_cycle)
        and (containers.valid_to is null or cycles.report_cycle <= containers.valid_to)
),

summed as (
    select
        delivered_levels.report_cycle,
        containers.container_level as area_level,
        containers.container_id as area_id,
        delivered_levels.measure_id,
        sum(delivered.measure_value) as measure_value,
        count(delivered.measure_value) = count(*) as is_complete
    from delivered_levels
    inner join containers
        on containers.report_cycle = delivered_levels.report_cycle
        and containers.area_level = delivered_levels.area_level
    left join delivered
        on delivered.report_cycle = delivered_levels.report_cycle
        and delivered.area_level = containers.area_level
        and delivered.area_id = containers.area_id
        and delivered.measure_id = delivered_levels.measure_id
    group by all
)

select report_cycle, area_level, area_id, measure_id, measure_value
from delivered

union all

select report_cycle, area_level, area_id, measure_id, cast(measure_value as bigint)
from summed
where is_complete
