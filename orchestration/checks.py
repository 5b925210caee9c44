"""Asset checks that show in the UI beside the dbt tests."""


from pathlib import Path

import dagster as dg
import duckdb

from orchestration.resources import PipelineSettings, WarehouseResource
from schemas.published import DOCUMENTED_TABLES
from social_monitor.catalogue import read_catalogue
from social_monitor.deliveries import Source
from social_monitor.disclosure import Catalogue, DisclosureRule
from social_monitor.layouts import delivered_sources
from social_monitor.publish import read_audit
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


checks = [build_row_balance_check(source) for source in delivered_sources(load_settings().city_dir)] + [
    only_aggregated_tables, no_suppressed_cell_recoverable, every_area_classified, every_method_classifies_every_cycle]
