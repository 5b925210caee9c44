"""Raw assets: one per source, one partition per report cycle. Each loads the cycle's delivery into
``raw.<source>`` after validating it against its Pandera contract (social_monitor.ingest)."""


from pathlib import Path

import dagster as dg

from orchestration.partitions import report_cycle_partitions
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.deliveries import SOURCES, Source, find_manifest, reference_date_of
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.settings import CityConfig


def build_raw_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", source.name],
        group_name="raw",
        partitions_def=report_cycle_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"duckdb", "pandera"},
        owners=["team:statistics-office"],
        description=(
            f"{source.contract.__doc__.strip()}\n\nFile: `{source.file_prefix}_<YYYY-12-31>.{source.extension}` "
            f"({source.file_format}, {source.encoding}) from {source.sender}, validated against "
            f"`schemas.raw.{source.contract.__name__}` and loaded into `raw.{source.table}`."
        ),
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pipeline: PipelineSettings):
        policy = CityConfig.from_file(Path(pipeline.config_path)).ingest_policy
        results = []
        with warehouse.connect() as con:
            for key in context.partition_keys:
                manifest = find_manifest(Path(pipeline.landing_dir), source, int(key))
                if manifest is None:
                    raise dg.Failure(
                        description=f"No delivery of {source.name} for report cycle {key}: expected "
                        f"{source.manifest_name(reference_date_of(int(key)))} in {pipeline.landing_dir}"
                    )
                try:
                    result = load_delivery(con, manifest, policy=policy)
                except DeliveryError as exc:
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
        }
        return dg.MaterializeResult(metadata=metadata)

    return _raw


raw_assets = [build_raw_asset(source) for source in SOURCES.values()]
