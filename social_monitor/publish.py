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

from schemas.published import (
    AREA_KEY_SEPARATOR,
    DOCUMENTED_TABLES,
    LONG_VIEW,
    LONG_VIEW_COLUMNS,
    PUBLISHED_TABLES,
    VIEW_COUNT_SOURCES,
    VIEW_SUPPRESSED_SOURCES,
    VIEW_VALUE_SOURCES,
    WIDE_VIEW_COLUMNS,
    WIDE_VIEW_DESCRIPTION,
    DisclosureAudit,
    data_dictionary,
    is_count,
    primary_key,
    rounding_de,
    value_decimals,
    wide_view_name,
    with_area_levels,
)
from schemas.published import INDICATOR_COLUMN_DESCRIPTION as INDICATOR_COLUMN
from schemas.published import LONG_VIEW_DESCRIPTION as LONG_DESCRIPTION
from social_monitor.catalogue import read_catalogue
from social_monitor.disclosure import (
    CITY_ID,
    Audit,
    Catalogue,
    DisclosureRule,
    Hierarchy,
    Versions,
    tagged,
    untagged,
)
from social_monitor.disclosure import apply as disclosure_apply
from social_monitor.disclosure import audit as disclosure_audit
from social_monitor.labels import SUPPRESSION_REASON_DE
from social_monitor.ranks import with_ranks

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
            union
            -- a change across a geography reform compares with the base cycle restated on the current version
            select distinct i.method_id, i.report_cycle, i.area_id, i.dimension_id
            from warehouse.classification.area_classification_indicators i
            join warehouse.classification.classification_methods m using (method_id)
            join main.area_indicators_harmonised s
              on s.area_level = m.area_level and s.area_id = i.area_id and s.indicator_id = i.source_indicator_id
             and s.suppression is not null and i.indicator_id <> i.source_indicator_id
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

    ``area_indicators`` passes the disclosure control first (``social_monitor.disclosure``), then gets its ranks
    and deciles among the published values (``social_monitor.ranks``), and every other table hides what rests on
    a suppressed cell. The disclosure audit of the published cells goes into
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
        con.execute(f"create table main.area_conversion as {CONVERSION_SELECT}")
        own = con.execute("select * from warehouse.marts.area_indicators").pl()
        harmonised = con.execute("select * from warehouse.marts.area_indicators_harmonised").pl()
        hierarchy = read_hierarchy(con, "warehouse.marts.")
        versions = read_versions(con, own, "warehouse.marts.", "main.")
        every_cell = disclosure_cells(own, harmonised, versions)
        changes = is_change(catalogue)
        cells = disclosure_apply(every_cell.filter(~changes), hierarchy, disclosure, catalogue, versions)
        cells = pl.concat([cells, suppress_changes(every_cell.filter(changes), cells, catalogue, versions)])
        checked = audit_cells(cells, hierarchy, catalogue, disclosure, versions)
        if not checked.passed:
            raise RuntimeError(f"disclosure audit failed: {summary(checked)}")
        area_indicators, area_indicators_harmonised = split_cells(cells, harmonised, versions)  # noqa: F841
        # ranks and deciles among the published values only: after the disclosure control, never of a suppressed
        # cell (social_monitor/ranks.py); the harmonised series has none (see its contract)
        area_indicators = with_ranks(area_indicators)  # noqa: F841 - read by DuckDB
        con.execute("create table main.area_indicators as select * from area_indicators")
        con.execute("create table main.area_indicators_harmonised as select * from area_indicators_harmonised")
        audit_rows = pl.DataFrame(checked.per_cycle()).with_columns(  # noqa: F841 - read by DuckDB
            pl.col("report_cycle").cast(pl.Int32), pl.lit(disclosure.min_count, dtype=pl.Int64).alias("min_count"),
            pl.lit(disclosure.min_population_for_rates, dtype=pl.Int64).alias("min_population_for_rates"))
        con.execute("create table main.disclosure_audit as select * from audit_rows")
        done = ["area_indicators", "area_indicators_harmonised", "area_conversion"]
        order = ["area_classification_indicators"]
        for table in order + [t for t in PUBLISHED_TABLES if t not in order]:
            if table in done:
                continue
            select = SELECTS.get(table, f"select * from warehouse.{PUBLISHED_TABLES[table][0]}")
            con.execute(f"create table main.{table} as {select}")
        con.execute("detach warehouse")
        for table, (_source, contract) in PUBLISHED_TABLES.items():
            arrange(con, table, contract)
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
        # the file documents itself: primary keys, German comments (schemas/published.py), the views for people
        for table, contract in DOCUMENTED_TABLES.items():
            con.execute(f"alter table main.{table} add primary key ({', '.join(map(quoted, primary_key(contract)))})")
        create_views(con, disclosure)
        document(con, disclosure)
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


def quoted(name: str) -> str:
    """An SQL identifier in double quotes (German column names have spaces)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def arrange(con: duckdb.DuckDBPyConnection, table: str, contract) -> None:
    """``main.<table>`` with the columns in the contract's order, and the cross-level ``area_key``
    (``<area_level>:<area_id>``) where the contract has one."""
    area_key = f"area_level || {literal(AREA_KEY_SEPARATOR)} || area_id as area_key"
    select = ", ".join(area_key if name == "area_key" else quoted(name) for name in contract.to_schema().columns)
    con.execute(f"create or replace table main.{table} as select {select} from main.{table}")


def create_views(con: duckdb.DuckDBPyConnection, rule: DisclosureRule | None = None) -> None:
    """The views for people, with German column names: one wide view per level (one row per report cycle and area,
    one column per indicator, named by indicators.name_de) and the long view with the names joined in. A
    suppressed cell is empty in both (its value is empty in area_indicators; the views also test suppression).

    Typed for people and BI tools: a count is a whole number (BIGINT), every other value rounded to the decimals
    the report and the workbook show (``value_decimals``); the reason of a suppression in words (the labels of
    social_monitor/labels.py, with the numbers of ``rule``); the whole city named by its level's German name
    (area_levels.name_de of ``city``) instead of its id, in the view's name and in its key columns."""
    rule = rule or DisclosureRule()
    indicators = con.execute("select indicator_id, name_de, numerator_measure, denominator_measure, unit "
                             "from main.indicators order by sort_order, indicator_id").fetchall()
    names = [column.name for column in WIDE_VIEW_COLUMNS] + [row[1] for row in indicators]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise ValueError(f"indicator_catalogue.csv, column name_de: names used twice or as a fixed column of the "
                         f"wide views: {', '.join(doubled)}")
    levels = con.execute("select area_level, name_de from main.area_levels order by level_order").fetchall()
    views = [wide_view_name(level, name) for level, name in levels]
    doubled = sorted({view for view in views if views.count(view) > 1} | ({LONG_VIEW} & set(views)))
    if doubled:
        raise ValueError(f"geography/levels.yml: levels whose views would have the same name: {', '.join(doubled)} "
                         f"(the whole city's view is named after city.name_de)")
    pivot = ", ".join(
        _view_value(f"max(i.value) filter (where i.indicator_id = {literal(indicator)} and i.suppression is null)",
                    numerator, denominator, unit) + f" as {quoted(name)}"
        for indicator, name, numerator, denominator, unit in indicators)
    for (level, level_name), view in zip(levels, views, strict=True):
        city = {"i.area_key": literal(level_name), "i.area_id": literal(level_name)} if level == CITY_ID else {}
        fixed = ", ".join(f"{city.get(column.source, column.source)} as {quoted(column.name)}"
                          for column in WIDE_VIEW_COLUMNS)
        con.execute(f"""create view main.{quoted(view)} as
            select {fixed}, {pivot}
            from main.area_indicators i left join main.areas a on a.area_level = i.area_level and a.area_id = i.area_id
            where i.area_level = {literal(level)}
            group by all order by 1, 3""")
    rounded = {}  # decimals -> the indicators shown with them
    for indicator, _name, numerator, denominator, unit in indicators:
        rounded.setdefault(value_decimals(numerator, denominator, unit), []).append(literal(indicator))
    reasons = " ".join(f"when {literal(code)} then {literal(rule.describe_de(label))}"
                       for code, label in SUPPRESSION_REASON_DE.items())
    columns = []
    for column in LONG_VIEW_COLUMNS:
        source = column.source
        if source in VIEW_VALUE_SOURCES:
            source = "case " + " ".join(f"when i.indicator_id in ({', '.join(ids)}) then round({source}, {decimals})"
                                        for decimals, ids in sorted(rounded.items())) + " end"
        elif source in VIEW_COUNT_SOURCES:
            source = f"cast({source} as bigint)"
        elif source in ("i.area_key", "i.area_id"):
            source = f"case when i.area_level = {literal(CITY_ID)} then l.name_de else {source} end"
        elif source == "i.suppression":
            source = f"case i.suppression {reasons} else i.suppression end"
        if column.source in VIEW_SUPPRESSED_SOURCES:
            source = f"case when i.suppression is null then {source} end"
        columns.append(f"{source} as {quoted(column.name)}")
    con.execute(f"""create view main.{LONG_VIEW} as select {', '.join(columns)}
        from main.area_indicators i
        left join main.areas a on a.area_level = i.area_level and a.area_id = i.area_id
        left join main.area_levels l on l.area_level = i.area_level
        left join main.indicators d on d.indicator_id = i.indicator_id
        order by i.report_cycle, l.level_order, i.area_id, d.sort_order, i.indicator_id""")


def _view_value(value: str, numerator: str | None, denominator: str | None, unit: str | None) -> str:
    """An indicator's value as a view shows it: a count as a whole number, anything else rounded."""
    if is_count(numerator, denominator, unit):
        return f"cast({value} as bigint)"
    return f"round({value}, {value_decimals(numerator, denominator, unit)})"


def document(con: duckdb.DuckDBPyConnection, rule: DisclosureRule) -> None:
    """German comments (COMMENT ON) on every table, view and column, from schemas/published.py: what a BI tool
    shows as the description of a table or column."""
    def comment(kind: str, name: str, text: str) -> None:
        con.execute(f"comment on {kind} {name} is {literal(rule.describe_de(text))}")

    for table in data_dictionary(rule).values():
        comment("table", f"main.{table.name}", f"{table.title_de}: {table.description_de}")
        for column in table.columns:
            comment("column", f"main.{table.name}.{quoted(column.name)}", f"{column.header_de}: "
                    f"{column.description_de}")
    indicators = con.execute("select name_de, unit, coalesce(description_de, ''), numerator_measure, "
                             "denominator_measure from main.indicators").fetchall()
    levels = con.execute("select area_level, name_de from main.area_levels").fetchall()
    for level, level_name in levels:
        view = quoted(wide_view_name(level, level_name))
        comment("view", f"main.{view}", WIDE_VIEW_DESCRIPTION.format(level_name=level_name))
        for column in WIDE_VIEW_COLUMNS:
            comment("column", f"main.{view}.{quoted(column.name)}", column.description_de)
        for name, unit, description, numerator, denominator in indicators:
            comment("column", f"main.{view}.{quoted(name)}", INDICATOR_COLUMN.format(
                name=name, unit=unit, description=_sentence(description),
                rounding=rounding_de(numerator, denominator, unit)))
    comment("view", f"main.{LONG_VIEW}", LONG_DESCRIPTION)
    for column in LONG_VIEW_COLUMNS:
        comment("column", f"main.{LONG_VIEW}.{quoted(column.name)}", column.description_de)


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
        own = con.execute("select * from area_indicators").pl()
        harmonised = con.execute("select * from area_indicators_harmonised").pl()
        hierarchy = read_hierarchy(con)
        versions = read_versions(con, own)
    return audit_cells(disclosure_cells(own, harmonised, versions), hierarchy, catalogue, rule, versions)


# ------------------------------------------------------------------------------------ changes of an indicator
# A change of an indicator (catalogue column change_of_indicator: D1-D4 of the Berlin MSS) is the indicator now
# minus the indicator in the previous report cycle; it shows no counts. Published, it would give a suppressed
# rate from the other one (then = now - change), so it is published only where both cells it is the
# difference of are published, and suppressed (``secondary``) otherwise. Both are cells of the same area and
# level: the previous cycle on the same version, or for a cycle on the current version whose previous cycle is
# on an older one, the previous cycle restated on the current version (its harmonised cell).


def is_change(catalogue: Catalogue) -> pl.Expr:
    return pl.col("indicator_id").is_in([change for change, _ in catalogue.indicator_changes])


def _with_partners(changes: pl.DataFrame, catalogue: Catalogue, versions: Versions) -> pl.DataFrame:
    """Each change cell with the keys of the two cells it is the difference of (``now_*`` and ``then_*``)."""
    cycles = sorted(versions.of_cycle)
    previous = dict(zip(cycles[1:], cycles, strict=False))
    latest = versions.of_cycle[max(cycles)]
    source = dict(catalogue.indicator_changes)
    rows = []
    for cycle, level, area, indicator, harmonised in changes.select(
            "report_cycle", "area_level", "area_id", "indicator_id", "harmonised").iter_rows():
        then = previous.get(cycle)
        restated = (not harmonised and then is not None and versions.of_cycle[cycle] == latest
                    and versions.of_cycle[then] != latest)
        rows.append((cycle, level, area, indicator, harmonised, source[indicator], then,
                     tagged(level, latest) if restated else level, harmonised or restated))
    return pl.DataFrame(rows, orient="row", schema={
        "report_cycle": changes.schema["report_cycle"], "area_level": pl.Utf8, "area_id": pl.Utf8,
        "indicator_id": pl.Utf8, "harmonised": pl.Boolean, "source_id": pl.Utf8,
        "then_cycle": changes.schema["report_cycle"], "then_level": pl.Utf8, "then_harmonised": pl.Boolean})


def _partner_suppressed(changes: pl.DataFrame, rates: pl.DataFrame, catalogue: Catalogue,
                        versions: Versions) -> pl.DataFrame:
    """The change cells with ``now_hidden`` / ``then_hidden``: whether the cell it is the difference of is
    suppressed (or missing) in ``rates`` (the published cells)."""
    key = ["report_cycle", "area_level", "area_id", "indicator_id", "harmonised"]
    hidden = rates.select(*key, pl.col("suppression").is_not_null().alias("hidden"))
    partners = _with_partners(changes, catalogue, versions)
    return (partners
            .join(hidden.rename({"indicator_id": "source_id", "hidden": "now_hidden"}),
                  on=["report_cycle", "area_level", "area_id", "source_id", "harmonised"], how="left")
            .join(hidden.rename({"report_cycle": "then_cycle", "area_level": "then_level", "indicator_id": "source_id",
                                 "harmonised": "then_harmonised", "hidden": "then_hidden"}),
                  on=["then_cycle", "then_level", "area_id", "source_id", "then_harmonised"], how="left")
            .select(*key, pl.col("now_hidden").fill_null(True), pl.col("then_hidden").fill_null(True)))


def suppress_changes(changes: pl.DataFrame, rates: pl.DataFrame, catalogue: Catalogue,
                     versions: Versions) -> pl.DataFrame:
    """The change cells as published: suppressed (``secondary``, value emptied) where a cell they are the
    difference of is suppressed in ``rates`` (the rate cells after the disclosure control); the city value
    emptied where the city's change is suppressed."""
    key = ["report_cycle", "area_level", "area_id", "indicator_id", "harmonised"]
    if not changes.height:  # e.g. a single report cycle: no previous one, no change (and no suppression column)
        return rates.clear()
    flags = _partner_suppressed(changes, rates, catalogue, versions)
    marked = changes.join(flags, on=key, how="left", maintain_order="left").with_columns(
        pl.when(pl.col("now_hidden") | pl.col("then_hidden")).then(pl.lit("secondary"))
        .otherwise(pl.lit(None, dtype=pl.Utf8)).alias("suppression"))
    city = (marked.filter((pl.col("area_level") == "city") & pl.col("suppression").is_not_null())
            .select("report_cycle", "indicator_id", "harmonised", pl.lit(True).alias("_city_hidden")).unique())
    hidden = pl.col("suppression").is_not_null()
    return (marked.join(city, on=["report_cycle", "indicator_id", "harmonised"], how="left", maintain_order="left")
            .with_columns(*[pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c)
                            for c in ("numerator", "denominator", "value")],
                          pl.when(pl.col("_city_hidden")).then(None).otherwise(pl.col("city_value"))
                          .alias("city_value"))
            .select(rates.columns))


def exposed_changes(cells: pl.DataFrame, catalogue: Catalogue, versions: Versions) -> pl.DataFrame:
    """Published change cells (not suppressed) of which a cell they are the difference of is suppressed: each
    gives that suppressed rate by one subtraction. Empty when the publication is right."""
    changes = cells.filter(is_change(catalogue))
    if not changes.height:
        return changes
    flags = _partner_suppressed(changes, cells.filter(~is_change(catalogue)), catalogue, versions)
    key = ["report_cycle", "area_level", "area_id", "indicator_id", "harmonised"]
    return changes.filter(pl.col("suppression").is_null()).join(flags, on=key).filter(
        pl.col("now_hidden") | pl.col("then_hidden"))


def audit_cells(cells: pl.DataFrame, hierarchy: Hierarchy, catalogue: Catalogue, rule: DisclosureRule,
                versions: Versions) -> Audit:
    """The disclosure audit of the rate and count cells, and of the changes of an indicator: a published change
    next to a suppressed cell it is the difference of counts as a cell recoverable by subtraction (and fails)."""
    changes = is_change(catalogue)
    result = disclosure_audit(cells.filter(~changes), hierarchy, catalogue, rule, versions=versions)
    for cycle, level, area, indicator in exposed_changes(cells, catalogue, versions).select(
            "report_cycle", "area_level", "area_id", "indicator_id").iter_rows():
        result.by_subtraction[cycle] = result.by_subtraction.get(cycle, 0) + 1
        result.recoverable[cycle] = result.recoverable.get(cycle, 0) + 1
        result.failing[(cycle, level, area, indicator)] = 0.0
    for cycle, count in cells.filter(changes & pl.col("suppression").is_not_null()).group_by(
            "report_cycle").len().iter_rows():
        result.suppressed[cycle] = result.suppressed.get(cycle, 0) + count
    return result


# --------------------------------------------------------------------------------------- geography versions
# Each cycle is published on its own geography version (area_indicators) and on the current one
# (area_indicators_harmonised); both pass one disclosure control, tied by the conversion (area_conversion).

CELL_COLUMNS = ["report_cycle", "area_level", "area_id", "indicator_id", "numerator", "denominator", "value",
                "city_value"]
CONVERSION_SELECT = ("select old_area_id, new_area_id, weight, weight_status from warehouse.reference.area_conversion "
                     "order by old_area_id, new_area_id")


def read_versions(con: duckdb.DuckDBPyConnection, own: pl.DataFrame, prefix: str = "",
                  conversion_prefix: str = "") -> Versions:
    """The geography version of every cycle of the cells ``own``: consecutive cycles whose base level has the
    same areas are on one version, named by its first cycle; with the conversion (``area_conversion``)."""
    base = con.execute(f"select area_level from {prefix}area_levels where is_base").fetchone()[0]
    areas = own.filter(pl.col("area_level") == base).group_by("report_cycle").agg(pl.col("area_id").unique().sort())
    of_cycle: dict[int, int] = {}
    previous: list[str] | None = None
    for cycle, ids in sorted(areas.iter_rows()):
        if ids != previous:
            version = cycle
        of_cycle[cycle], previous = version, ids
    conversion = con.execute(f"select old_area_id, new_area_id from {conversion_prefix or prefix}area_conversion "
                             "order by 1, 2").fetchall()
    return Versions(of_cycle=of_cycle, base_level=base, conversion=tuple(conversion))


def disclosure_cells(own: pl.DataFrame, harmonised: pl.DataFrame, versions: Versions) -> pl.DataFrame:
    """One frame for the disclosure control: every cell on its cycle's own version, and the harmonised cells of
    the cycles on an older version with their level tagged by the current version (``tagged``: the city stays the
    city), marked ``harmonised``; the harmonised cells of a cycle on the current version are its own."""
    latest = versions.of_cycle[max(versions.of_cycle)]
    old = harmonised.filter(pl.col("report_cycle").replace_strict(versions.of_cycle, default=latest) != latest)
    if old.height and set(old["geography_version"].unique().to_list()) != {latest}:
        raise ValueError(f"area_indicators_harmonised: geography_version is not {latest}, the version of the latest "
                         "report cycle")
    old = old.with_columns(pl.col("area_level").map_elements(lambda level: tagged(level, latest),
                                                              return_dtype=pl.Utf8))
    columns = [c for c in CELL_COLUMNS + ["suppression"] if c in own.columns]
    return pl.concat([own.select(columns).with_columns(pl.lit(False).alias("harmonised")),
                      old.select(columns).with_columns(pl.lit(True).alias("harmonised"))])


def split_cells(cells: pl.DataFrame, harmonised: pl.DataFrame, versions: Versions) -> tuple[pl.DataFrame,
                                                                                            pl.DataFrame]:
    """The published area_indicators (each cycle on its own version, with its geography_version) and
    area_indicators_harmonised (every cycle on the current version) from the cells the disclosure control
    passed."""
    version = pl.col("report_cycle").replace_strict(versions.of_cycle, return_dtype=pl.Int32)
    level = pl.col("area_level").map_elements(lambda lvl: untagged(lvl)[0], return_dtype=pl.Utf8)
    latest = versions.of_cycle[max(versions.of_cycle)]
    own = cells.filter(~pl.col("harmonised")).drop("harmonised").with_columns(version.alias("geography_version"))
    on_latest = pl.concat([own.filter(pl.col("geography_version") == latest).drop("geography_version"),
                           cells.filter(pl.col("harmonised")).drop("harmonised").with_columns(level.alias("area_level"))])
    key = ["report_cycle", "area_level", "area_id", "indicator_id"]
    marks = harmonised.select(*key, "geography_version", "is_estimate", "conversion_status")
    joined = on_latest.join(marks, on=key, how="left", maintain_order="left")
    if joined["geography_version"].null_count() or joined.height != harmonised.height:
        raise ValueError("area_indicators_harmonised: its rows are not the published cells on the current version")
    return own, joined.sort(key)



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


def _sentence(text: str | None) -> str:
    """A catalogue definition as a sentence: with its full stop, so the comment's next sentence does not run on."""
    text = (text or "").strip()
    return text if not text or text.endswith((".", "!", "?", ":")) else f"{text}."
