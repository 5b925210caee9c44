{# Every indicator of the catalogue for every report cycle and area of a long table of counts (report_cycle,
   area_level, area_id, measure_id, measure_value), beside the city value of the same cycle. One definition for
   the marts area_indicators (each cycle on its own geography version) and area_indicators_harmonised (every
   cycle on the current version).
   - a rate or count (numerator_measure): value = scale * numerator / denominator (the count itself without a
     denominator), computed from the area's counts;
   - a change (change_of_indicator): value = scale * (the indicator now - the indicator in the previous report
     cycle) of the same area, in points of the indicator's unit; no counts. Within the counts given, by area key
     (the previous cycle is on the same version). With `current_version_changes` (a relation with the changes
     computed on the current geography version, i.e. area_indicators_harmonised), the cycles on the current
     version take their changes from it: the previous cycle restated on the current version, so a key that
     names another area after a reform is never compared with its namesake. #}
{% macro area_indicator_values(measures_relation, current_version_changes=none) %}
with measures as (
    select * from {{ measures_relation }}
),

catalogue as (
    select * from {{ ref('indicator_catalogue') }}
),

computed as (
    select
        numerators.report_cycle,
        numerators.area_level,
        numerators.area_id,
        catalogue.indicator_id,
        numerators.measure_value as numerator,
        denominators.measure_value as denominator,
        case
            when catalogue.denominator_measure is null then cast(numerators.measure_value as double)
            when denominators.measure_value > 0
                then catalogue.scale * numerators.measure_value / denominators.measure_value
        end as value
    from catalogue
    inner join measures as numerators
        on numerators.measure_id = catalogue.numerator_measure
    left join measures as denominators
        on denominators.measure_id = catalogue.denominator_measure
        and denominators.report_cycle = numerators.report_cycle
        and denominators.area_level = numerators.area_level
        and denominators.area_id = numerators.area_id
    where catalogue.change_of_indicator is null
        and (catalogue.denominator_measure is null or denominators.measure_value is not null)
),

{% if current_version_changes %}
version as (
    select any_value(geography_version) as geography_version from {{ ref('int_area_harmonisation') }}
),
{% endif %}

changes as (
    select
        now.report_cycle,
        now.area_level,
        now.area_id,
        catalogue.indicator_id,
        cast(null as bigint) as numerator,
        cast(null as bigint) as denominator,
        catalogue.scale * (now.value - previous.value) as value
    from catalogue
    inner join computed as now
        on now.indicator_id = catalogue.change_of_indicator
    inner join {{ ref('int_report_cycles') }} as cycles
        on cycles.report_cycle = now.report_cycle
    inner join computed as previous
        on previous.report_cycle = cycles.previous_report_cycle
        and previous.area_level = now.area_level
        and previous.area_id = now.area_id
        and previous.indicator_id = now.indicator_id
    {% if current_version_changes %}
    where now.report_cycle < (select geography_version from version)

    union all

    select report_cycle, area_level, area_id, indicator_id, numerator, denominator, value
    from {{ current_version_changes }}
    where report_cycle >= (select geography_version from version)
        and indicator_id in (select indicator_id from catalogue where change_of_indicator is not null)
    {% endif %}
),

all_values as (
    select report_cycle, area_level, area_id, indicator_id, numerator, denominator, value from computed
    union all
    select report_cycle, area_level, area_id, indicator_id, numerator, denominator, value from changes
)

select
    cast(all_values.report_cycle as integer) as report_cycle,
    all_values.area_level,
    all_values.area_id,
    all_values.indicator_id,
    cast(all_values.numerator as bigint) as numerator,
    cast(all_values.denominator as bigint) as denominator,
    cast(all_values.value as double) as value,
    cast(city.value as double) as city_value
from all_values
left join all_values as city
    on city.area_level = 'city'
    and city.report_cycle = all_values.report_cycle
    and city.indicator_id = all_values.indicator_id
{% endmacro %}
