{# Every indicator of the catalogue for every report cycle and area of a long table of counts (report_cycle,
   area_level, area_id, measure_id, measure_value), computed from the area's counts (value = scale *
   numerator / denominator), beside the city value of the same cycle. One definition for the marts
   area_indicators (each cycle on its own geography version) and area_indicators_harmonised (every cycle on
   the current version). #}
{% macro area_indicator_values(measures_relation) %}
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
    where catalogue.denominator_measure is null or denominators.measure_value is not null
)

select
    cast(computed.report_cycle as integer) as report_cycle,
    computed.area_level,
    computed.area_id,
    computed.indicator_id,
    cast(computed.numerator as bigint) as numerator,
    cast(computed.denominator as bigint) as denominator,
    cast(computed.value as double) as value,
    cast(city.value as double) as city_value
from computed
left join computed as city
    on city.area_level = 'city'
    and city.report_cycle = computed.report_cycle
    and city.indicator_id = computed.indicator_id
{% endmacro %}
