"""``social-monitor report``: the Bericht zur sozialen Lage of every report cycle as self-contained HTML."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from social_monitor.report.pdf import PDF_ENV, PDF_MODES
from social_monitor.sample_city.geometry import BOUNDARIES_FILE, CODE_PROPERTY_ENV, GEOMETRY_ENV, default_geometry
from social_monitor.settings import load_settings

DESCRIPTION = (
    "Write one self-contained HTML report per report cycle (bericht_<cycle>.html: overview, maps, action "
    "areas, time series, tables, a Steckbrief per area of the action-area level, methods, imprint) and, where "
    "chromium is installed, bericht_<cycle>.pdf beside it, from the published file, "
    "opened read-only. The levels mapped are the city's (report.map_levels in city.yml). Maps use --geometry "
    "(GeoJSON or shapefile with the area code; the base areas alone are dissolved to the higher levels) or "
    f"the city folder's geography/{BOUNDARIES_FILE}."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--published", type=Path, default=None,
                        help="published DuckDB file "
                        "(default: $SOCIAL_MONITOR_PUBLISHED or data/<city>/published/marts.duckdb)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: report/ beside the published file)")
    parser.add_argument("--geometry", type=Path, default=None,
                        help="area boundaries, .geojson or .shp "
                        f"(default: ${GEOMETRY_ENV} or the city folder's geography/{BOUNDARIES_FILE})")
    parser.add_argument("--area-code-property", default=None,
                        help=f"property (attribute) holding the area code (default: ${CODE_PROPERTY_ENV} or area_id)")
    parser.add_argument("--cycles", "--cycle", dest="cycle", type=int, nargs="+", action="extend", default=None,
                        metavar="YEAR", help="only these report cycles (as export --cycles; --cycle 2018 --cycle 2025 "
                        "too; default: every cycle of the published file)")
    parser.add_argument("--pdf", choices=list(PDF_MODES), default=None,
                        help="a PDF beside each HTML, printed by headless chromium (about 10-30 s per cycle): "
                        "auto (where "
                        "chromium is installed, else a message), yes (chromium required), no; default: "
                        f"${PDF_ENV} or auto. A report whose PDF is not printed loses its older PDF")


def run(args: argparse.Namespace) -> int:
    """Write the reports with a progress line per cycle; errors (no published file, a wrong geometry, …) are
    reported by ``social_monitor.cli.main``."""
    from social_monitor.cli import progress

    # imported here: matplotlib and the templates cost about a second, which every other command would pay
    from social_monitor.report.generator import generate_report
    from social_monitor.report.pdf import pdf_mode, pdfs_beside

    settings = load_settings()
    mode = args.pdf or pdf_mode(os.environ)  # a wrong $SOCIAL_MONITOR_REPORT_PDF stops before any report is written
    published = args.published = Path(args.published or settings.published_path)  # resolved: errors name it
    out = args.out or published.parent / "report"
    geometry, code_property = default_geometry(settings.city_dir)
    started = time.perf_counter()

    def on_cycle(path: Path, done: int, total: int) -> None:
        nonlocal started
        progress(args, f"report {done} of {total}: {path.name} in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()

    written = generate_report(published, out, args.geometry or geometry, args.area_code_property or code_property,
                              cycles=args.cycle, on_cycle=on_cycle, city_dir=settings.city_dir)
    for path in written:
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")

    def on_pdf(pdf: Path, seconds: float) -> None:
        progress(args, f"PDF {pdf.name} in {seconds:.1f} s")
        print(f"{pdf} ({pdf.stat().st_size / 1e6:.1f} MB)")

    outcome = pdfs_beside(written, mode, on_pdf=on_pdf)
    if outcome.message:
        print(outcome.message)
    return 0
