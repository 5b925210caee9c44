"""Aktionsräume per report cycle, classified from the indicator marts by the configured rule."""


from pathlib import Path

import dagster as dg
import polars as pl

from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.classification import ActionAreaRule, classify_in_warehouse
from social_monitor.settings import CityConfig


@dg.asset(
    key=["classification", "action_areas"],
    group_name="classification",
    deps=[dg.AssetKey(["marts", "area_indicators"]), dg.AssetKey(["marts", "indicators"]),
          dg.AssetKey(["marts", "areas"])],
    kinds={"python", "duckdb"},
    owners=["team:social-planning"],
    description=(
        "Aktionsräume (action areas) for every report cycle: the Sozialräume whose social situation is "
        "below the city average by the rule in config/city.yml (default: at least 2 of transfer rate, "
        "child transfer rate and SGB-II-Quote worse than the city value), with the indicators that put "
        "each in, the change since the previous cycle (kept, new, released) and the Quartiere still worse "
        "than the city. Tables classification.action_areas, action_area_indicators, action_area_quartiere."
    ),
)
def action_areas(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pipeline: PipelineSettings):
    rule = ActionAreaRule.from_config(CityConfig.from_file(Path(pipeline.config_path)).action_areas)
    with warehouse.connect() as con:
        result = classify_in_warehouse(con, rule)
    areas = result.areas
    summary = (
        areas.group_by("report_cycle")
        .agg(
            pl.col("is_action_area").sum().alias("action_areas"),
            (pl.col("change_since_previous") == "new").sum().alias("new"),
            (pl.col("change_since_previous") == "released").sum().alias("released"),
        )
        .sort("report_cycle")
    )
    table = "| Berichtsjahr | Aktionsräume | neu | entlassen |\n|---|---|---|---|\n" + "\n".join(
        f"| {r['report_cycle']} | {r['action_areas']} | {r['new']} | {r['released']} |"
        for r in summary.iter_rows(named=True)
    )
    listing = "\n".join(
        f"- {r['report_cycle']}: " + ", ".join(
            areas.filter((areas["report_cycle"] == r["report_cycle"]) & areas["is_action_area"])["area_name"].to_list()
        )
        for r in summary.iter_rows(named=True)
    )
    return dg.MaterializeResult(
        metadata={
            "action_areas_per_cycle": dg.MetadataValue.md(table + "\n\n" + listing),
            "dagster/row_count": areas.height,
        }
    )
