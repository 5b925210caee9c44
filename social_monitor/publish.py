"""Publish the marts to the separate DuckDB file BI tools read, atomically.

The warehouse holds person-level rows and is written by every run; BI tools must never open it. The
published file holds only the aggregated tables of ``schemas/published.py``. It is built beside the target
as ``<name>.tmp``, validated against the contracts, checkpointed and closed, and then moved over the
published file with ``os.replace``: a reader sees the old file or the new one, never a half-written one.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
from pandera.config import ValidationDepth, config_context

from schemas.published import PUBLISHED_TABLES


def publish(warehouse_path: Path, published_path: Path, *, city_name: str = "") -> dict[str, int]:
    """Copy the published tables from the warehouse into ``published_path``; returns rows per table."""
    published_path = Path(published_path)
    published_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = published_path.with_name(published_path.name + ".tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)

    counts: dict[str, int] = {}
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"attach '{Path(warehouse_path).as_posix()}' as warehouse (read_only)")
        for table, (source, _contract) in PUBLISHED_TABLES.items():
            con.execute(f"create table main.{table} as select * from warehouse.{source}")
        con.execute("detach warehouse")
        cycles = [row[0] for row in con.execute(
            "select distinct report_cycle from main.area_indicators order by 1").fetchall()]
        with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
            for table, (_source, contract) in PUBLISHED_TABLES.items():
                contract.validate(con.execute(f"select * from main.{table}").pl(), lazy=True)
                counts[table] = con.execute(f"select count(*) from main.{table}").fetchone()[0]
        published_at = dt.datetime.now().replace(microsecond=0)
        con.execute("create table main.publication (table_name varchar, row_count bigint, published_at timestamp, "
                    "report_cycles varchar, city_name varchar)")
        con.executemany(
            "insert into main.publication values (?, ?, ?, ?, ?)",
            [(table, rows, published_at, ", ".join(map(str, cycles)), city_name) for table, rows in counts.items()],
        )
        con.execute("checkpoint")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, published_path)
    return counts


def read_action_areas(published_path: Path) -> list[tuple]:
    """(report_cycle, area_id, area_name, change_since_previous, reasons) of every action area, read-only."""
    with duckdb.connect(str(published_path), read_only=True) as con:
        return con.execute(
            "select report_cycle, area_id, area_name, change_since_previous, reasons from action_areas "
            "where is_action_area order by report_cycle, area_id"
        ).fetchall()
