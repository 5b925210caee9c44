"""The published marts: the separate DuckDB file BI tools open read-only, swapped in atomically."""


from pathlib import Path

import dagster as dg
import duckdb

from orchestration.partitions import SINGLE_RUN
from orchestration.resources import PipelineSettings, WarehouseResource, storage_failures
from social_monitor.catalogue import read_catalogue
from social_monitor.disclosure import REASONS, Catalogue, DisclosureRule
from social_monitor.settings import CityConfig


@dg.asset(
    key=["published", "marts"],
    group_name="publish",
    backfill_policy=SINGLE_RUN,
    deps=[dg.AssetKey(["classification", "action_areas"]), dg.AssetKey(["classification", "area_classifications"]),
          dg.AssetKey(["marts", "area_indicators"]),
          dg.AssetKey(["marts", "indicators"]), dg.AssetKey(["marts", "areas"])],
    kinds={"duckdb"},
    owners=["team:social-planning"],
    metadata={"contract": "schemas/published.py", "readers": "BI tools and Excel, read-only"},
    description=(
        "The published file (default data/<city>/published/marts.duckdb) with only aggregated tables: areas, "
        "indicators, area_indicators, action_areas, action_area_indicators, action_area_quartiere, "
        "classification_methods, area_classifications, area_classification_dimensions, "
        "area_classification_indicators and publication. Built beside the target, validated against "
        "schemas/published.py and swapped in with an atomic rename, so BI readers never see a half-written file."
    ),
)
def published_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pipeline: PipelineSettings):
    config = CityConfig.from_file(Path(pipeline.config_path))
    from social_monitor.publish import publish  # imported when the step runs, not to load the definitions

    rule = DisclosureRule.from_config(config.publication)
    with storage_failures([pipeline.published_path]):
        counts = publish(Path(warehouse.path), Path(pipeline.published_path), city_name=config.city_name,
                         disclosure=rule, catalogue=Catalogue.from_rows(read_catalogue()))
    with duckdb.connect(str(pipeline.published_path), read_only=True) as con:
        suppressed = dict(con.execute("select suppression, count(*) from area_indicators "
                                      "where suppression is not null group by 1").fetchall())
        audit = con.execute("select * from disclosure_audit order by report_cycle").pl().to_dicts()
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(pipeline.published_path),
            **{f"rows_{table}": rows for table, rows in counts.items()},
            **{f"suppressed_{reason}": suppressed.get(reason, 0) for reason in REASONS},
            # per cycle: suppressed cells, recoverable by subtraction / linear program, narrower than protection
            "disclosure_audit": dg.MetadataValue.json(audit),
        }
    )
