"""Parquet and Excel exports of the published marts, one folder per report cycle (social_monitor/exports.py)."""

from pathlib import Path

import dagster as dg

from orchestration.cycles import CyclesConfig, cycles_to_write, files_per_cycle, published_cycles_of
from orchestration.partitions import SINGLE_RUN
from orchestration.resources import PipelineSettings


@dg.asset(
    key=["published", "exports"],
    group_name="publish",
    backfill_policy=SINGLE_RUN,
    deps=[dg.AssetKey(["published", "marts"])],
    kinds={"parquet", "excel"},
    owners=["team:social-planning"],
    description=(
        "Per report cycle, the folder exports/<cycle>/ beside the published file (default "
        "data/<city>/published/exports/): one Parquet file per published table (tables with a report cycle filtered to "
        "it) and the Excel workbook Sozialmonitoring_<Stadt>_<cycle>.xlsx (sheet Hinweise, one sheet per table, "
        "German headers, cells under statistische Geheimhaltung marked 'gesperrt' on grey). Read from the "
        "published file opened read-only; each cycle's folder is swapped in by rename, never half-written. "
        "Every published cycle by default; one cycle alone with the run config `cycles: [<cycle>]`. The check "
        "every_published_cycle_exported says per cycle whether its folder is complete and current."
    ),
)
def published_exports(context: dg.AssetExecutionContext, config: CyclesConfig, pipeline: PipelineSettings):
    # imported when the step runs: the workbook writer and the contracts are not needed to load the definitions
    from schemas.published import DOCUMENTED_TABLES
    from social_monitor.exports import export, has_cycle_column

    published = Path(pipeline.published_path)
    cycles = cycles_to_write(config, published)
    results = export(published, exports_dir(published), cycles)
    # rows per table over the exported cycles; a table without report cycle is in each folder whole, counted once
    rows = {table: (sum(result.rows[table] for result in results) if has_cycle_column(table)
                    else max((result.rows[table] for result in results), default=0))
            for table in DOCUMENTED_TABLES}
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(exports_dir(published))),
            "report_cycles_written": ", ".join(map(str, cycles)),
            "files_written": sum(len(result.files) for result in results),
            **{f"rows_{table}": count for table, count in rows.items()},
            "exports": files_per_cycle({cycle: exports_dir(published) / str(cycle)
                                        for cycle in published_cycles_of(published)}, cycles),
        }
    )


def exports_dir(published: Path) -> Path:
    """Where the exports go: exports/ beside the published file (social_monitor.exports' default)."""
    return published.parent / "exports"
