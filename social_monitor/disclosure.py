"""Statistical disclosure control of the published marts (statistische Geheimhaltung).

Applied when publishing, never in the private warehouse. By configuration (``publication`` in
config/city.yml):

- **small counts**: a cell whose numerator or denominator is 1 to ``min_count - 1`` (default 1 or 2
  persons) is suppressed (``small_count``);
- **small areas**: every rate of an area with fewer than ``min_population_for_rates`` residents is
  suppressed (``small_population``);
- **secondary suppression**: numerators add up from the Unterbezirke to every level, so a single suppressed
  cell among the parts of a published total could be recovered by subtraction. Within every group of parts
  (Unterbezirke of a statistischer Bezirk and of a Sozialraum, Bezirke of a Stadtbezirk, Stadtbezirke and
  Sozialräume of the city) that holds exactly one suppressed cell while its total is published, the
  smallest other part is suppressed too (``secondary``); a total with a single part (a Bezirk of one
  Unterbezirk) is suppressed together with it; repeated until no group needs more.

A suppressed cell keeps its row (so BI tools see the gap) with numerator, denominator and value empty and
the reason in ``suppression``. Plain Python on polars frames, no Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

REASONS = ("small_count", "small_population", "secondary")
KEY = ["report_cycle", "area_level", "area_id", "indicator_id"]
POPULATION_INDICATOR = "residents"


@dataclass(frozen=True)
class DisclosureRule:
    min_count: int = 3
    min_population_for_rates: int = 100

    @classmethod
    def from_config(cls, config: Mapping[str, object] | None) -> DisclosureRule:
        config = dict(config or {})
        unknown = sorted(set(config) - {"min_count", "min_population_for_rates"})
        if unknown:
            raise ValueError(f"publication: unknown key(s) {', '.join(unknown)}")
        rule = cls(min_count=int(config.get("min_count", 3)),
                   min_population_for_rates=int(config.get("min_population_for_rates", 100)))
        if rule.min_count < 3 or rule.min_population_for_rates < 0:
            raise ValueError("publication: min_count must be at least 3 (counts of 1 and 2 are never published; "
                             "the published contract checks it) and min_population_for_rates >= 0")
        return rule


def _groups(areas: pl.DataFrame) -> pl.DataFrame:
    """(area_level, area_id) of each part -> (parent_level, parent_id) of each total it adds up to."""
    parts = [
        ("unterbezirk", "statistischer_bezirk", "bezirk_id"),
        ("unterbezirk", "sozialraum", "sozialraum_id"),
        ("statistischer_bezirk", "stadtbezirk", "stadtbezirk_id"),
    ]
    frames = [
        areas.filter(pl.col("area_level") == level).select(
            "area_level", "area_id", pl.lit(parent).alias("parent_level"), pl.col(column).alias("parent_id"))
        for level, parent, column in parts
    ]
    frames += [
        areas.filter(pl.col("area_level") == level).select(
            "area_level", "area_id", pl.lit("city").alias("parent_level"), pl.lit("city").alias("parent_id"))
        for level in ("stadtbezirk", "sozialraum")
    ]
    return pl.concat(frames).drop_nulls()


def suppress(cells: pl.DataFrame, areas: pl.DataFrame, rule: DisclosureRule) -> pl.DataFrame:
    """``cells`` (marts.area_indicators) with small cells and their secondaries emptied, and ``suppression``."""
    small = pl.col("numerator").is_between(1, rule.min_count - 1) | pl.col("denominator").is_between(
        1, rule.min_count - 1)
    population = cells.filter(pl.col("indicator_id") == POPULATION_INDICATOR).select(
        "report_cycle", "area_level", "area_id", pl.col("value").alias("area_population"))
    flagged = cells.join(population, on=["report_cycle", "area_level", "area_id"], how="left").with_columns(
        pl.when(small).then(pl.lit("small_count"))
        .when(pl.col("denominator").is_not_null() & (pl.col("area_population") < rule.min_population_for_rates))
        .then(pl.lit("small_population"))
        .otherwise(pl.lit(None, dtype=pl.Utf8)).alias("suppression")
    ).drop("area_population")

    groups = _groups(areas)
    while True:
        members = flagged.select(*KEY, "numerator", "suppression").join(
            groups, on=["area_level", "area_id"], how="inner")
        parents = flagged.select(
            "report_cycle", pl.col("area_level").alias("parent_level"), pl.col("area_id").alias("parent_id"),
            "indicator_id", pl.col("suppression").is_not_null().alias("parent_suppressed"))
        group_key = ["report_cycle", "indicator_id", "parent_level", "parent_id"]
        counted = (
            members.group_by(group_key)
            .agg(pl.col("suppression").is_not_null().sum().alias("suppressed"), pl.len().alias("parts"))
            .join(parents, on=group_key, how="left")
            .with_columns(pl.col("parent_suppressed").fill_null(False))
        )
        # one suppressed part among several under a published total: the smallest other part goes too
        exposed = counted.filter((pl.col("suppressed") == 1) & (pl.col("parts") > 1) & ~pl.col("parent_suppressed"))
        # a total with a single part is that part: both are shown or both are suppressed
        single = counted.filter((pl.col("parts") == 1) & ((pl.col("suppressed") == 1) != pl.col("parent_suppressed")))
        if exposed.is_empty() and single.is_empty():
            return flagged
        partners = pl.concat([
            members.join(exposed.select(group_key), on=group_key, how="semi")
            .filter(pl.col("suppression").is_null())
            .sort("numerator", "area_id", nulls_last=True)
            .group_by(group_key, maintain_order=True).first()
            .select(KEY),
            members.join(single.select(group_key), on=group_key, how="semi").select(KEY),
            single.select("report_cycle", pl.col("parent_level").alias("area_level"),
                          pl.col("parent_id").alias("area_id"), "indicator_id").select(KEY),
        ]).unique()
        flagged = flagged.join(partners.with_columns(pl.lit(True).alias("_secondary")), on=KEY, how="left")
        flagged = flagged.with_columns(
            pl.when(pl.col("_secondary") & pl.col("suppression").is_null()).then(pl.lit("secondary"))
            .otherwise(pl.col("suppression")).alias("suppression")).drop("_secondary")


def apply(cells: pl.DataFrame, areas: pl.DataFrame, rule: DisclosureRule) -> pl.DataFrame:
    """The published form of ``cells``: suppressed cells keep their row, with their numbers emptied."""
    flagged = suppress(cells, areas, rule)
    hidden = pl.col("suppression").is_not_null()
    return flagged.with_columns(
        *[pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in ("numerator", "denominator", "value")])
