"""Load a city's geography (``social_monitor.geography``) into the warehouse's ``reference`` schema, where dbt
reads it. All tables are replaced in one transaction, so a reader never sees half a geography. Plain Python."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import polars as pl

from schemas.reference import CONTRACTS
from social_monitor.geography import REFERENCE_SCHEMA, REFERENCE_TABLES, Geography, reference_rows

_POLARS = {"varchar": pl.Utf8, "integer": pl.Int32, "boolean": pl.Boolean, "double": pl.Float64}


def reference_frames(geography: Geography, cycles: Iterable[int]) -> dict[str, pl.DataFrame]:
    """The reference tables as frames, checked against their contracts (schemas/reference.py)."""
    frames = {}
    for table, rows in reference_rows(geography, cycles).items():
        schema = {column: _POLARS[kind] for column, kind in REFERENCE_TABLES[table].items()}
        frames[table] = CONTRACTS[table].validate(pl.DataFrame(rows, schema=schema, orient="row"), lazy=True)
    return frames


def write_reference(con: duckdb.DuckDBPyConnection, geography: Geography, cycles: Iterable[int]) -> dict[str, int]:
    """Replace the reference tables in one transaction; returns the rows per table."""
    frames = reference_frames(geography, cycles)
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {REFERENCE_SCHEMA}")
        for table, frame in frames.items():
            columns = ", ".join(f"{name} {kind}" for name, kind in REFERENCE_TABLES[table].items())
            con.execute(f"create or replace table {REFERENCE_SCHEMA}.{table} ({columns})")
            con.register("_reference_rows", frame)
            con.execute(f"insert into {REFERENCE_SCHEMA}.{table} select * from _reference_rows")
            con.unregister("_reference_rows")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {table: frame.height for table, frame in frames.items()}
