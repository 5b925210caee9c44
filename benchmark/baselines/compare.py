"""Compare two indicator marts of the shape of ``marts.area_indicators`` (Parquet files).

    python benchmark/baselines/compare.py EXPECTED.parquet ACTUAL.parquet [--tolerance 1e-9]

A DuckDB warehouse can be exported first:
    COPY (select * from marts.area_indicators) TO 'expected.parquet' (FORMAT parquet)
``expected`` may also be given as ``warehouse.duckdb`` (the table marts.area_indicators is read from it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

KEY = ("report_cycle", "area_level", "area_id", "indicator_id")
COLUMNS = {
    "report_cycle": "INTEGER",
    "area_level": "VARCHAR",
    "area_id": "VARCHAR",
    "indicator_id": "VARCHAR",
    "numerator": "BIGINT",
    "denominator": "BIGINT",
    "value": "DOUBLE",
    "city_value": "DOUBLE",
}
MAX_LINES = 20


def _relation(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> list[str]:
    """Create view ``name`` over a Parquet file (or a warehouse's marts.area_indicators); return problems
    with its columns (missing, extra, or of another type)."""
    if path.suffix == ".duckdb":
        con.execute(f"attach {_str(path)} as {name}_db (read_only)")
        con.execute(f"create view {name} as select * from {name}_db.marts.area_indicators")
    else:
        con.execute(f"create view {name} as select * from read_parquet({_str(path)})")
    present = dict(con.execute(f"select column_name, column_type from (describe {name})").fetchall())
    problems = []
    for column, kind in COLUMNS.items():
        if column not in present:
            problems.append(f"{name}: column {column} is missing")
        elif present[column] != kind:
            problems.append(f"{name}: column {column} is {present[column]}, expected {kind}")
    extra = [c for c in present if c not in COLUMNS]
    if extra:
        problems.append(f"{name}: unexpected column(s) {', '.join(extra)}")
    return problems


def compare_area_indicators(expected: Path, actual: Path, *, tolerance: float = 1e-9) -> list[str]:
    """Differences between two area_indicators tables, human-readable; empty when they are equal.

    Same rows by (report_cycle, area_level, area_id, indicator_id), no duplicate keys, equal numerator and
    denominator (null = null), value and city_value equal within ``tolerance`` relative (null = null).
    At most ~20 lines are listed, followed by the total count.
    """
    con = duckdb.connect()
    problems = _relation(con, Path(expected), "expected") + _relation(con, Path(actual), "actual")
    if any("missing" in p for p in problems):
        return problems
    key = ", ".join(KEY)
    key_text = "report_cycle || ' ' || area_level || ' ' || area_id || ' ' || indicator_id"
    lines: list[str] = []
    total = 0

    def add(query: str) -> None:
        nonlocal total
        count = con.execute(f"select count(*) from ({query})").fetchone()[0]
        total += count
        room = MAX_LINES - len(lines)
        if count and room > 0:
            lines.extend(row[0] for row in con.execute(f"{query} limit {room}").fetchall())

    for name in ("expected", "actual"):
        add(f"select '{name}: duplicate key ' || {key_text} || ' (' || n || ' rows)' as line "
            f"from (select {key}, count(*) as n from {name} group by all having n > 1) order by all")
    add(f"select 'missing in actual: ' || {key_text} as line "
        f"from (select {key} from expected except select {key} from actual) order by all")
    add(f"select 'unexpected in actual: ' || {key_text} as line "
        f"from (select {key} from actual except select {key} from expected) order by all")
    for column in ("numerator", "denominator"):
        add(f"select '{column} differs at ' || {key_text} || ': expected ' || coalesce(e_{column}::varchar, 'null') "
            f"|| ', actual ' || coalesce(a_{column}::varchar, 'null') as line from (select {key}, "
            f"e.{column} as e_{column}, a.{column} as a_{column} from expected e join actual a using ({key}) "
            f"where e.{column} is distinct from a.{column}) order by {key}")
    for column in ("value", "city_value"):
        e, a = f"e.{column}", f"a.{column}"
        differs = (f"case when {e} is null or {a} is null then ({e} is null) <> ({a} is null) "
                   f"when isnan({e}) or isnan({a}) then isnan({e}) <> isnan({a}) "
                   f"when {e} = {a} then false "
                   f"else abs({e} - {a}) > {float(tolerance)!r} * greatest(abs({e}), abs({a})) end")
        add(f"select '{column} differs at ' || {key_text} || ': expected ' || coalesce(e_{column}::varchar, 'null') "
            f"|| ', actual ' || coalesce(a_{column}::varchar, 'null') as line from (select {key}, "
            f"{e} as e_{column}, {a} as a_{column} from expected e join actual a using ({key}) "
            f"where {differs}) order by {key}")
    con.close()
    total += len(problems)
    result = problems + lines
    shown = len(result)
    if total > shown:
        result.append(f"... {total - shown} more difference(s), {total} in all")
    elif total > MAX_LINES:
        result.append(f"{total} difference(s) in all")
    return result


def _str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare two area_indicators Parquet files.")
    parser.add_argument("expected", type=Path)
    parser.add_argument("actual", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-9, help="relative tolerance of value, city_value")
    args = parser.parse_args(argv)
    differences = compare_area_indicators(args.expected, args.actual, tolerance=args.tolerance)
    if differences:
        print("\n".join(differences))
        return 1
    rows = duckdb.connect().execute(f"select count(*) from read_parquet({_str(args.actual)})").fetchone()[0]
    print(f"equal: {rows} rows, {args.expected} = {args.actual}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
