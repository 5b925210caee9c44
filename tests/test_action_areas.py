"""The action-area rule on a small hand-made table with known answers."""

from __future__ import annotations

import polars as pl
import pytest

from social_monitor.classification import ActionAreaRule, RuleError, classify_action_areas

CATALOGUE = pl.DataFrame({
    "indicator_id": ["transfer_rate", "transfer_rate_age_0_14", "sgb2_rate", "residents", "employment_rate"],
    "name_de": ["Transferleistungsquote", "Transferleistungsquote unter 15 Jahren", "SGB-II-Quote",
                "Einwohner", "Beschäftigtenquote"],
    "unit": ["%", "%", "%", "Personen", "%"],
    "direction": ["higher_is_worse", "higher_is_worse", "higher_is_worse", "neutral", "higher_is_better"],
})
RULE = ActionAreaRule(indicators=("transfer_rate", "transfer_rate_age_0_14", "sgb2_rate"), min_indicators_worse=2)
CITY = {"transfer_rate": 16.0, "transfer_rate_age_0_14": 30.0, "sgb2_rate": 18.0}

# area -> cycle -> values of (transfer_rate, transfer_rate_age_0_14, sgb2_rate)
VALUES = {
    "A": {2007: (30.0, 50.0, 35.0), 2018: (28.0, 45.0, 30.0)},  # worse on all three: kept
    "B": {2007: (17.0, 29.0, 17.0), 2018: (22.0, 31.0, 17.5)},  # 1 of 3, then 2 of 3: new
    "C": {2007: (20.0, 35.0, 10.0), 2018: (15.0, 35.0, 10.0)},  # 2 of 3, then 1 of 3: released
    "D": {2007: (10.0, 20.0, 12.0), 2018: (16.0, 30.0, 18.0)},  # equal to the city is not worse
}


def _table(values=VALUES, city=CITY) -> pl.DataFrame:
    rows = [
        {"report_cycle": cycle, "area_id": area, "indicator_id": indicator, "value": value,
         "city_value": city[indicator]}
        for area, cycles in values.items() for cycle, triple in cycles.items()
        for indicator, value in zip(RULE.indicators, triple, strict=True)
    ]
    return pl.DataFrame(rows)


def _classes(result) -> dict[tuple[str, int], tuple[bool, str]]:
    return {(r["area_id"], r["report_cycle"]): (r["is_action_area"], r["change_since_previous"])
            for r in result.areas.iter_rows(named=True)}


def test_known_answers():
    result = classify_action_areas(_table(), CATALOGUE, RULE, area_names={"A": "Nordstadt"})
    assert _classes(result) == {
        ("A", 2007): (True, "first_cycle"), ("A", 2018): (True, "kept"),
        ("B", 2007): (False, "first_cycle"), ("B", 2018): (True, "new"),
        ("C", 2007): (True, "first_cycle"), ("C", 2018): (False, "released"),
        ("D", 2007): (False, "first_cycle"), ("D", 2018): (False, "not_action_area"),
    }


def test_reasons_name_the_indicators_and_both_values():
    result = classify_action_areas(_table(), CATALOGUE, RULE, area_names={"A": "Nordstadt"})
    row = result.areas.filter((pl.col("area_id") == "B") & (pl.col("report_cycle") == 2018)).row(0, named=True)
    assert row["indicators_worse"] == "transfer_rate, transfer_rate_age_0_14"
    assert row["indicators_worse_count"] == 2
    assert row["reasons"] == ("Transferleistungsquote 22,0 % (Stadt 16,0 %); "
                              "Transferleistungsquote unter 15 Jahren 31,0 % (Stadt 30,0 %)")
    assert result.areas.filter(pl.col("area_id") == "A")["area_name"].to_list() == ["Nordstadt", "Nordstadt"]
    details = result.indicators.filter((pl.col("area_id") == "C") & (pl.col("report_cycle") == 2007))
    assert dict(zip(details["indicator_id"], details["is_worse"], strict=True)) == {
        "sgb2_rate": False, "transfer_rate": True, "transfer_rate_age_0_14": True}


def test_higher_is_better_indicators_are_worse_below_the_city():
    rule = ActionAreaRule(indicators=("employment_rate",), min_indicators_worse=1, quartier_indicator=None)
    table = pl.DataFrame({"report_cycle": [2018, 2018], "area_id": ["X", "Y"], "indicator_id": ["employment_rate"] * 2,
                          "value": [40.0, 60.0], "city_value": [50.0, 50.0]})
    areas = classify_action_areas(table, CATALOGUE, rule).areas
    assert dict(zip(areas["area_id"], areas["is_action_area"], strict=True)) == {"X": True, "Y": False}


def test_quartiere_inside_action_areas_are_named():
    quartiere = pl.DataFrame({
        "report_cycle": [2018, 2018, 2018, 2018], "area_id": ["a1", "a2", "d1", "c1"],
        "indicator_id": ["transfer_rate"] * 4, "value": [40.0, 12.0, 30.0, 30.0], "city_value": [16.0] * 4,
    })
    result = classify_action_areas(
        _table(), CATALOGUE, RULE, quartier_indicators=quartiere,
        quartier_areas={"a1": "A", "a2": "A", "d1": "D", "c1": "C"}, quartier_names={"a1": "Wambeler Heide"},
    )
    rows = {r["base_area_id"]: r for r in result.quartiere.iter_rows(named=True)}
    assert set(rows) == {"a1", "a2"}  # D and C are not action areas in 2018
    assert rows["a1"]["is_worse_than_city"] and not rows["a2"]["is_worse_than_city"]
    assert rows["a1"]["base_area_name"] == "Wambeler Heide"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"indicators": []}, "names no indicators"),
        ({"indicators": ["transfer_rate"], "min_indicators_worse": 2}, "between 1 and 1"),
        ({"indicators": ["transfer_rate"], "threshold": 1}, "unknown key"),
    ],
)
def test_bad_rule_configuration(config, message):
    with pytest.raises(RuleError, match=message):
        ActionAreaRule.from_config(config)


def test_unknown_or_directionless_indicator_is_refused():
    with pytest.raises(RuleError, match="not in the indicator catalogue"):
        classify_action_areas(_table(), CATALOGUE, ActionAreaRule(("nonsense",), 1))
    with pytest.raises(RuleError, match="direction 'neutral'"):
        classify_action_areas(_table(), CATALOGUE, ActionAreaRule(("residents",), 1))


def test_indicator_missing_from_the_table_is_refused():
    table = _table().filter(pl.col("indicator_id") != "sgb2_rate")
    with pytest.raises(RuleError, match="no values for sgb2_rate"):
        classify_action_areas(table, CATALOGUE, RULE)
