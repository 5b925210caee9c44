-- Every area in area_indicators exists in areas.
select distinct area_indicators.area_level, area_indicators.area_id
from {{ ref('area_indicators') }} as area_indicators
left join {{ ref('areas') }} as areas
    on area_indicators.area_level = areas.area_level and area_indicators.area_id = areas.area_id
where areas.area_id is null
