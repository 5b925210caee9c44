"""Hand-written DuckDB baseline: runs hand_written.sql on the raw deliveries and writes the indicator mart.

    python benchmark/baselines/hand_written.py --landing DIR --seeds DIR --cycles 2007 2012 --out FILE.parquet

--seeds is the dbt seeds folder (reference/*.csv, catalogue/indicator_catalogue.csv). No orchestration, no
validation, no project imports: the script a statistics office would write itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

SQL = Path(__file__).with_name("hand_written.sql")


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True, help="folder with the delivered files")
    parser.add_argument("--seeds", type=Path, required=True, help="dbt_project/seeds (reference/, catalogue/)")
    parser.add_argument("--cycles", type=int, nargs="+", required=True, help="report cycles, e.g. 2007 2012")
    parser.add_argument("--out", type=Path, required=True, help="output Parquet file")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 8GB (default: DuckDB's)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if args.threads:
        con.execute(f"set threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"set memory_limit = {_literal(args.memory_limit)}")
    # literals, not bound parameters: binding Python values makes the duckdb module import pandas (~1 s)
    con.execute(f"set variable landing = {_literal(args.landing.resolve())}")
    con.execute(f"set variable seeds = {_literal(args.seeds.resolve())}")
    con.execute(f"set variable cycles = [{', '.join(str(int(c)) for c in sorted(set(args.cycles)))}]::integer[]")
    con.execute(f"set variable out = {_literal(args.out.resolve())}")
    con.execute(SQL.read_text(encoding="utf-8"))
    rows = con.execute(f"select count(*) from read_parquet({_literal(args.out.resolve())})").fetchone()[0]
    print(f"hand_written: {rows} rows -> {args.out} in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
