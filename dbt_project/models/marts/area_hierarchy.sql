-- Every area and every area of a higher or grouping level it lies in (the city included), one row each:
-- the filter container_level = '<level>' gives every area's area of that level.
select area_level, area_id, container_level, container_id, is_direct
from {{ source('reference', 'area_containers') }}
