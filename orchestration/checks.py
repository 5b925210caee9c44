"""Asset checks that show in the UI beside the dbt tests."""


import re
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.assets.exports import exports_dir
from orchestration.assets.report import report_path
from orchestration.cycles import published_cycles_of
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.catalogue import read_catalogue
from social_monitor.deliveries import Source
from social_monitor.disclosure import Catalogue, DisclosureRule
from social_monitor.layouts import delivered_sources
from social_monitor.settings import CityConfig, load_settings


def build_row_balance_check(source: Source) -> dg.AssetChecksDefinition:
    source_name, table = source.name, source.table
    # raw.aggregates holds every aggregate delivery: count this one's rows
    only = "where delivery = ?" if source.is_aggregate else ""
    only_args = [source_name] if source.is_aggregate else []

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source_name]),
        name="rows_in_equal_accepted_plus_rejected",
        description="For every loaded delivery: rows in = rows accepted + rows rejected, and the raw table "
        "holds exactly the accepted rows of each report cycle.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            rows = con.execute(
                f"""
                select d.report_cycle, d.rows_in, d.rows_accepted, d.rows_rejected, coalesce(t.n, 0) as in_table
                from raw.deliveries d
                left join (select report_cycle, count(*) as n from raw.{table} {only} group by 1) t
                    using (report_cycle)
                where d.source = ?
                order by d.report_cycle
                """,
                [*only_args, source_name],
            ).fetchall()
        broken = [r for r in rows if r[1] != r[2] + r[3] or r[2] != r[4]]
        return dg.AssetCheckResult(
            passed=bool(rows) and not broken,
            metadata={
                "cycles_checked": len(rows),
                "unbalanced_cycles": ", ".join(str(r[0]) for r in broken) or "none",
                "rows_rejected": sum(r[3] for r in rows),
            },
        )

    return _check


@dg.asset_check(
    asset=dg.AssetKey(["published", "marts"]),
    name="only_aggregated_tables",
    description="The published file holds exactly the contract's tables (schemas/published.py) and no "
    "column that could carry a person: no person key, birth date, address or household key.",
)
def only_aggregated_tables(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    from schemas.published import DOCUMENTED_TABLES  # the contracts when the check runs, not to load the code

    with duckdb.connect(str(Path(pipeline.published_path)), read_only=True) as con:
        # the tables; the views for people (social_monitor/publish.py) only select from them
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_type = 'BASE TABLE'").fetchall()}
        columns = [r[0] for r in con.execute("select column_name from information_schema.columns").fetchall()]
    expected = set(DOCUMENTED_TABLES)
    personal = [c for c in columns if any(w in c for w in ("person", "birth", "street", "house", "household"))]
    return dg.AssetCheckResult(
        passed=tables == expected and not personal,
        metadata={"tables": ", ".join(sorted(tables)), "unexpected_tables": ", ".join(sorted(tables - expected)),
                  "suspicious_columns": ", ".join(personal) or "none"},
    )


@dg.asset_check(
    asset=dg.AssetKey(["published", "marts"]),
    name="no_suppressed_cell_recoverable",
    description="Tries to recover every suppressed cell of the published file from its published cells alone: by "
    "subtraction in every declared additive relation (area levels, a count and its parts, a change since the "
    "previous cycle) and by a linear program per suppressed count (HiGHS). Fails when a suppressed cell is pinned "
    "or a small count can be narrowed below the protection interval (publication.protection_interval).",
)
def no_suppressed_cell_recoverable(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    config = CityConfig.from_file(Path(pipeline.config_path))
    rule = DisclosureRule.from_config(config.publication)
    from social_monitor.publish import read_audit  # the publication's code when the check runs

    result = read_audit(Path(pipeline.published_path), Catalogue.from_rows(read_catalogue()), rule)
    metadata: dict[str, object] = {"protection_interval": rule.protection}
    for row in result.per_cycle():
        metadata[str(row["report_cycle"])] = (
            f"{row['suppressed_cells']} suppressed, {row['recoverable_by_subtraction']} by subtraction, "
            f"{row['recoverable_by_linear_program']} by linear program, "
            f"{row['narrower_than_protection']} narrower than {rule.protection}")
    return dg.AssetCheckResult(passed=result.passed, metadata=metadata)


@dg.asset_check(
    asset=dg.AssetKey(["classification", "action_areas"]),
    name="every_area_classified_in_every_cycle",
    description="Every area of the action-area rule's level (city.yml action_areas.area_level, a level of the "
    "city's geography) valid in a cycle has exactly one classification in that cycle.",
)
def every_area_classified(warehouse: WarehouseResource, pipeline: PipelineSettings) -> dg.AssetCheckResult:
    level = str(CityConfig.from_file(Path(pipeline.config_path)).action_areas.get("area_level", ""))
    with warehouse.connect() as con:
        rows = con.execute(
            """
            select c.report_cycle, count(a.area_id) as classified,
                   (select count(distinct m.area_id) from reference.area_memberships m
                    where m.report_cycle = c.report_cycle and m.area_level = ?) as expected
            from intermediate.int_report_cycles c
            left join classification.action_areas a using (report_cycle)
            group by c.report_cycle order by 1
            """, [level]
        ).fetchall()
    return dg.AssetCheckResult(
        passed=bool(rows) and all(r[1] == r[2] for r in rows),
        metadata={str(r[0]): f"{r[1]} of {r[2]}" for r in rows},
    )


@dg.asset_check(
    asset=dg.AssetKey(["classification", "area_classifications"]),
    name="every_method_classifies_every_cycle",
    description="Every method has a row for every report cycle and every area of its level valid in that cycle, "
    "and every included area has a class in each dimension computed for that cycle; left-out areas carry a reason.",
)
def every_method_classifies_every_cycle(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        rows = con.execute(
            """
            with expected as (
                select m.method_id, c.report_cycle, count(distinct a.area_id) as areas
                from classification.classification_methods m
                cross join intermediate.int_report_cycles c
                join reference.area_memberships a
                  on a.area_level = m.area_level and a.report_cycle = c.report_cycle
                group by all
            ), got as (
                select method_id, report_cycle, count(*) as areas,
                       count(*) filter (where not is_included and exclusion_reason is null) as unexplained,
                       count(*) filter (where is_included) as included
                from classification.area_classifications group by all
            ), classed as (
                select method_id, report_cycle, dimension_id, count(*) as classified
                from classification.area_classification_dimensions group by all
            )
            select e.method_id, e.report_cycle, e.areas, coalesce(g.areas, 0), coalesce(g.unexplained, 0),
                   coalesce(g.included, 0),
                   coalesce(bool_and(k.classified = g.included), true) as dimensions_complete
            from expected e
            left join got g using (method_id, report_cycle)
            left join classed k using (method_id, report_cycle)
            group by all order by 1, 2
            """
        ).fetchall()
    broken = [r for r in rows if r[2] != r[3] or r[4] or not r[6]]
    return dg.AssetCheckResult(
        passed=bool(rows) and not broken,
        metadata={"method_cycles_checked": len(rows),
                  "broken": ", ".join(f"{r[0]} {r[1]}" for r in broken) or "none"},
    )


# --- per report cycle: loaded, built, classified, published, reported, exported --------------------------------
# Each check's metadata has one entry per report cycle of city.yml (the key is the cycle), so the UI's check
# history shows what each cycle has. The classification checks above are keyed by cycle too.

def _per_cycle_result(states: dict[int, tuple[str, bool]], summary: str, *, passed: bool = True
                      ) -> dg.AssetCheckResult:
    """The result of a per-cycle check: one metadata entry per report cycle (its state), the failing cycles
    listed under ``summary``; it passes when no cycle fails, ``passed`` holds and there is a cycle at all."""
    metadata: dict[str, object] = {str(cycle): text for cycle, (text, _) in sorted(states.items())}
    failing = [cycle for cycle, (_, ok) in sorted(states.items()) if not ok]
    metadata[summary] = ", ".join(map(str, failing)) or "none"
    return dg.AssetCheckResult(passed=passed and bool(states) and not failing, metadata=metadata)


def _cycles(pipeline: PipelineSettings) -> list[int]:
    return list(CityConfig.from_file(Path(pipeline.config_path)).report_cycles)


def _loaded_sources(con: duckdb.DuckDBPyConnection) -> dict[int, set[str]]:
    if not con.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                       "and table_name = 'deliveries'").fetchone()[0]:
        return {}
    loaded: dict[int, set[str]] = {}
    for cycle, source in con.execute("select report_cycle, source from raw.deliveries").fetchall():
        loaded.setdefault(cycle, set()).add(source)
    return loaded


@dg.asset_check(
    asset=dg.AssetKey(["raw", "deliveries"]),
    name="every_loaded_cycle_has_every_person_level_source",
    description="Per report cycle of city.yml: which deliveries the log holds. A cycle of which any delivery is "
    "loaded must have every person-level source (register, SGB II, SGB XII, AsylbLG); a cycle of which nothing "
    "is loaded is 'not loaded' (no failure: cycles may be loaded one by one). Aggregate deliveries are optional.",
)
def every_loaded_cycle_complete(warehouse: WarehouseResource, pipeline: PipelineSettings) -> dg.AssetCheckResult:
    person_level = [s.name for s in delivered_sources(pipeline.city_folder()) if not s.is_aggregate]
    with warehouse.connect() as con:
        loaded = _loaded_sources(con)
    states = {}
    for cycle in _cycles(pipeline):
        sources = loaded.get(cycle, set())
        missing = [s for s in person_level if s not in sources]
        states[cycle] = (f"loaded: {len(sources)} deliveries; person-level missing: {', '.join(missing) or 'none'}"
                         if sources else "not loaded", not (sources and missing))
    return _per_cycle_result(states, "incomplete_cycles", passed=bool(loaded))


@dg.asset_check(
    asset=dg.AssetKey(["marts", "area_indicators"]),
    name="every_loaded_cycle_built",
    description="Per report cycle of city.yml: the indicator values the mart holds (rows, areas, indicators). "
    "Fails when a cycle whose register delivery is loaded has no indicator value, or the mart holds a cycle that "
    "is not loaded.",
)
def every_loaded_cycle_built(warehouse: WarehouseResource, pipeline: PipelineSettings) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        loaded = _loaded_sources(con)
        built = {r[0]: r[1:] for r in con.execute(
            "select report_cycle, count(*), count(distinct (area_level, area_id)), count(distinct indicator_id) "
            "from marts.area_indicators group by 1").fetchall()}
    states = {}
    for cycle in set(_cycles(pipeline)) | set(built):
        is_loaded = "register" in loaded.get(cycle, set())
        states[cycle] = ((f"{built[cycle][0]} values, {built[cycle][1]} areas, {built[cycle][2]} indicators"
                          if cycle in built else "not built") + ("" if is_loaded else " (not loaded)"),
                         is_loaded == (cycle in built))
    return _per_cycle_result(states, "broken_cycles", passed=bool(built))


def _published_per_cycle(published: Path) -> dict[int, tuple[int, int, int]]:
    """Per published cycle: indicator values, suppressed values, action areas."""
    with duckdb.connect(str(published), read_only=True) as con:
        values = con.execute("select report_cycle, count(*), count(suppression) from area_indicators "
                             "group by 1").fetchall()
        action = dict(con.execute("select report_cycle, count(*) filter (where is_action_area) from action_areas "
                                  "group by 1").fetchall())
    return {r[0]: (r[1], r[2], action.get(r[0], 0)) for r in values}


@dg.asset_check(
    asset=dg.AssetKey(["published", "marts"]),
    name="every_built_cycle_published",
    description="Per report cycle of city.yml: what the published file holds (indicator values, suppressed "
    "values, action areas). Fails when a cycle of the warehouse's marts is missing from the published file, or "
    "its number of indicator values differs from the mart's.",
    additional_deps=[dg.AssetKey(["marts", "area_indicators"])],
)
def every_built_cycle_published(warehouse: WarehouseResource, pipeline: PipelineSettings) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        built = dict(con.execute("select report_cycle, count(*) from marts.area_indicators group by 1").fetchall())
    published = _published_per_cycle(Path(pipeline.published_path))
    states = {cycle: (f"{published[cycle][0]} values ({published[cycle][1]} suppressed), {published[cycle][2]} "
                      "action areas" if cycle in published else "not published",
                      cycle not in built or (cycle in published and published[cycle][0] == built[cycle]))
              for cycle in set(_cycles(pipeline)) | set(built) | set(published)}
    return _per_cycle_result(states, "broken_cycles", passed=bool(published))


def _written_after(path: Path, published: Path) -> bool:
    return path.exists() and path.stat().st_mtime >= published.stat().st_mtime


@dg.asset_check(
    asset=dg.AssetKey(["report", "bericht"]),
    name="every_published_cycle_has_its_report",
    description="Per report cycle of the published file: report/bericht_<cycle>.html exists, is written after the "
    "published file (not left over from an earlier publication) and is the report of that cycle (its title names "
    "the cycle); its PDF, where there is one, is not older than the HTML (a PDF of an earlier report). A cycle "
    "whose report is missing or older is named; rerun it alone with `cycles: [<cycle>]`.",
)
def every_published_cycle_has_its_report(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    published = Path(pipeline.published_path)
    states = {}
    for cycle in published_cycles_of(published):
        path = report_path(published, cycle)
        if not path.exists():
            state = "missing"
        elif not _written_after(path, published):
            state = "older than the published file"
        elif not re.search(rf"<title>[^<]*{cycle}[^<]*</title>", path.read_text(encoding="utf-8")):
            state = "not the report of this cycle (title)"
        elif path.with_suffix(".pdf").exists() and not _written_after(path.with_suffix(".pdf"), path):
            state = f"{path.with_suffix('.pdf').name} older than the HTML"
        else:
            state = "ok"
        states[cycle] = (f"{path.name}: {state}", state == "ok")
    return _per_cycle_result(states, "cycles_to_rerun")


@dg.asset_check(
    asset=dg.AssetKey(["published", "exports"]),
    name="every_published_cycle_exported",
    description="Per report cycle of the published file: exports/<cycle>/ holds one Parquet file per published "
    "table with exactly the published file's rows of that cycle (the whole table where it has no report cycle) and "
    "the cycle's Excel workbook, written after the published file.",
)
def every_published_cycle_exported(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    from schemas.published import DOCUMENTED_TABLES  # the contracts and the exports' code when the check runs
    from social_monitor.exports import has_cycle_column, published_cycles, workbook_name

    published = Path(pipeline.published_path)
    states = {}
    with duckdb.connect(str(published), read_only=True) as con:
        city_name = con.execute("select any_value(city_name) from publication").fetchone()[0] or ""
        for cycle in published_cycles(con):
            folder = exports_dir(published) / str(cycle)
            problems = []
            for table in DOCUMENTED_TABLES:
                where = f" where report_cycle = {int(cycle)}" if has_cycle_column(table) else ""
                expected = con.execute(f"select count(*) from main.{table}{where}").fetchone()[0]
                parquet = folder / f"{table}.parquet"
                if not _written_after(parquet, published):
                    problems.append(f"{parquet.name} missing or old")
                elif con.execute("select count(*) from read_parquet(?)", [str(parquet)]).fetchone()[0] != expected:
                    problems.append(f"{parquet.name} rows differ")
            if not _written_after(folder / workbook_name(city_name, cycle), published):
                problems.append(f"{workbook_name(city_name, cycle)} missing or old")
            states[cycle] = ("; ".join(problems) or f"ok: {len(DOCUMENTED_TABLES)} tables and the workbook",
                             not problems)
    return _per_cycle_result(states, "cycles_to_rerun")


checks = [build_row_balance_check(source) for source in delivered_sources(load_settings().city_dir)] + [
    only_aggregated_tables, no_suppressed_cell_recoverable, every_area_classified, every_method_classifies_every_cycle,
    every_loaded_cycle_complete, every_loaded_cycle_built, every_built_cycle_published,
    every_published_cycle_has_its_report, every_published_cycle_exported]
