-- Every area of every level of the city's geography, with its name (the city as area `city`). Where an
-- area key has several validities, the name of the latest. The areas each area lies in: area_hierarchy.
select area_level, area_id, area_name, name_status
from {{ source('reference', 'areas') }}
qualify row_number() over (partition by area_level, area_id order by coalesce(valid_to, 9999) desc) = 1
