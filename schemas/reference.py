"""Contracts of the warehouse's reference geography (schema ``reference``), loaded from the city folder's
``geography/`` by the Dagster assets of the group reference (``social_monitor/reference.py``).

Generic long tables: no level of a particular city is named here; the levels are rows of ``area_levels``.
dbt reads them as sources (``dbt_project/models/staging/_reference__sources.yml``).
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from social_monitor.geography import STATUS_VALUES


class _Reference(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class AreaLevels(_Reference):
    """The levels, the city (``city``) first, then as declared in levels.yml."""

    area_level: str = pa.Field(unique=True, str_matches=r"^[a-z][a-z0-9_]*$")
    name_de: str
    plural_de: str
    parent_level: str = pa.Field(nullable=True)  # the level each area lies in (null: city, grouping levels)
    grouped_level: str = pa.Field(nullable=True)  # the base level, for a level grouping base areas
    is_base: bool
    level_order: pl.Int32 = pa.Field(ge=0, unique=True)

    @pa.dataframe_check(error="exactly one level is the base level")
    def one_base(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("is_base").sum() == 1)


class Areas(_Reference):
    """Every area of every level, the city as area ``city`` of level ``city``."""

    area_level: str
    area_id: str
    area_name: str
    parent_level: str = pa.Field(nullable=True)
    parent_id: str = pa.Field(nullable=True)
    valid_from: pl.Int32 = pa.Field(nullable=True)
    valid_to: pl.Int32 = pa.Field(nullable=True)
    name_status: str = pa.Field(isin=list(STATUS_VALUES))


class AreaMemberships(_Reference):
    """Per report cycle: every base area valid in it and every area it lies in (its own level and the city
    included), so a base area's count adds up to each of them."""

    report_cycle: pl.Int32
    base_area_id: str
    area_level: str
    area_id: str

    class Config:
        unique = ["report_cycle", "base_area_id", "area_level"]


class AreaContainers(_Reference):
    """Every area and every area it lies in (the city included); ``is_direct``: the declared relation along
    which counts add up (parent, group)."""

    area_level: str
    area_id: str
    container_level: str
    container_id: str
    is_direct: bool
    valid_from: pl.Int32 = pa.Field(nullable=True)  # report cycles the area lies there (None: open)
    valid_to: pl.Int32 = pa.Field(nullable=True)

    class Config:
        unique = ["area_level", "area_id", "container_level"]


class AreaConversion(_Reference):
    """The conversion of every retired base area onto its successors (``conversion.csv`` without its free-text
    basis): the share ``weight`` of the old area that goes to the new one, published or assumed. Empty for a
    city whose base areas never retire."""

    old_area_id: str
    new_area_id: str
    weight: pl.Float64 = pa.Field(gt=0, le=1)
    weight_status: str = pa.Field(isin=list(STATUS_VALUES))

    class Config:
        unique = ["old_area_id", "new_area_id"]


CONTRACTS: dict[str, type[_Reference]] = {
    "area_levels": AreaLevels, "areas": Areas, "area_memberships": AreaMemberships, "area_containers": AreaContainers,
    "area_conversion": AreaConversion}
