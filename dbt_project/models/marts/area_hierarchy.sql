-- Every area and every area of a higher or grouping level it lies in (the city included), one row each:
-- the filter container_level = '<level>' gives every area's area of that level.
-- valid_from/valid_to: the report cycles the area lies there (empty: open), where the geography changed.
select area_level, area_id, container_level, container_id, is_direct, valid_from, valid_to
from {{ source('reference', 'area_containers') }}
