"""Classification assets: the Aktionsräume, and every method the city configures, on the indicator marts.

Both only wire: the work is done by social_monitor.classification (engine and warehouse), without Dagster.
"""


from pathlib import Path

import dagster as dg
import polars as pl

from orchestration.partitions import SINGLE_RUN
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.classification import ActionAreaRule, classify_in_warehouse
from social_monitor.classification.warehouse import classify_methods_in_warehouse
from social_monitor.settings import CityConfig

MARTS = [dg.AssetKey(["marts", name]) for name in ("area_indicators", "indicators", "areas")]


@dg.asset(
    key=["classification", "action_areas"],
    group_name="classification",
    backfill_policy=SINGLE_RUN,
    deps=MARTS,
    kinds={"python", "duckdb"},
    owners=["team:social-planning"],
    metadata={"warehouse_tables": "classification.action_areas, classification.action_area_indicators, "
                                  "classification.action_area_quartiere",
              "rule": "city.yml: action_areas"},
    description=(
        "Aktionsräume (action areas) for every report cycle: the Sozialräume whose social situation is "
        "below the city average by the rule in city.yml (default: at least 2 of transfer rate, "
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


@dg.asset(
    key=["classification", "area_classifications"],
    group_name="classification",
    backfill_policy=SINGLE_RUN,
    deps=MARTS,
    kinds={"python", "duckdb"},
    owners=["team:social-planning"],
    metadata={"warehouse_tables": "classification.classification_methods, classification.area_classifications, "
                                  "classification.area_classification_dimensions, "
                                  "classification.area_classification_indicators",
              "method_config": "city.yml: classification_methods (docs/classification.md)"},
    description=(
        "Gebietsklassifikation by every method: the action-area rule (dortmund_action_areas) and each entry of "
        "classification_methods in city.yml (sample city: mss_style, the Berlin MSS procedure on the "
        "Unterbezirke, and the custom transfer_deviation). Per method, cycle and area: index values, classes, "
        "previous class, flag (kept/new/released), fragility near a class border and reasons. Tables "
        "classification.classification_methods, area_classifications, area_classification_dimensions, "
        "area_classification_indicators."
    ),
)
def area_classifications(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                         pipeline: PipelineSettings):
    config = CityConfig.from_file(Path(pipeline.config_path))
    rule = ActionAreaRule.from_config(config.action_areas)
    with warehouse.connect() as con:
        results = classify_methods_in_warehouse(con, rule, config.methods())
    lines = ["| Verfahren | Berichtsjahr | Gebiete | einbezogen | markiert | neu | entlassen | knapp |",
             "|---|---|---|---|---|---|---|---|"]
    for result in results:
        summary = result.summary()
        lines += [f"| {result.method.id} | {r['report_cycle']} | {r['areas']} | {r['included']} | {r['flagged']} | "
                  f"{r['new']} | {r['released']} | {r['fragile']} |" for r in summary.iter_rows(named=True)]
        for note in result.notes:
            context.log.info(f"{result.method.id}: {note}")
    return dg.MaterializeResult(
        metadata={
            "methods": ", ".join(r.method.id for r in results),
            "classes_per_method_and_cycle": dg.MetadataValue.md("\n".join(lines)),
            "dagster/row_count": sum(r.areas.height for r in results),
        }
    )
