"""Ranks and deciles of the published indicator values (Rang, Dezil), computed after the disclosure control.

Every indicator's value is ranked among the areas of its level in each report cycle:

- rank 1 is the highest value, whatever the indicator's direction (``indicators.direction`` says whether high is
  good or bad); equal values share the best rank of their group (standard competition ranking: 1, 2, 2, 4);
- ``ranked_areas`` is the number of areas ranked (the "von y" of "Rang x von y");
- the decile is ``ceil(10 × k / n)`` with k the number of ranked areas whose value is lower than or equal to the
  area's, n the ranked areas: 10 holds the highest tenth of the values, 1 the lowest; equal values share a decile.
  Left empty where fewer than ``MIN_AREAS_FOR_DECILES`` areas are ranked (a tenth of fewer areas is no group).

Only published values are ranked: a suppressed cell (``suppression`` set) or a cell without a value has no rank and
does not count among the ranked areas, and its value, if the frame still carried one, is never read. So a rank says
nothing about a suppressed value beyond what the published values already say. The city (one area) is not ranked.
"""

from __future__ import annotations

import polars as pl

from social_monitor.disclosure import CITY_ID

MIN_AREAS_FOR_DECILES = 10
RANK_COLUMNS = ("value_rank", "ranked_areas", "value_decile")
GROUP = ["report_cycle", "area_level", "indicator_id"]
KEY = ["report_cycle", "area_level", "area_id", "indicator_id"]


def with_ranks(cells: pl.DataFrame) -> pl.DataFrame:
    """``cells`` (area_indicators: KEY, value, suppression) with the columns value_rank, ranked_areas and
    value_decile (Int32, empty where the cell is not ranked), in the order of ``cells``."""
    published = (pl.col("suppression").is_null() & pl.col("value").is_not_null() & pl.col("value").is_finite()
                 & (pl.col("area_level") != CITY_ID))
    ranked = cells.filter(published).select(*KEY, "value")
    n = pl.len().over(GROUP)
    rank = pl.col("value").rank(method="min", descending=True).over(GROUP)
    # k = areas with a value <= this one = n - (areas with a higher value) = n - rank + 1
    at_or_below = n - rank + 1
    ranked = ranked.with_columns(
        rank.cast(pl.Int32).alias("value_rank"),
        n.cast(pl.Int32).alias("ranked_areas"),
        pl.when(n >= MIN_AREAS_FOR_DECILES).then((at_or_below * 10 + n - 1) // n).otherwise(None)
        .cast(pl.Int32).alias("value_decile"),
    ).drop("value")
    return cells.drop(RANK_COLUMNS, strict=False).join(ranked, on=KEY, how="left", maintain_order="left")
