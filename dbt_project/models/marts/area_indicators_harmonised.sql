-- Every indicator of the catalogue for every report cycle on the areas of the current geography version
-- (the "harmonised" series): the columns of area_indicators, computed by the same macro from the counts
-- restated on the current version (int_area_measures_harmonised), plus the version (geography_version) and
-- whether the row is an estimate because a base area of the cycle was split (is_estimate; conversion_status
-- says whether the conversion it rests on is published or assumed; int_area_harmonisation).
with indicators as (
    {{ area_indicator_values(ref('int_area_measures_harmonised')) }}
)

select
    indicators.report_cycle,
    indicators.area_level,
    indicators.area_id,
    indicators.indicator_id,
    indicators.numerator,
    indicators.denominator,
    indicators.value,
    indicators.city_value,
    cast(harmonisation.geography_version as integer) as geography_version,
    harmonisation.is_estimate,
    harmonisation.conversion_status
from indicators
inner join {{ ref('int_area_harmonisation') }} as harmonisation
    on indicators.report_cycle = harmonisation.report_cycle
    and indicators.area_level = harmonisation.area_level
    and indicators.area_id = harmonisation.area_id
