"""``social-monitor report``: the Bericht zur sozialen Lage of every report cycle as self-contained HTML."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from social_monitor.sample_city.geometry import default_geometry
from social_monitor.settings import load_settings

DESCRIPTION = (
    "Write one self-contained HTML report per report cycle (bericht_<cycle>.html: overview, maps, action "
    "areas, time series, tables, a Steckbrief per Sozialraum) from the published file, opened read-only. "
    "Maps use --geometry (GeoJSON or shapefile with the area code; Unterbezirke alone are dissolved to the "
    "higher levels) or the sample city's synthetic geometry."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--published", type=Path, default=None,
                        help="published DuckDB file "
                        "(default: $SOCIAL_MONITOR_PUBLISHED or data/published/marts.duckdb)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: report/ beside the published file)")
    geometry, code_property = default_geometry()
    parser.add_argument("--geometry", type=Path, default=None,
                        help="area boundaries, .geojson or .shp "
                        f"(default: $SOCIAL_MONITOR_GEOMETRY or {geometry.name})")
    parser.add_argument("--area-code-property", default=None,
                        help=f"property (attribute) holding the area code (default: {code_property})")
    parser.add_argument("--cycle", type=int, action="append", default=None,
                        help="only this report cycle (repeatable; default: every cycle of the published file)")


def run(args: argparse.Namespace) -> int:
    """Write the reports with a progress line per cycle; errors (no published file, a wrong geometry, …) are
    reported by ``social_monitor.cli.main``."""
    from social_monitor.cli import progress

    # imported here: matplotlib and the templates cost about a second, which every other command would pay
    from social_monitor.report.generator import generate_report

    published = args.published = Path(args.published or load_settings().published_path)  # resolved: errors name it
    out = args.out or published.parent / "report"
    geometry, code_property = default_geometry()
    started = time.perf_counter()

    def on_cycle(path: Path, done: int, total: int) -> None:
        nonlocal started
        progress(args, f"report {done} of {total}: {path.name} in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()

    written = generate_report(published, out, args.geometry or geometry, args.area_code_property or code_property,
                              cycles=args.cycle, on_cycle=on_cycle)
    for path in written:
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
