"""Command line of the sample-city generator (also the ``generate`` subcommand of ``social-monitor``)."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from social_monitor.deliveries import SOURCES
from social_monitor.sample_city.generator import DEFAULT_SEED, generate_cycle, report_cycles

DESCRIPTION = (
    f"Write the raw extracts of the city's synthetic sample city (the person-level sources {', '.join(SOURCES)} "
    "and the partner offices' aggregate deliveries the city's deliveries.yml declares) with a "
    "manifest each, one set per report cycle (reference date 31 December), from the city folder's sample "
    "input (sample/sample.yml) and geography, in the city's delivery layouts (deliveries.yml). Deterministic: "
    "the same seed and scale give byte-identical "
    "files. Prints one summary line per file, never person-level rows."
)


def _scale(text: str) -> float:
    value = float(text)
    if value < 0.05:
        raise argparse.ArgumentTypeError("the scale must be at least 0.05")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("the seed must not be negative")
    return value


def _cycle(text: str) -> int:
    value = int(text)
    if not 2000 <= value <= 2100:
        raise argparse.ArgumentTypeError("a report cycle is a year from 2000 to 2100")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The generator's options (shared by ``python -m social_monitor.sample_city`` and ``social-monitor generate``)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder the files and manifests are written to, flat (default: the landing folder of the selected "
             "city, data/<city>/landing, or SOCIAL_MONITOR_LANDING_DIR)",
    )
    parser.add_argument(
        "--city",
        metavar="CITY",
        help="the city folder: a folder name in config/ or a path (default: SOCIAL_MONITOR_CITY, else dortmund)",
    )
    parser.add_argument(
        "--cycles",
        type=_cycle,
        nargs="+",
        metavar="YEAR",
        help="report cycles to write, any year the city's sample input plans (default: the city's report cycles)",
    )
    parser.add_argument("--seed", type=_seed, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--scale",
        type=_scale,
        default=1.0,
        help="multiplies every area's population; 1.0 is the size of the city, at least 0.05 (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Generate the files described by parsed arguments: one result line per file on stdout (the four files of
    a cycle are written together, so their lines come when the cycle is done) and a total; progress per cycle
    on stderr (none with ``quiet``)."""
    from social_monitor.cli import progress
    from social_monitor.layouts import load_layouts
    from social_monitor.sample_city.aggregates import write_aggregates
    from social_monitor.sample_city.calibration import plan_cycle
    from social_monitor.settings import load_settings

    started = time.perf_counter()
    settings = load_settings({**os.environ, "SOCIAL_MONITOR_CITY": args.city} if args.city else None)
    folder = settings.city_dir
    if args.out is None:
        args.out = settings.landing_dir
    layouts = load_layouts(folder)  # the city's delivery layouts
    cycles = args.cycles or list(report_cycles(folder))
    total = 0
    for done, cycle in enumerate(cycles, start=1):
        step = f"cycle {cycle} ({done} of {len(cycles)})"
        cycle_started = time.perf_counter()
        progress(args, f"{step}: writing the deliveries into {args.out} …")
        rows_of_cycle = 0
        written = generate_cycle(args.out, cycle, seed=args.seed, scale=args.scale, city_dir=folder,
                                 layouts=layouts)
        # the partner offices' aggregate deliveries of the cycle (social_monitor/sample_city/aggregates.py)
        written += write_aggregates(args.out, plan_cycle(folder, cycle, args.scale), args.seed, city_dir=folder,
                                    layouts=layouts)
        for path, rows in written:
            print(f"{path.name}: {rows} rows", flush=True)
            rows_of_cycle += rows
        total += rows_of_cycle
        progress(args, f"{step}: {len(written)} files, {rows_of_cycle:,} rows in "
                       f"{time.perf_counter() - cycle_started:.1f} s")
    print(f"{total} rows in {time.perf_counter() - started:.1f} s, written to {args.out}", flush=True)
    return 0


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="print no progress lines on stderr")
    if prog:
        parser.set_defaults(_prog=prog)  # the name on progress lines
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser("python -m social_monitor.sample_city").parse_args(argv)
    return run(args)
