"""``social-monitor classify``: classify any indicator table by a named method, from the command line."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from social_monitor.classification.engine import Classification, classify
from social_monitor.classification.methods import load_method, shipped_methods
from social_monitor.classification.tables import Columns, TableError, read_table, to_indicator_table, write_table

DESCRIPTION = (
    "Classify the areas of an indicator table (CSV or Parquet; long form with one row per area, cycle and "
    "indicator, or wide form with one column per indicator) by a classification method, and write one row "
    "per cycle and area with the index value, class, previous class and distance to the nearest class border "
    "of every dimension, the combined class, the flag (kept/new/released since the previous cycle) and the "
    "reasons in German."
)
EPILOG = """\
shipped methods: {methods}
  A method can also be a YAML file (see docs/classification.md); `extends: berlin_mss` reuses a shipped one.

examples:
  # Berlin's MSS tables, wide form (one column per indicator S1..S4, D1..D4):
  social-monitor classify --method berlin_mss --input mss_berlin_2013_2021.csv --output classes.csv \\
      --area-column plr_id --cycle-column edition --population-column residents \\
      --valid-column valid --name-column plr_name

  # A long table from Excel (semicolon, decimal comma), the city in rows with area id "city":
  social-monitor classify --method my_method.yml --input indikatoren.csv --separator ';' --decimal-comma \\
      --encoding cp1252 --layout long --indicator-column indikator --value-column wert --city-area city \\
      --output klassen.parquet
"""


def population_option(text: str) -> float:
    """``--min-population``: a finite number >= 0 (``nan`` and ``inf``, which ``float`` reads, are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG.format(methods=", ".join(shipped_methods()))
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--method", required=True,
                        help="a shipped method name (see below) or the path of a method YAML file")
    parser.add_argument("--input", required=True, type=Path, help="indicator table: .csv, .tsv or .parquet")
    parser.add_argument("--output", required=True, type=Path,
                        help="result, one row per cycle and area: .csv or .parquet")
    parser.add_argument("--details", type=Path, default=None,
                        help="also write the indicator-level details (value, mean, SD, z, weight, contribution) "
                             "to this .csv or .parquet file")
    layout = parser.add_argument_group("layout and column names of the input")
    layout.add_argument("--layout", choices=["auto", "long", "wide"], default="auto",
                        help="long: one row per area, cycle and indicator; wide: one column per indicator; auto "
                             "(default): long if the indicator and value columns exist")
    layout.add_argument("--area-column", default="area_id", help="area id column (default: area_id)")
    layout.add_argument("--cycle-column", default="report_cycle",
                        help="report cycle / edition year column (default: report_cycle)")
    layout.add_argument("--population-column", default=None,
                        help="residents per area, for the method's min_population (default: population, if present)")
    layout.add_argument("--valid-column", default=None,
                        help="true/false (also 1/0, ja/nein): false leaves the area out (default: is_valid, if "
                             "present)")
    layout.add_argument("--name-column", default=None, help="area name column (default: area_name, if present)")
    layout.add_argument("--indicator-column", default="indicator_id",
                        help="long form: indicator id column (default: indicator_id)")
    layout.add_argument("--value-column", default="value", help="long form: value column (default: value)")
    layout.add_argument("--city-value-column", default=None,
                        help="long form: the city value of the indicator (default: city_value, if present); "
                             "needed by deviation_from_city and worse_than_city")
    layout.add_argument("--city-area", default=None,
                        help="area id of the rows holding the city values (they are not classified)")
    layout.add_argument("--indicators", default=None,
                        help="comma-separated indicator columns (wide) or ids (long) to read; default: the "
                             "method's indicators")
    layout.add_argument("--separator", default=",", help="CSV field separator (default: ,)")
    layout.add_argument("--decimal-comma", action="store_true", help="numbers are written 1.234,5")
    layout.add_argument("--encoding", default="utf-8-sig",
                        help="CSV text encoding (default: UTF-8, with or without BOM; e.g. cp1252)")
    overrides = parser.add_argument_group("method overrides")
    overrides.add_argument("--min-population", type=population_option, default=None,
                           help="leave out areas with fewer residents (overrides the method)")
    overrides.add_argument("--exclude-area", action="append", default=[], metavar="AREA_ID",
                           help="leave this area out in every cycle (repeatable; added to the method's list)")


def run(args: argparse.Namespace) -> int:
    """Classify; errors are reported by ``social_monitor.cli.main``: a bad option or method file (UsageError,
    MethodError) exits 2, a table that cannot be read or classified (TableError, DataError) exits 1."""
    from social_monitor.cli import UsageError, progress

    for option, path in (("--output", args.output), ("--details", args.details)):
        if path is not None and path.suffix.lower() not in (".csv", ".parquet"):
            raise UsageError(f"{option} {path}: unknown output type {path.suffix!r}; use .csv or .parquet")
    method = load_method(args.method)
    overrides = {}
    if args.min_population is not None:
        overrides["min_population"] = args.min_population
    if args.exclude_area:
        overrides["exclude_areas"] = [*method.exclude_areas, *args.exclude_area]
    if overrides:
        method = load_method({**method.definition, **overrides})
    columns = Columns(
        area=args.area_column, cycle=args.cycle_column, population=args.population_column,
        valid=args.valid_column, name=args.name_column, indicator=args.indicator_column,
        value=args.value_column, city_value=args.city_value_column, city_area=args.city_area)
    frame = read_table(args.input, separator=args.separator, encoding=args.encoding)
    layout = args.layout
    if layout == "auto":
        layout = "long" if {args.indicator_column, args.value_column} <= set(frame.columns) else "wide"
    if args.indicators:
        wanted = [i.strip() for i in args.indicators.split(",")]
    elif layout == "wide":  # the method's indicators; one it needs but the file lacks is reported by classify
        wanted = [i for i in method.indicator_ids if i in frame.columns]
        if not wanted:
            raise TableError(f"{args.input}: none of the method's indicators ({', '.join(method.indicator_ids)}) "
                             f"is a column of the file; it has: {', '.join(frame.columns)}")
    else:
        wanted = None
    table = to_indicator_table(frame, source=str(args.input), columns=columns, layout=layout,
                               indicators=wanted, decimal_comma=args.decimal_comma,
                               non_finite_as_missing=method.missing_values == "exclude_area")
    progress(args, f"read {args.input}: {frame.height:,} rows ({layout} form): {table['area_id'].n_unique():,} areas, "
                   f"{table['report_cycle'].n_unique()} cycles, {table['indicator_id'].n_unique()} indicators")
    progress(args, f"classifying by {method.id}")
    result = classify(table, method)
    progress(args, f"classified {result.areas.height:,} area-cycles in {result.areas['report_cycle'].n_unique()} "
                   f"cycles; writing {args.output}" + (f" and {args.details}" if args.details else ""))
    write_table(result.wide(), args.output)
    if args.details:
        write_table(result.indicators, args.details)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(summary(result))
    print(f"written: {args.output}")
    return 0


def summary(result: Classification) -> str:
    """Per cycle: areas included and left out, and flagged (kept/new/released)."""
    flag_label = result.method.flag_label
    rows = result.summary()
    lines = [f"{'cycle':>6} {'areas':>6} {'included':>8} {'flagged':>8} {'new':>5} {'released':>8} {'fragile':>7}"]
    for r in rows.iter_rows(named=True):
        flagged, new, released = (r["flagged"], r["new"], r["released"]) if flag_label else ("-", "-", "-")
        lines.append(f"{r['report_cycle']:>6} {r['areas']:>6} {r['included']:>8} {flagged:>8} {new:>5} "
                     f"{released:>8} {r['fragile']:>7}")
    if flag_label:
        lines.append(f"flagged = {flag_label}; fragile = a class within the method's sensitivity margin of a border")
    return "\n".join(lines)
