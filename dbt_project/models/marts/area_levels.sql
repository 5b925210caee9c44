-- The levels of the city's geography as the city names them (the city first, then as declared).
select area_level, name_de, plural_de, parent_level, grouped_level, is_base, level_order
from {{ source('reference', 'area_levels') }}
