"""Raw assets: one per source, one partition per report cycle. Each loads the cycle's delivery into
``raw.<source>`` after validating it against its Pandera contract (social_monitor.ingest)."""


import inspect
from pathlib import Path

import dagster as dg

from orchestration.partitions import SINGLE_RUN, report_cycle_partitions
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.deliveries import ManifestError, Source, find_manifest, reference_date_of
from social_monitor.geography import GeographyError, load_geography
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.layouts import LAYOUT_FILE, LayoutError, delivered_sources, load_layouts
from social_monitor.pseudonyms import PseudonymKey
from social_monitor.settings import CityConfig, load_settings


def build_raw_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", source.name],
        group_name="raw",
        partitions_def=report_cycle_partitions,
        backfill_policy=SINGLE_RUN,
        kinds={"duckdb", "pandera"},
        owners=["team:statistics-office"],
        description=(
            f"{inspect.cleandoc(source.contract.__doc__)}\n\n"
            f"File: named, formatted and headed as the city's delivery layout ({LAYOUT_FILE}, key "
            f"`{'aggregates: ' if source.is_aggregate else ''}{source.name}`) says, with a manifest; recoded to "
            f"and validated against `{source.contract.__module__}.{source.contract.__name__}` and loaded into "
            f"`raw.{source.table}`."
        ),
        metadata={
            "warehouse_table": f"raw.{source.table}",
            "contract": f"{source.contract.__module__}.{source.contract.__name__}",
            "delivery_layout": f"<city folder>/{LAYOUT_FILE}: {source.name}",
        },
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pipeline: PipelineSettings):
        config = CityConfig.from_file(Path(pipeline.config_path))
        city = pipeline.city_folder()
        try:  # the city's delivery layout, and the area keys a delivery may carry per report cycle
            layout = load_layouts(city).get(source.name)
            geography = load_geography(city)
        except (LayoutError, GeographyError) as exc:
            raise dg.Failure(description=str(exc)) from None
        if layout is None and source.is_aggregate:  # the definitions were built from another city's layouts
            context.log.warning(f"{city / LAYOUT_FILE} declares no aggregate delivery {source.name}; nothing loaded")
            return dg.MaterializeResult(metadata={"rows_in": 0, "cycles_not_delivered": ", ".join(
                context.partition_keys)})
        if layout is None:
            raise dg.Failure(description=f"{city / LAYOUT_FILE}: no layout of {source.name} any more; reload the "
                                         "Dagster definitions")
        pseudonym_key = PseudonymKey.from_env()
        if pseudonym_key.is_development and not source.is_aggregate:  # counts per area carry no person key
            context.log.warning(f"Person keys are pseudonymised with the {pseudonym_key.description}.")
        results, not_delivered = [], []
        with warehouse.connect() as con:
            for key in context.partition_keys:
                try:
                    manifest = find_manifest(Path(pipeline.landing_dir), layout, int(key))
                except ManifestError as exc:
                    raise dg.Failure(description=str(exc)) from None
                if manifest is None and source.is_aggregate:
                    # a partner office need not deliver every cycle: its indicators are then absent in that cycle
                    context.log.warning(f"No delivery of {source.name} for report cycle {key} (expected "
                                        f"{layout.manifest_name(reference_date_of(int(key)))}); its indicators "
                                        "are absent in that cycle")
                    not_delivered.append(key)
                    continue
                if manifest is None:
                    raise dg.Failure(
                        description=f"No delivery of {source.name} for report cycle {key}: expected "
                        f"{layout.manifest_name(reference_date_of(int(key)))} in {pipeline.landing_dir}"
                    )
                try:
                    result = load_delivery(con, manifest, policy=config.ingest_policy,
                                           max_rejected_share=config.quarantine_max_share, key=pseudonym_key,
                                           area_keys=layout.area_keys(geography, manifest.report_cycle))
                except (DeliveryError, ManifestError, LayoutError) as exc:
                    raise dg.Failure(description=str(exc)) from None
                context.log.info(
                    f"{result.source_file}: {result.rows_accepted} of {result.rows_in} rows accepted, "
                    f"{result.rows_rejected} rejected"
                )
                results.append(result)
        metadata = {
            "rows_in": sum(r.rows_in for r in results),
            "rows_accepted": sum(r.rows_accepted for r in results),
            "rows_rejected": sum(r.rows_rejected for r in results),
            "files": ", ".join(r.source_file for r in results),
            "dagster/row_count": sum(r.rows_accepted for r in results),
            "quarantine": dg.MetadataValue.md(_quarantine_table(results)),
        }
        if source.is_aggregate:
            metadata["cycles_not_delivered"] = ", ".join(not_delivered) or "none"
        else:
            metadata["pseudonym_key"] = pseudonym_key.description
        return dg.MaterializeResult(metadata=metadata)

    return _raw


def _quarantine_table(results: list) -> str:
    """Quarantined rows per file, column and check: counts only, never a value."""
    counts: dict[tuple[str, str, str], int] = {}
    for result in results:
        for problem in result.problems:
            key = (result.source_file, problem.column or "(row)", problem.check)
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return "No row quarantined."
    rows = "\n".join(f"| {f} | {c} | {k} | {n} |" for (f, c, k), n in sorted(counts.items()))
    return "| file | column | check | rows |\n|---|---|---|---|\n" + rows + "\n\nDetails: raw.rejected_rows"


# the person-level sources and the selected city's aggregate deliveries (config/<city>/deliveries.yml)
SOURCES_OF_CITY = delivered_sources(load_settings().city_dir)
PERSON_LEVEL = [source.name for source in SOURCES_OF_CITY if not source.is_aggregate]
AGGREGATE = [source.name for source in SOURCES_OF_CITY if source.is_aggregate]


DELIVERIES_HEADER = "| source | file | rows in | accepted | rejected | loaded at |\n|---|---|---|---|---|---|\n"


def _rows_of_cycles(con, table: str, columns: str, partition_keys, group_by: bool = False) -> list[tuple]:
    """``columns`` of ``raw.<table>`` for the report cycles ``partition_keys`` (none while the table does not
    exist yet), ordered by their first two columns; ``group_by`` aggregates by the non-aggregate columns."""
    exists = con.execute("select count(*) from information_schema.tables where table_schema = 'raw' and "
                         "table_name = ?", [table]).fetchone()[0]
    if not exists:
        return []
    return con.execute(
        f"select {columns} from raw.{table} where report_cycle in (select unnest(?::integer[])) "
        f"{'group by all ' if group_by else ''}order by 1, 2",
        [[int(key) for key in partition_keys]],
    ).fetchall()


# The delivery log every raw asset writes (dbt reads it as a source). It is partitioned like the raw assets and
# materialised after them: each cycle's materialisation records what the log holds for that cycle (the cycle is
# "loaded" in the UI's partition view), and a run or backfill over a range of cycles can select it with the raw
# group (`--select 'group:raw' --partition-range ...`; an unmaterialisable AssetSpec made such a run fail).
@dg.asset(
    key=["raw", "deliveries"],
    group_name="raw",
    partitions_def=report_cycle_partitions,
    backfill_policy=SINGLE_RUN,
    deps=[["raw", source.name] for source in SOURCES_OF_CITY],
    kinds={"duckdb"},
    owners=["team:statistics-office"],
    description="Delivery log (raw.deliveries): one row per loaded delivery with source, report cycle, file, "
    "SHA-256, rows in, accepted and rejected, and load time. Written by every raw asset; "
    "intermediate/int_base_area_counts recounts only the cycles whose deliveries were loaded again. "
    "A materialisation of a report cycle records the cycle's deliveries as the log holds them (per partition: "
    "sources, files, rows, load time); it fails for a cycle of which no delivery is loaded.",
    metadata={"warehouse_table": "raw.deliveries"},
)
def delivery_log(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.connect() as con:
        rows = _rows_of_cycles(con, "deliveries", "report_cycle, source, source_file, rows_in, rows_accepted, "
                               "rows_rejected, loaded_at", context.partition_keys)
    per_cycle = {key: [r for r in rows if str(r[0]) == key] for key in context.partition_keys}
    empty = [key for key, logged in per_cycle.items() if not logged]
    if empty:
        raise dg.Failure(description=f"No delivery of report cycle(s) {', '.join(empty)} is loaded (raw.deliveries "
                                     "has none): materialise the raw assets of these cycles first")
    for key, logged in per_cycle.items():
        sources = {r[1] for r in logged}
        context.add_asset_metadata(partition_key=key, metadata={
            "report_cycle": int(key),
            "sources_loaded": ", ".join(sorted(sources)),
            "person_level_missing": ", ".join(s for s in PERSON_LEVEL if s not in sources) or "none",
            "aggregates_missing": ", ".join(s for s in AGGREGATE if s not in sources) or "none",
            "rows_in": sum(r[3] for r in logged),
            "rows_accepted": sum(r[4] for r in logged),
            "rows_rejected": sum(r[5] for r in logged),
            "last_loaded_at": str(max(r[6] for r in logged)),
            "deliveries": dg.MetadataValue.md(DELIVERIES_HEADER + "\n".join(
                f"| {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} |" for r in logged)),
        })
    return dg.MaterializeResult()


# raw.aggregates, the one table every aggregate delivery loads into: dbt reads it as a source, so it is an asset
# of its own downstream of each aggregate delivery's raw asset, partitioned like them (each cycle's
# materialisation records the cycle's rows per delivery; a range run over the raw group includes it).
@dg.asset(
    key=["raw", "aggregates"],
    group_name="raw",
    partitions_def=report_cycle_partitions,
    backfill_policy=SINGLE_RUN,
    kinds={"duckdb"},
    owners=["team:statistics-office"],
    deps=[["raw", name] for name in AGGREGATE],
    description="The table raw.aggregates: every aggregate delivery of the partner offices (counts per area, not "
                "persons; schemas/aggregates.py), one row per report cycle, delivery, area and measure. Each "
                "delivery's raw asset (raw/<delivery>) replaces its own rows for its cycle. A materialisation of a "
                "report cycle records the cycle's rows per delivery.",
    metadata={"warehouse_table": "raw.aggregates"},
)
def aggregates_table(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.connect() as con:
        rows = _rows_of_cycles(con, "aggregates", "report_cycle, delivery, count(*)", context.partition_keys,
                               group_by=True)
    for key in context.partition_keys:
        counts = {r[1]: r[2] for r in rows if str(r[0]) == key}
        context.add_asset_metadata(partition_key=key, metadata={
            "report_cycle": int(key),
            "dagster/row_count": sum(counts.values()),
            **{f"rows_{name}": counts.get(name, 0) for name in AGGREGATE},
        })
    return dg.MaterializeResult()


raw_assets = [*(build_raw_asset(source) for source in SOURCES_OF_CITY), delivery_log, aggregates_table]
