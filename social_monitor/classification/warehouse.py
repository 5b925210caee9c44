"""Run the classification on the warehouse's marts and store the results beside them.

- ``classify_in_warehouse``: Dortmund's action areas (the rule in city.yml) with their Quartiere,
  tables ``classification.action_areas``, ``action_area_indicators``, ``action_area_quartiere``;
- ``classify_methods_in_warehouse``: every method, the action-area rule included, through the engine,
  tables ``classification.classification_methods``, ``area_classifications``,
  ``area_classification_dimensions`` and ``area_classification_indicators``. Each cycle is classified on its
  own geography version (``marts.area_indicators``); a change since a cycle on an older version compares with
  that cycle restated on the current version (``marts.area_indicators_harmonised``), and the method's notes
  say so and how many of those base values are estimates.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from social_monitor.classification.action_areas import (
    METHOD_ID,
    ActionAreaResult,
    ActionAreaRule,
    classify_action_areas,
    rule_directions,
)
from social_monitor.classification.engine import Classification, Restated, classify
from social_monitor.classification.methods import Method, MethodError

SCHEMA = "classification"
TABLES = {"areas": "action_areas", "indicators": "action_area_indicators", "quartiere": "action_area_quartiere"}
METHOD_TABLES = ("classification_methods", "area_classifications", "area_classification_dimensions",
                 "area_classification_indicators")
POPULATION_INDICATOR = "residents"


def classify_in_warehouse(con: duckdb.DuckDBPyConnection, rule: ActionAreaRule) -> ActionAreaResult:
    """Classify from ``marts.area_indicators`` and write ``classification.action_areas`` and its details."""
    indicators = list(rule.indicators) + ([rule.quartier_indicator] if rule.quartier_indicator else [])
    placeholders = ", ".join("?" for _ in indicators)
    # the Quartiere are the areas of the base level (the level deliveries carry), each in its area of the rule's
    # level (marts.area_hierarchy)
    base = con.execute("select area_level from marts.area_levels where is_base").fetchone()[0]
    values = con.execute(
        "select report_cycle, area_level, area_id, indicator_id, value, city_value from marts.area_indicators "
        f"where area_level in (?, ?) and indicator_id in ({placeholders})",
        [rule.area_level, base, *indicators],
    ).pl()
    catalogue = _catalogue(con)
    areas = con.execute("select area_level, area_id, area_name from marts.areas").pl()
    level_names = areas.filter(areas["area_level"] == rule.area_level)
    unterbezirke = areas.filter(areas["area_level"] == base)
    containing = con.execute("select area_id, container_id from marts.area_hierarchy "
                             "where area_level = ? and container_level = ?", [base, rule.area_level]).fetchall()

    result = classify_action_areas(
        values.filter(values["area_level"] == rule.area_level).drop("area_level"),
        catalogue,
        rule,
        area_names=dict(zip(level_names["area_id"], level_names["area_name"], strict=True)),
        quartier_indicators=values.filter(values["area_level"] == base).drop("area_level"),
        quartier_areas=dict(containing) or None,
        quartier_names=dict(zip(unterbezirke["area_id"], unterbezirke["area_name"], strict=True)),
    )
    con.execute(f"create schema if not exists {SCHEMA}")
    for attribute, table in TABLES.items():
        frame = getattr(result, attribute)  # noqa: F841 - read by DuckDB's replacement scan
        con.execute(f"create or replace table {SCHEMA}.{table} as select * from frame")
    return result


def _catalogue(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.execute("select indicator_id, name_de, unit, direction from marts.indicators").pl()


def indicator_table(con: duckdb.DuckDBPyConnection, method: Method) -> pl.DataFrame:
    """The engine's input from the marts: the method's indicators at its area level, with population and names."""
    level = method.area_level
    if not level:
        raise MethodError(f"method {method.id!r} has no area_level; the pipeline needs one to pick its marts")
    levels = {row[0] for row in con.execute("select distinct area_level from marts.areas").fetchall()}
    if level not in levels:
        raise MethodError(f"method {method.id!r}: area_level {level!r} is not one of {', '.join(sorted(levels))}")
    placeholders = ", ".join("?" for _ in method.indicator_ids)
    return con.execute(
        f"""
        select v.report_cycle, v.area_id, a.area_name, v.indicator_id, v.value, v.city_value, p.value as population
        from marts.area_indicators v
        join marts.areas a using (area_level, area_id)
        left join marts.area_indicators p
          on p.report_cycle = v.report_cycle and p.area_level = v.area_level and p.area_id = v.area_id
         and p.indicator_id = ?
        where v.area_level = ? and v.indicator_id in ({placeholders})
        """,
        [POPULATION_INDICATOR, level, *method.indicator_ids],
    ).pl()


def restated_values(con: duckdb.DuckDBPyConnection, method: Method) -> Restated | None:
    """The base values of the method's changes restated on the current geography version: the cycles before
    that version from ``marts.area_indicators_harmonised`` at the method's level (None without changes)."""
    sources = sorted({spec.source for dimension in method.dimensions for spec in dimension.indicators
                      if spec.change_of})
    if not sources:
        return None
    version = con.execute("select max(geography_version) from marts.area_indicators_harmonised").fetchone()[0]
    if version is None:
        return None
    cycles = frozenset(row[0] for row in con.execute(
        "select distinct report_cycle from marts.area_indicators_harmonised where report_cycle >= ?",
        [version]).fetchall())
    placeholders = ", ".join("?" for _ in sources)
    values = con.execute(
        "select report_cycle, area_id, indicator_id, value, city_value, is_estimate "
        f"from marts.area_indicators_harmonised where area_level = ? and report_cycle < ? "
        f"and indicator_id in ({placeholders})", [method.area_level, version, *sources]).pl()
    return Restated(version=version, cycles=cycles, values=values)


def classify_methods_in_warehouse(con: duckdb.DuckDBPyConnection, rule: ActionAreaRule,
                                  methods: Sequence[Method]) -> list[Classification]:
    """Run the action-area rule and every configured method through the engine; write the four tables."""
    catalogue = _catalogue(con)
    if any(m.id == METHOD_ID for m in methods):
        raise MethodError(f"method id {METHOD_ID!r} is kept for the action-area rule of city.yml")
    names = {r["indicator_id"]: (r["name_de"], r["unit"]) for r in catalogue.iter_rows(named=True)}
    all_methods = [rule.to_method(rule_directions(catalogue, rule)), *methods]
    results = [classify(indicator_table(con, method), method, indicator_names=names,
                        restated=restated_values(con, method)) for method in all_methods]

    method_rows = pl.DataFrame(
        [{"method_id": r.method.id, "name_de": r.method.name_de, "area_level": r.method.area_level,
          "description": r.method.description, "source": r.method.source,
          "dimensions": ", ".join(d.id for d in r.method.dimensions), "flag_label": r.method.flag_label,
          "min_population": r.method.min_population, "definition_yaml": r.method.definition_yaml(),
          "notes": "\n".join(r.notes) or None} for r in results],
        schema={"method_id": pl.Utf8, "name_de": pl.Utf8, "area_level": pl.Utf8, "description": pl.Utf8,
                "source": pl.Utf8, "dimensions": pl.Utf8, "flag_label": pl.Utf8, "min_population": pl.Float64,
                "definition_yaml": pl.Utf8, "notes": pl.Utf8})
    frames = {
        "classification_methods": method_rows,
        "area_classifications": pl.concat([r.areas for r in results], how="vertical"),
        "area_classification_dimensions": pl.concat([_with_dimension_name(r) for r in results], how="vertical"),
        "area_classification_indicators": pl.concat([r.indicators for r in results], how="vertical"),
    }
    con.execute(f"create schema if not exists {SCHEMA}")
    for table in METHOD_TABLES:
        frame = frames[table]  # noqa: F841 - read by DuckDB's replacement scan
        con.execute(f"create or replace table {SCHEMA}.{table} as select * from frame")
    return results


def _with_dimension_name(result: Classification) -> pl.DataFrame:
    """A method's dimension rows with the dimension's German name (the method's ``name_de`` of the dimension)
    beside its id, for the published table and the workbook."""
    names = {dimension.id: dimension.name_de for dimension in result.method.dimensions}
    frame = result.dimensions.with_columns(
        pl.col("dimension_id").replace_strict(names, return_dtype=pl.Utf8).alias("dimension_name"))
    columns = frame.columns[:-1]
    at = columns.index("dimension_id") + 1
    return frame.select(*columns[:at], "dimension_name", *columns[at:])
