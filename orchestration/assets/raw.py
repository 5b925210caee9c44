"""Raw assets: one per source, one partition per report cycle. Each loads the cycle's delivery into
``raw.<source>`` after validating it against its Pandera contract (social_monitor.ingest)."""


import inspect
from pathlib import Path

import dagster as dg

from orchestration.partitions import SINGLE_RUN, report_cycle_partitions
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.deliveries import SOURCES, ManifestError, Source, find_manifest, reference_date_of
from social_monitor.geography import GeographyError, load_geography
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.layouts import LAYOUT_FILE, LayoutError, load_layouts
from social_monitor.pseudonyms import PseudonymKey
from social_monitor.settings import CityConfig


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
            f"`{source.name}`) says, with a manifest; recoded to and validated against "
            f"`schemas.raw.{source.contract.__name__}` and loaded into `raw.{source.table}`."
        ),
        metadata={
            "warehouse_table": f"raw.{source.table}",
            "contract": f"schemas.raw.{source.contract.__name__}",
            "delivery_layout": f"<city folder>/{LAYOUT_FILE}: {source.name}",
        },
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pipeline: PipelineSettings):
        config = CityConfig.from_file(Path(pipeline.config_path))
        city = pipeline.city_folder()
        try:  # the city's delivery layout, and the area keys a delivery may carry per report cycle
            layout = load_layouts(city)[source.name]
            geography = load_geography(city)
        except (LayoutError, GeographyError) as exc:
            raise dg.Failure(description=str(exc)) from None
        pseudonym_key = PseudonymKey.from_env()
        if pseudonym_key.is_development:
            context.log.warning(f"Person keys are pseudonymised with the {pseudonym_key.description}.")
        results = []
        with warehouse.connect() as con:
            for key in context.partition_keys:
                try:
                    manifest = find_manifest(Path(pipeline.landing_dir), layout, int(key))
                except ManifestError as exc:
                    raise dg.Failure(description=str(exc)) from None
                if manifest is None:
                    raise dg.Failure(
                        description=f"No delivery of {source.name} for report cycle {key}: expected "
                        f"{layout.manifest_name(reference_date_of(int(key)))} in {pipeline.landing_dir}"
                    )
                try:
                    result = load_delivery(con, manifest, policy=config.ingest_policy,
                                           max_rejected_share=config.quarantine_max_share, key=pseudonym_key,
                                           area_keys=geography.base_keys(manifest.report_cycle))
                except (DeliveryError, ManifestError) as exc:
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
            "pseudonym_key": pseudonym_key.description,
        }
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


# The delivery log every raw asset writes (dbt reads it as a source): shown in the raw group of the graph, not
# materialised by itself (an external asset: no job or selection runs it).
delivery_log = dg.AssetSpec(
    key=["raw", "deliveries"],
    group_name="raw",
    kinds={"duckdb"},
    owners=["team:statistics-office"],
    description="Delivery log (raw.deliveries): one row per loaded delivery with source, report cycle, file, "
    "SHA-256, rows in, accepted and rejected, and load time. Written by every raw asset; "
    "intermediate/int_base_area_counts recounts only the cycles whose deliveries were loaded again.",
    metadata={"warehouse_table": "raw.deliveries"},
)

raw_assets = [*(build_raw_asset(source) for source in SOURCES.values()), delivery_log]
