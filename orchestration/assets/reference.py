"""The city's geography (``<city folder>/geography/``) in the warehouse's ``reference`` schema, read by dbt as
sources. One step writes all its tables (levels, areas, memberships, containers and the conversion between
geography versions) in one transaction (a reader never sees half a geography); each
table is its own asset because dbt reads each as its own source."""

from pathlib import Path

import dagster as dg

from orchestration.partitions import SINGLE_RUN
from orchestration.resources import PipelineSettings, WarehouseResource
from schemas.reference import CONTRACTS
from social_monitor.geography import REFERENCE_SCHEMA, REFERENCE_TABLES, GeographyError, load_geography
from social_monitor.reference import write_reference
from social_monitor.settings import CityConfig


@dg.multi_asset(
    name="geography",
    backfill_policy=SINGLE_RUN,  # runs once in a run over a range of report cycles (make run)
    specs=[dg.AssetSpec(
        key=[REFERENCE_SCHEMA, table], group_name="reference", kinds={"duckdb", "pandera"},
        owners=["team:statistics-office"],
        description=(
            f"{(CONTRACTS[table].__doc__ or '').strip()}\n\nPart of the city's Gebietsgliederung, read from its "
            "folder's `geography/` (levels.yml and one areas file per level, social_monitor/geography.py) into the "
            f"warehouse table `{REFERENCE_SCHEMA}.{table}`, checked against `schemas.reference."
            f"{CONTRACTS[table].__name__}`. All reference tables are replaced in one transaction."),
        metadata={"warehouse_table": f"{REFERENCE_SCHEMA}.{table}",
                  "contract": f"schemas.reference.{CONTRACTS[table].__name__}"},
    ) for table in REFERENCE_TABLES],
)
def geography(warehouse: WarehouseResource, pipeline: PipelineSettings):
    city = pipeline.city_folder()
    cycles = CityConfig.from_file(Path(pipeline.config_path)).report_cycles
    try:
        loaded = load_geography(city)
        with warehouse.connect() as con:
            rows = write_reference(con, loaded, cycles)  # reads and checks conversion.csv too
    except GeographyError as exc:  # names the file, line and column
        raise dg.Failure(description=str(exc)) from None
    for table, count in rows.items():
        yield dg.MaterializeResult(asset_key=[REFERENCE_SCHEMA, table], metadata={
            "city_folder": dg.MetadataValue.path(str(city)), "rows": count,
            "levels": ", ".join(level.id for level in loaded.levels), "base_level": loaded.base.id})
