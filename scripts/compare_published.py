"""Compare two published files (``data/<city>/published/marts.duckdb``) table by table, cell by cell.

    .venv/bin/python scripts/compare_published.py <before.duckdb> <after.duckdb> [--ignore table.column ...]

Every table present in both is compared on the columns they share: rows are matched as whole rows (sorted, as
a multiset), so row order does not count and a changed cell shows as one row only before and one only after.
Tables and columns present in only one file are listed (a table or column added on purpose is named with
``--ignore``; the rows of ``publication`` naming an ignored table are left out too). A column of ``areas``
that moved into the long table ``area_hierarchy`` is named with ``--moved areas.<column>=<level>``: each
area's value before must equal its area of that level after (the area itself on its own level, empty where
it lies in none). ``publication.published_at`` always differs and is ignored. Exit status 0 when every
shared table is identical and nothing but the ignored and moved columns and tables differ.

The Dortmund sample before and after issue 11 part 2 (README, "Unchanged where nothing changed"):

    scripts/compare_published.py before.duckdb after.duckdb --ignore area_levels area_hierarchy \
        --moved areas.stadtbezirk_id=stadtbezirk areas.bezirk_id=statistischer_bezirk \
        areas.sozialraum_id=sozialraum
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

ALWAYS_IGNORED = {"publication.published_at"}


def columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_catalog = ? and table_name = ? "
        "order by ordinal_position", [catalog, table]).fetchall()]


def moved_column(con: duckdb.DuckDBPyConnection, column: str, level: str) -> tuple[int, int]:
    """(rows compared, rows that differ) between b.areas.<column> and the area of ``level`` in a.area_hierarchy."""
    return con.execute(f"""
        with after as (
            select a.area_level, a.area_id,
                   case when a.area_level = ? then a.area_id else h.container_id end as value
            from a.main.areas a
            left join a.main.area_hierarchy h
              on h.area_level = a.area_level and h.area_id = a.area_id and h.container_level = ?
        )
        select count(*), count(*) filter (where b."{column}" is distinct from after.value)
        from b.main.areas b
        full join after on b.area_level = after.area_level and b.area_id = after.area_id""",
        [level, level]).fetchone()


def compare(before: Path, after: Path, ignored: set[str],
            moved: dict[str, str] | None = None) -> tuple[list[str], bool]:
    moved = moved or {}
    lines, same = [], True
    con = duckdb.connect()
    con.execute(f"attach '{before}' as b (read_only)")
    con.execute(f"attach '{after}' as a (read_only)")
    tables = {}
    for alias in ("b", "a"):
        tables[alias] = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = ?", [alias]).fetchall()}
    for table in sorted(tables["b"] - tables["a"]):
        lines.append(f"{table}: only before")
        same = same and table in ignored
    for table in sorted(tables["a"] - tables["b"]):
        lines.append(f"{table}: only after" + (" (ignored)" if table in ignored else ""))
        same = same and table in ignored
    for table in sorted(tables["b"] & tables["a"]):
        cols_b, cols_a = columns(con, "b", table), columns(con, "a", table)
        shared = [c for c in cols_b if c in cols_a and f"{table}.{c}" not in ignored | ALWAYS_IGNORED]
        extra = []
        for c in cols_b:
            if c in cols_a:
                continue
            if f"{table}.{c}" in moved:
                compared, differ = moved_column(con, c, moved[f"{table}.{c}"])
                extra.append(f"{c} (moved to area_hierarchy, level {moved[f'{table}.{c}']}: {compared} rows, "
                             f"{differ} differ{'' if differ else ', ignored'})")
            else:
                extra.append(f"{c} (only before)")
        extra += [f"{c} (only after{', ignored' if f'{table}.{c}' in ignored else ''})" for c in cols_a
                  if c not in cols_b]
        if any(not e.endswith("ignored)") for e in extra):
            same = False
        select = ", ".join(f'"{c}"' for c in shared)
        where = ""
        if table == "publication" and ignored:
            where = " where table_name not in (" + ", ".join(f"'{t}'" for t in sorted(ignored)) + ")"
        source_b, source_a = f"b.main.{table}{where}", f"a.main.{table}{where}"
        rows_b = con.execute(f"select count(*) from {source_b}").fetchone()[0]
        rows_a = con.execute(f"select count(*) from {source_a}").fetchone()[0]
        only_b = con.execute(f"select count(*) from (select {select} from {source_b} except all "
                             f"select {select} from {source_a})").fetchone()[0]
        only_a = con.execute(f"select count(*) from (select {select} from {source_a} except all "
                             f"select {select} from {source_b})").fetchone()[0]
        cells = rows_b * len(shared)
        status = "identical" if only_b == only_a == 0 and rows_a == rows_b else "DIFFERENT"
        same = same and status == "identical"
        lines.append(f"{table}: {status}: {rows_b} rows before, {rows_a} after, {len(shared)} shared columns "
                     f"({cells} cells); rows only before {only_b}, only after {only_a}"
                     + (f"; columns {', '.join(extra)}" if extra else ""))
        if only_b or only_a:
            sample = con.execute(f"(select 'before' as side, {select} from {source_b} except all "
                                 f"select 'before', {select} from {source_a}) union all "
                                 f"(select 'after', {select} from {source_a} except all "
                                 f"select 'after', {select} from {source_b}) limit 6").fetchall()
            lines += [f"    {row}" for row in sample]
    return lines, same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore", nargs="*", default=[],
                        help="table or table.column added on purpose (not compared)")
    parser.add_argument("--moved", nargs="*", default=[],
                        help="areas.<column>=<level>: a column of areas now in area_hierarchy")
    args = parser.parse_args(argv)
    moved = dict(item.split("=", 1) for item in args.moved)
    lines, same = compare(args.before, args.after, set(args.ignore), moved)
    print("\n".join(lines))
    print("SAME" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
