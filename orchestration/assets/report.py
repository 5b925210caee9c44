"""The report per report cycle (Bericht zur sozialen Lage), written from the published file."""

import os
from pathlib import Path

import dagster as dg

from orchestration.cycles import CyclesConfig, cycles_to_write, files_per_cycle, published_cycles_of
from orchestration.partitions import SINGLE_RUN
from orchestration.resources import PipelineSettings
from social_monitor.report.files import report_file_name
from social_monitor.report.pdf import pdf_mode, pdfs_beside


@dg.asset(
    key=["report", "bericht"],
    group_name="report",
    backfill_policy=SINGLE_RUN,
    deps=[dg.AssetKey(["published", "marts"])],
    kinds={"html", "pdf"},
    owners=["team:social-planning"],
    description=(
        "One self-contained HTML report per report cycle (report/bericht_<cycle>.html beside the published "
        "file) and its PDF (bericht_<cycle>.pdf, printed by headless chromium, 20-30 s per cycle): overview, "
        "choropleth maps per indicator of the city's map levels (report.map_levels in city.yml), "
        "action areas, time series, tables and a Steckbrief per area of the action-area level. Reads only the "
        "published file, the city folder's declarations and the geometry ($SOCIAL_MONITOR_GEOMETRY, "
        "$SOCIAL_MONITOR_GEOMETRY_CODE_PROPERTY; default: the city folder's geography/boundaries.geojson). "
        "Where chromium is not installed (or $SOCIAL_MONITOR_REPORT_PDF=no) no PDF is printed and a cycle's older "
        "PDF is removed, so no PDF older than its HTML remains; the metadata and a log line say so. "
        "Every published cycle by default; one cycle alone with the run config `cycles: [<cycle>]`. The metadata "
        "lists every cycle's report (written in this run or before); the check every_published_cycle_has_its_report "
        "says per cycle whether its report is there, newer than the published file, and not older than its PDF."
    ),
)
def report_bericht(context: dg.AssetExecutionContext, config: CyclesConfig, pipeline: PipelineSettings):
    # imported here: matplotlib and the templates cost about a second, and every Dagster process (each run, the
    # UI's code server) loads this module, most of them without writing a report
    from social_monitor.report.generator import generate_report
    from social_monitor.sample_city.geometry import default_geometry

    mode = pdf_mode(os.environ)
    published = Path(pipeline.published_path)
    cycles = cycles_to_write(config, published)
    geometry, code_property = default_geometry(pipeline.city_folder())
    # the PDFs the HTML written now makes stale (generate_report removes them; pdfs_beside prints the new ones)
    older_pdfs = [report_path(published, cycle).with_suffix(".pdf") for cycle in cycles]
    older_pdfs = [path.name for path in older_pdfs if path.exists()]
    written = generate_report(published, published.parent / "report", geometry, code_property, cycles=cycles,
                              city_dir=pipeline.city_folder())
    context.log.info(f"report written for report cycle(s) {', '.join(map(str, cycles))}")
    outcome = pdfs_beside(written, mode,
                          on_pdf=lambda pdf, seconds: context.log.info(f"{pdf.name} printed in {seconds:.0f} s"))
    if not outcome.printed:
        pdf_note = (f"{outcome.message or 'no PDF ($SOCIAL_MONITOR_REPORT_PDF=no)'}"
                    + (f"; removed the PDF(s) older than their new HTML: {', '.join(older_pdfs)}" if older_pdfs
                       else ""))
        context.log.warning(pdf_note)
    else:
        pdf_note = f"printed {len(outcome.printed)} PDF(s)"
    return dg.MaterializeResult(
        metadata={
            "geometry": dg.MetadataValue.path(str(geometry)),
            "report_cycles_written": ", ".join(map(str, cycles)),
            "pdf": pdf_note,
            **{f"path_{path.stem}": dg.MetadataValue.path(str(path)) for path in written},
            **{f"bytes_{path.stem}": path.stat().st_size for path in written},
            **{f"pdf_bytes_{path.stem}": path.stat().st_size for path in outcome.printed},
            "reports": files_per_cycle(
                {cycle: report_path(published, cycle) for cycle in published_cycles_of(published)}, cycles),
        }
    )


def report_path(published: Path, cycle: int) -> Path:
    """Where generate_report writes a cycle's report (its out_dir is report/ beside the published file)."""
    return published.parent / "report" / report_file_name(cycle)
