-- The indicator catalogue: what every indicator in area_indicators means and how it is computed.
select
    indicator_id,
    sort_order,
    name_de,
    description_de,
    numerator_measure,
    denominator_measure,
    unit,
    scale,
    direction,
    topic_field,
    target_group
from {{ ref('indicator_catalogue') }}
