-- Both sides of every row of area_hierarchy are areas of the geography (published areas).
select hierarchy.*
from {{ ref('area_hierarchy') }} as hierarchy
left join {{ ref('areas') }} as areas
    on hierarchy.area_level = areas.area_level and hierarchy.area_id = areas.area_id
left join {{ ref('areas') }} as containers
    on hierarchy.container_level = containers.area_level and hierarchy.container_id = containers.area_id
where areas.area_id is null or containers.area_id is null
