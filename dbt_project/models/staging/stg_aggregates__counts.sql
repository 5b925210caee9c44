-- The aggregate deliveries of partner offices (raw.aggregates, contract schemas/aggregates.py): one count per
-- report cycle, delivery, area of the delivery's level and measure, as delivered; is_additive says whether the
-- measure may be added up to the levels above (false for an index). Counts per area, not persons.
select
    report_cycle,
    delivery,
    area_level,
    area_id,
    measure as measure_id,
    cast(value as bigint) as measure_value,
    additive as is_additive
from {{ source('raw', 'aggregates') }}
