"""Parquet and Excel exports of the published marts, one folder per report cycle (social_monitor/exports.py)."""

from pathlib import Path

import dagster as dg

from orchestration.partitions import SINGLE_RUN
from orchestration.resources import PipelineSettings
from schemas.published import DOCUMENTED_TABLES
from social_monitor.exports import export, has_cycle_column


@dg.asset(
    key=["published", "exports"],
    group_name="publish",
    backfill_policy=SINGLE_RUN,
    deps=[dg.AssetKey(["published", "marts"])],
    kinds={"parquet", "excel"},
    owners=["team:social-planning"],
    description=(
        "Per report cycle, the folder exports/<cycle>/ beside the published file (default "
        "data/published/exports/): one Parquet file per published table (tables with a report cycle filtered to "
        "it) and the Excel workbook Sozialmonitoring_<Stadt>_<cycle>.xlsx (sheet Hinweise, one sheet per table, "
        "German headers, cells under statistische Geheimhaltung marked 'gesperrt' on grey). Read from the "
        "published file opened read-only; each cycle's folder is swapped in by rename, never half-written."
    ),
)
def published_exports(context: dg.AssetExecutionContext, pipeline: PipelineSettings):
    published = Path(pipeline.published_path)
    results = export(published, published.parent / "exports")
    # rows per table over every exported cycle; a table without report cycle is in each folder whole, counted once
    rows = {table: (sum(result.rows[table] for result in results) if has_cycle_column(table)
                    else max((result.rows[table] for result in results), default=0))
            for table in DOCUMENTED_TABLES}
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(published.parent / "exports")),
            "report_cycles": len(results),
            "files_written": sum(len(result.files) for result in results),
            **{f"rows_{table}": count for table, count in rows.items()},
        }
    )
