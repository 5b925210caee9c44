"""Run the action-area classification on the warehouse's marts and store the result beside them."""

from __future__ import annotations

import duckdb

from social_monitor.classification.action_areas import ActionAreaResult, ActionAreaRule, classify_action_areas

SCHEMA = "classification"
TABLES = {"areas": "action_areas", "indicators": "action_area_indicators", "quartiere": "action_area_quartiere"}


def classify_in_warehouse(con: duckdb.DuckDBPyConnection, rule: ActionAreaRule) -> ActionAreaResult:
    """Classify from ``marts.area_indicators`` and write ``classification.action_areas`` and its details."""
    indicators = list(rule.indicators) + ([rule.quartier_indicator] if rule.quartier_indicator else [])
    placeholders = ", ".join("?" for _ in indicators)
    values = con.execute(
        "select report_cycle, area_level, area_id, indicator_id, value, city_value from marts.area_indicators "
        f"where area_level in (?, 'unterbezirk') and indicator_id in ({placeholders})",
        [rule.area_level, *indicators],
    ).pl()
    catalogue = con.execute("select indicator_id, name_de, unit, direction from marts.indicators").pl()
    areas = con.execute("select area_level, area_id, area_name, sozialraum_id from marts.areas").pl()
    level_names = areas.filter(areas["area_level"] == rule.area_level)
    unterbezirke = areas.filter(areas["area_level"] == "unterbezirk")
    level_key = {"sozialraum": "sozialraum_id"}.get(rule.area_level)

    result = classify_action_areas(
        values.filter(values["area_level"] == rule.area_level).drop("area_level"),
        catalogue,
        rule,
        area_names=dict(zip(level_names["area_id"], level_names["area_name"], strict=True)),
        quartier_indicators=values.filter(values["area_level"] == "unterbezirk").drop("area_level"),
        quartier_areas=(dict(zip(unterbezirke["area_id"], unterbezirke[level_key], strict=True))
                        if level_key else None),
        quartier_names=dict(zip(unterbezirke["area_id"], unterbezirke["area_name"], strict=True)),
    )
    con.execute(f"create schema if not exists {SCHEMA}")
    for attribute, table in TABLES.items():
        frame = getattr(result, attribute)  # noqa: F841 - read by DuckDB's replacement scan
        con.execute(f"create or replace table {SCHEMA}.{table} as select * from frame")
    return result
