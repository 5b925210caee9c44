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
import polars as pl
from pandera.config import ValidationDepth, config_context

from schemas.published import PUBLISHED_TABLES, DisclosureAudit, with_area_levels
from social_monitor.catalogue import read_catalogue
from social_monitor.disclosure import Audit, Catalogue, DisclosureRule, Hierarchy
from social_monitor.disclosure import apply as disclosure_apply
from social_monitor.disclosure import audit as disclosure_audit

SUPPRESSED_TEXT = "Werte unterdrückt (statistische Geheimhaltung)"

# published table -> the select that fills it from the attached warehouse, where it differs from select *.
# ``main.area_indicators`` (already suppressed) is there when these run: every value that rests on a
# suppressed cell is emptied and flagged, and a reason text that would quote it is replaced; a city value is
# emptied where the city cell of its indicator is suppressed (as area_indicators.city_value is).
CITY_HIDDEN = """exists (select 1 from main.area_indicators c where c.area_level = 'city' and c.suppression is not null
    and c.indicator_id = {alias}.{indicator} and {cycles})"""


ANY_CYCLE_FOR_CHANGES = "(c.report_cycle = i.report_cycle or i.indicator_id <> i.source_indicator_id)"


def _city_value(alias: str, indicator: str = "indicator_id", cycles: str = "") -> str:
    cycles = cycles or f"c.report_cycle = {alias}.report_cycle"
    return (f"case when {CITY_HIDDEN.format(alias=alias, indicator=indicator, cycles=cycles)} then null "
            f"else {alias}.city_value end as city_value")


SELECTS = {
    "action_areas": f"""
        select a.* replace (case when exists (
                   select 1 from warehouse.classification.action_area_indicators i
                   join main.area_indicators s on s.report_cycle = i.report_cycle and s.area_level = a.area_level
                    and s.area_id = i.area_id and s.indicator_id = i.indicator_id and s.suppression is not null
                   where i.report_cycle = a.report_cycle and i.area_id = a.area_id)
               then '{SUPPRESSED_TEXT}' else a.reasons end as reasons)
        from warehouse.classification.action_areas a""",
    "action_area_indicators": f"""
        select i.* replace (case when s.suppression is null then i.value end as value, {_city_value("i")}),
               s.suppression is not null as is_suppressed
        from warehouse.classification.action_area_indicators i
        left join main.area_indicators s
          on s.report_cycle = i.report_cycle and s.area_id = i.area_id and s.indicator_id = i.indicator_id
         and s.area_level = (select any_value(area_level) from warehouse.classification.action_areas)""",
    "action_area_quartiere": f"""
        select q.* replace (case when s.suppression is null then q.value end as value, {_city_value("q")}),
               s.suppression is not null as is_suppressed
        from warehouse.classification.action_area_quartiere q
        left join main.area_indicators s
          on s.report_cycle = q.report_cycle and s.area_id = q.base_area_id
         and s.area_level = (select area_level from warehouse.marts.area_levels where is_base)
         and s.indicator_id = q.indicator_id""",
    # an index input is hidden when its cell is suppressed in that cycle, or, for a change between cycles,
    # in any cycle; then all inputs of that dimension are hidden, or the index would give the missing one
    "area_classification_indicators": f"""
        with hidden as (
            select distinct i.method_id, i.report_cycle, i.area_id, i.dimension_id
            from warehouse.classification.area_classification_indicators i
            join warehouse.classification.classification_methods m using (method_id)
            join main.area_indicators s
              on s.area_level = m.area_level and s.area_id = i.area_id and s.indicator_id = i.source_indicator_id
             and s.suppression is not null
             and (s.report_cycle = i.report_cycle or i.indicator_id <> i.source_indicator_id)
        )
        select i.* replace (case when h.area_id is null then i.value end as value,
                            case when h.area_id is null then i.standardised end as standardised,
                            case when h.area_id is null then i.contribution end as contribution,
                            {_city_value("i", "source_indicator_id", ANY_CYCLE_FOR_CHANGES)}),
               h.area_id is not null as is_suppressed
        from warehouse.classification.area_classification_indicators i
        left join hidden h using (method_id, report_cycle, area_id, dimension_id)""",
    "area_classifications": f"""
        select c.* replace (
                   case when exists (select 1 from main.area_classification_indicators i
                                     where i.method_id = c.method_id and i.report_cycle = c.report_cycle
                                       and i.area_id = c.area_id and i.is_suppressed)
                        then '{SUPPRESSED_TEXT}' else c.reasons end as reasons,
                   case when p.suppression is null then c.population end as population)
        from warehouse.classification.area_classifications c
        join warehouse.classification.classification_methods m using (method_id)
        left join main.area_indicators p
          on p.report_cycle = c.report_cycle and p.area_level = m.area_level and p.area_id = c.area_id
         and p.indicator_id = 'residents'""",
}


def publish(warehouse_path: Path, published_path: Path, *, city_name: str = "",
            disclosure: DisclosureRule | None = None, catalogue: Catalogue | None = None) -> dict[str, int]:
    """Copy the published tables from the warehouse into ``published_path``; returns rows per table.

    ``area_indicators`` passes the disclosure control first (``social_monitor.disclosure``), and every
    other table hides what rests on a suppressed cell. The disclosure audit of the published cells goes into
    the table ``disclosure_audit`` (per cycle, counts of cells only); a publication whose audit finds a
    recoverable cell is refused.
    """
    disclosure = disclosure or DisclosureRule()
    catalogue = catalogue or Catalogue.from_rows(read_catalogue())
    published_path = Path(published_path)
    published_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = published_path.with_name(published_path.name + ".tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)

    counts: dict[str, int] = {}
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"attach '{Path(warehouse_path).as_posix()}' as warehouse (read_only)")
        cells = con.execute("select * from warehouse.marts.area_indicators").pl()
        hierarchy = read_hierarchy(con, "warehouse.marts.")
        area_indicators = disclosure_apply(cells, hierarchy, disclosure, catalogue)
        checked = disclosure_audit(area_indicators, hierarchy, catalogue, disclosure)
        if not checked.passed:
            raise RuntimeError(f"disclosure audit failed: {summary(checked)}")
        con.execute("create table main.area_indicators as select * from area_indicators")
        audit_rows = pl.DataFrame(checked.per_cycle()).with_columns(  # noqa: F841 - read by DuckDB
            pl.col("report_cycle").cast(pl.Int32), pl.lit(disclosure.min_count, dtype=pl.Int64).alias("min_count"),
            pl.lit(disclosure.min_population_for_rates, dtype=pl.Int64).alias("min_population_for_rates"))
        con.execute("create table main.disclosure_audit as select * from audit_rows")
        order = ["area_indicators", "area_classification_indicators"]
        for table in order + [t for t in PUBLISHED_TABLES if t not in order]:
            if table == "area_indicators":
                continue
            select = SELECTS.get(table, f"select * from warehouse.{PUBLISHED_TABLES[table][0]}")
            con.execute(f"create table main.{table} as {select}")
        con.execute("detach warehouse")
        cycles = [row[0] for row in con.execute(
            "select distinct report_cycle from main.area_indicators order by 1").fetchall()]
        # the city's levels (from its geography, through marts.area_levels) are injected into the contracts here
        levels = [row[0] for row in con.execute("select area_level from main.area_levels").fetchall()]
        with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
            DisclosureAudit.validate(con.execute("select * from main.disclosure_audit").pl(), lazy=True)
            for table, (_source, contract) in PUBLISHED_TABLES.items():
                with_area_levels(contract, levels).validate(con.execute(f"select * from main.{table}").pl(),
                                                            lazy=True)
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
        try:
            con.close()
        except duckdb.Error:  # the error raised is the cause (a full disk), not a failed clean-up
            pass
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, published_path)
    return counts


def summary(result: Audit) -> str:
    """One line of the audit's figures over all cycles."""
    rows = result.per_cycle()
    return ", ".join(f"{sum(r[k] for r in rows)} {k.replace('_', ' ')}" for k in (
        "suppressed_cells", "recoverable_by_subtraction", "recoverable_by_linear_program",
        "narrower_than_protection"))


def read_hierarchy(con: duckdb.DuckDBPyConnection, prefix: str = "") -> Hierarchy:
    """Which areas add up to which, from the tables area_levels and area_hierarchy (``prefix``: their schema)."""
    return Hierarchy.from_tables(con.execute(f"select * from {prefix}area_levels").pl(),
                                 con.execute(f"select * from {prefix}area_hierarchy").pl())


def read_audit(published_path: Path, catalogue: Catalogue, rule: DisclosureRule) -> Audit:
    """The disclosure audit of a published file, from its own cells and geography only (what a reader has)."""
    with duckdb.connect(str(published_path), read_only=True) as con:
        cells = con.execute("select * from area_indicators").pl()
        hierarchy = read_hierarchy(con)
    return disclosure_audit(cells, hierarchy, catalogue, rule)


def published_rule(con: duckdb.DuckDBPyConnection) -> DisclosureRule:
    """The disclosure rule a published file was made under (from its disclosure_audit), for the texts that
    describe it; the default rule for a file without one."""
    tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    if "disclosure_audit" not in tables:
        return DisclosureRule()
    row = con.execute("select any_value(min_count), any_value(min_population_for_rates), "
                      "any_value(protection_interval) from disclosure_audit").fetchone()
    if row[0] is None:
        return DisclosureRule()
    return DisclosureRule(min_count=row[0], min_population_for_rates=row[1], protection_interval=row[2])


def read_action_areas(published_path: Path) -> list[tuple]:
    """(report_cycle, area_id, area_name, change_since_previous, reasons) of every action area, read-only."""
    with duckdb.connect(str(published_path), read_only=True) as con:
        return con.execute(
            "select report_cycle, area_id, area_name, change_since_previous, reasons from action_areas "
            "where is_action_area order by report_cycle, area_id"
        ).fetchall()
