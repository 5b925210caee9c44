-- Every count at every area level, in long form: Unterbezirk counts added up to statistischer Bezirk,
-- Sozialraum, Stadtbezirk and city (never averaged), plus the population of the previous cycle.
with unterbezirk_counts as (
    select counts.* exclude (deliveries_loaded_at, sgb2_age_bound), areas.bezirk_id, areas.sozialraum_id,
        areas.stadtbezirk_id
    from {{ ref('int_unterbezirk_counts') }} as counts
    inner join {{ ref('int_area_hierarchy') }} as areas
        on counts.unterbezirk_id = areas.unterbezirk_id
),

long as (
    unpivot unterbezirk_counts
    on columns(* exclude (report_cycle, unterbezirk_id, bezirk_id, sozialraum_id, stadtbezirk_id))
    into name measure_id value measure_value
),

by_level as (
    {% set levels = [
        ('unterbezirk', 'unterbezirk_id'),
        ('statistischer_bezirk', 'bezirk_id'),
        ('sozialraum', 'sozialraum_id'),
        ('stadtbezirk', 'stadtbezirk_id'),
        ('city', "'city'"),
    ] %}
    {% for level, key in levels %}
    select report_cycle, '{{ level }}' as area_level, {{ key }} as area_id, measure_id,
        cast(sum(measure_value) as bigint) as measure_value
    from long
    group by all
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

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
)

select report_cycle, area_level, area_id, measure_id, measure_value from by_level
union all
select report_cycle, area_level, area_id, 'residents_previous_cycle', residents_previous_cycle from previous_residents
union all
select report_cycle, area_level, area_id, 'residents_change', residents_change from previous_residents
