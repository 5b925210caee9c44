"""Contract of the aggregate deliveries: counts per area that partner offices deliver (school-entry examinations,
transitions to Gymnasium, Hilfen zur Erziehung, employees at their place of residence, an income index, vacant
dwellings ...), as opposed to the person-level extracts of ``schemas/raw.py``.

One contract for every such delivery: a table of (area key, measure, value) per report cycle. What a city's
office delivers, under which headers, at which area level and with which measure codes is the city's layout
(``config/<city>/deliveries.yml``, key ``aggregates``; ``social_monitor.layouts.AggregateLayout``):

- ``area_id`` must be a key of the delivery's level (declared in the layout) valid in the delivery's report
  cycle on that cycle's geography version (injected at validation time, ``schemas.raw.with_area_keys``): a key
  of another level or a retired key is a bad value;
- ``measure`` is one of the layout's measure codes, recoded to the project's measure id (a code not in the layout
  is a bad value);
- ``value`` is a whole number from 0 (counts; an index is delivered as a whole number too);
- one row per (area, measure) in a delivery (the cycle and the level are the delivery's), and a row for every
  area of the level and every measure of the layout unless the layout declares the area a gap (checked over
  the whole delivery by the loader, ``social_monitor.ingest``).

The loader adds the lineage columns of ``RawDelivery`` and the delivery's id (``delivery``), its level
(``area_level``) and whether the measure may be added up to the levels above (``additive``, from the layout).
Aggregate values are counts per area, not personal; the loader's messages are as strict as for person data.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from schemas.raw import RawDelivery, area_key, column

MAX_VALUE = 10**12  # a count per area (or an index): far above any real one, so a garbled number is caught
AGGREGATE_TABLE = "aggregates"  # raw.aggregates holds every aggregate delivery of the city


def _from_layout() -> object:
    """A column the loader fills from the delivery's layout (not delivered in the file)."""
    return pa.Field(metadata={"delivered": False, "personal": False})


def measure_code() -> object:
    """The measure: the city's code in the file, recoded by the layout to the project's measure id. The codes
    are the layout's (checked when the file is recoded), not fixed here; they are published, never personal."""
    return pa.Field(metadata={"delivered": True, "personal": False, "pseudonymise": False, "coded": False,
                              "measure": True})


class AggregateCounts(RawDelivery):
    """Aggregate delivery of a partner office: one count per area of one level, measure and report cycle."""

    delivery: str = _from_layout()
    area_level: str = _from_layout()
    additive: bool = _from_layout()
    area_id: str = area_key()
    measure: str = measure_code()
    value: pl.Int64 = column(in_range={"min_value": 0, "max_value": MAX_VALUE})

    class Config:
        unique = ["area_id", "measure"]
