"""The classification engine on small hand-made tables whose answers are computed by hand in the comments.

Covers ``classify`` with the shipped methods (Berlin MSS, Dortmund action areas, Hamburg RISE) and custom
ones, the method parser's errors, reading indicator tables (``tables``) and ``social-monitor classify``.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from social_monitor.classification import DataError, Method, MethodError, classify, load_method, parse_method
from social_monitor.classification.tables import Columns, TableError, read_table, to_indicator_table
from social_monitor.cli import main

MINUS = "\u2212"  # the MSS dynamics class "negativ" is written with a minus sign, not a hyphen
THREE_CLASSES = [  # a custom cut: x < 0 | 0 <= x <= 10 | x > 10
    {"code": 1, "label": "gut", "below": 0},
    {"code": 2, "label": "mittel", "up_to": 10},
    {"code": 3, "label": "schlecht"},
]


# --- helpers -------------------------------------------------------------------------------------------------

def long_rows(cycle: int, values: dict[str, dict[str, float | None]], *, population: float | dict | None = 1000.0,
              city: dict[str, float] | None = None, **extra: object) -> list[dict]:
    """{area: {indicator: value}} of one cycle as rows of the engine's long table."""
    rows = []
    for area, by_indicator in values.items():
        residents = population.get(area) if isinstance(population, dict) else population
        for indicator, value in by_indicator.items():
            row = {"report_cycle": cycle, "area_id": area, "indicator_id": indicator, "value": value,
                   "population": residents, **extra}
            if city is not None:
                row["city_value"] = city[indicator]
            rows.append(row)
    return rows


def table(*row_lists: list[dict]) -> pl.DataFrame:
    rows = [row for rows in row_lists for row in rows]
    schema = {"report_cycle": pl.Int32, "area_id": pl.Utf8, "indicator_id": pl.Utf8, "value": pl.Float64,
              "population": pl.Float64, "city_value": pl.Float64, "is_valid": pl.Boolean}
    return pl.DataFrame(rows, schema={k: v for k, v in schema.items() if any(k in row for row in rows)})


def dimension(indicators: list, *, dimension_id: str = "index", classes: list | None = None, **keys: object) -> dict:
    return {"id": dimension_id, "indicators": indicators, "classes": classes or THREE_CLASSES, **keys}


def method(*dimensions: dict, **keys: object) -> Method:
    return parse_method({"id": "test", **keys, "dimensions": list(dimensions)})


def column(frame: pl.DataFrame, name: str, cycle: int | None = None, dimension_id: str | None = None,
           key: str = "area_id") -> dict:
    """{area_id (or ``key``): value of ``name``}, for one cycle and dimension where the frame has several."""
    if cycle is not None:
        frame = frame.filter(pl.col("report_cycle") == cycle)
    if dimension_id is not None:
        frame = frame.filter(pl.col("dimension_id") == dimension_id)
    assert frame[key].n_unique() == frame.height, f"{key} repeats: narrow the frame first"
    return dict(zip(frame[key].to_list(), frame[name].to_list(), strict=True))


def approx_column(frame: pl.DataFrame, name: str, **where: object) -> dict:
    return {area: pytest.approx(value, abs=1e-9) for area, value in column(frame, name, **where).items()}


# --- Berlin MSS ----------------------------------------------------------------------------------------------
# Raw status value s and dynamics value d per area; both use the same seven numbers 0, 3, 3, 3, 4, 10, 12:
#   mean = 35 / 7 = 5; population variance = (25 + 4 + 4 + 4 + 1 + 25 + 49) / 7 = 112 / 7 = 16, SD = 4;
#   z = (x - 5) / 4: 0 -> -1.25, 3 -> -0.5, 4 -> -0.25, 10 -> +1.25, 12 -> +1.75.
# S1..S4 (and D1..D4) are positive linear maps of s (of d), so each has the same z; the sum of the four is 4z
# (mean 0, SD 4) and re-standardising it gives z again: the index of an area is the z of its s (of its d).
MSS_S = {"A": 0, "B": 3, "C": 3, "D": 3, "E": 4, "F": 10, "G": 12}
MSS_D = {"A": 3, "B": 12, "C": 3, "D": 0, "E": 4, "F": 3, "G": 10}
MSS_STATUS_INDEX = {"A": -1.25, "B": -0.5, "C": -0.5, "D": -0.5, "E": -0.25, "F": 1.25, "G": 1.75}
MSS_DYNAMICS_INDEX = {"A": -0.5, "B": 1.75, "C": -0.5, "D": -1.25, "E": -0.25, "F": -0.5, "G": 1.25}


def mss_values(area: str) -> dict[str, float]:
    s, d = MSS_S[area], MSS_D[area]
    return {"S1": s, "S2": 2 * s, "S3": s + 5, "S4": s / 2, "D1": d, "D2": d - 6, "D3": 3 * d, "D4": d}


def mss_table(cycle: int = 2021) -> pl.DataFrame:
    return table(long_rows(cycle, {area: mss_values(area) for area in MSS_S}))


def test_mss_index_is_the_restandardised_sum_of_z_scores():
    result = classify(mss_table(), load_method("berlin_mss"))
    assert approx_column(result.dimensions, "index_value", dimension_id="status") == MSS_STATUS_INDEX
    assert approx_column(result.dimensions, "index_value", dimension_id="dynamics") == MSS_DYNAMICS_INDEX
    # before re-standardising, the index is the sum of four equal z-scores: G 4 * 1.75 = 7
    assert column(result.dimensions, "raw_index", dimension_id="status")["G"] == pytest.approx(7.0)
    # the indicator table traces it: S2 of G is 24, the mean of S2 is 10, its SD 8, z (24 - 10) / 8 = 1.75
    s2 = result.indicators.filter((pl.col("area_id") == "G") & (pl.col("indicator_id") == "S2")).row(0, named=True)
    assert (s2["value"], s2["mean"], s2["sd"], s2["standardised"]) == pytest.approx((24, 10, 8, 1.75))


def test_mss_classes_and_combined_class():
    # status: z < -1 -> 1, <= 1 -> 2, <= 1.5 -> 3, else 4; dynamics: z < -1 -> "+", <= 1 -> "±", else "−"
    wide = classify(mss_table(), load_method("berlin_mss")).wide()
    assert column(wide, "status_class") == {"A": 1, "B": 2, "C": 2, "D": 2, "E": 2, "F": 3, "G": 4}
    assert column(wide, "dynamics_class") == {"A": 2, "B": 3, "C": 2, "D": 1, "E": 2, "F": 2, "G": 3}
    assert column(wide, "combined_class") == {"A": "1±", "B": f"2{MINUS}", "C": "2±", "D": "2+", "E": "2±",
                                              "F": "3±", "G": f"4{MINUS}"}
    assert column(wide, "status_label")["G"] == "sehr niedrig"


def test_mss_flag_is_status_3_or_4_or_status_2_with_negative_dynamics():
    areas = classify(mss_table(), load_method("berlin_mss")).areas
    # B: status 2 and dynamics 3; F: status 3; G: status 4. D (2, dynamics 1) and C, E (2, 2) are not flagged.
    assert column(areas, "is_flagged") == {"A": False, "B": True, "C": False, "D": False, "E": False, "F": True,
                                           "G": True}
    assert set(column(areas, "change_since_previous").values()) == {"first_cycle"}


def test_mss_reasons_name_the_class_index_and_strongest_indicators():
    reasons = column(classify(mss_table(), load_method("berlin_mss")).areas, "reasons")["G"]
    # G: status index +1.75; S1 = 12 with z +1.75 is among the three largest contributions
    assert reasons.startswith("Status-Index sehr niedrig (+1,75): ")
    assert "Arbeitslosigkeit 12,0 % (z +1,75)" in reasons
    assert "| Dynamik-Index negativ (+1,25)" in reasons


def test_mss_leaves_out_an_indicator_without_values_in_a_cycle():
    # S2 and D2 are not published from 2019 on: null in the table, left out with a note (absent_indicators: skip);
    # the index is then the re-standardised sum of three equal z-scores, again z
    frame = mss_table().with_columns(
        pl.when(pl.col("indicator_id").is_in(["S2", "D2"])).then(None).otherwise(pl.col("value")).alias("value"))
    result = classify(frame, load_method("berlin_mss"))
    assert "2021, status: S2 has no values in this cycle; left out (absent_indicators: skip)" in result.notes
    assert approx_column(result.dimensions, "index_value", dimension_id="status") == MSS_STATUS_INDEX
    assert result.dimensions["indicator_count"].unique().to_list() == [3]


# --- class borders -------------------------------------------------------------------------------------------

def border_result(values: list[float]):
    """One indicator, deviation from a city value of 0, no re-standardising: the index is the value itself."""
    status = load_method("berlin_mss").definition["dimensions"][0]
    areas = {f"a{i}": {"x": value} for i, value in enumerate(values)}
    return classify(table(long_rows(2021, areas, city={"x": 0.0})),
                    method(dimension(["x"], standardisation="deviation_from_city", classes=status["classes"])))


def test_class_borders_below_is_exclusive_and_up_to_is_inclusive():
    # MSS status: below -1 -> 1; up_to 1 -> 2; up_to 1.5 -> 3; the rest -> 4
    dimensions = border_result([-1.0001, -1.0, 1.0, 1.5, 1.5001]).dimensions
    assert column(dimensions, "index_value") == {"a0": -1.0001, "a1": -1.0, "a2": 1.0, "a3": 1.5, "a4": 1.5001}
    assert column(dimensions, "class_code") == {"a0": 1, "a1": 2, "a2": 2, "a3": 3, "a4": 4}


def test_distance_to_border_and_fragility():
    # the default margin of deviation_from_city is 0.5: 1.5001 lies 0.0001 above the border 1.5 (fragile),
    # 0 lies 1 from the nearest border (-1 and +1: not fragile)
    dimensions = border_result([1.5001, 0.0]).dimensions
    assert approx_column(dimensions, "distance_to_border") == {"a0": 0.0001, "a1": 1.0}
    assert column(dimensions, "is_fragile") == {"a0": True, "a1": False}
    assert column(dimensions, "alternative_class_code") == {"a0": 3, "a1": None}


# --- Dortmund action areas -----------------------------------------------------------------------------------
DORTMUND_CITY = {"transfer_rate": 20.0, "transfer_rate_age_0_14": 30.0, "sgb2_rate": 15.0}


def dortmund_rows(cycle: int, values: dict[str, tuple[float, float, float]]) -> list[dict]:
    """{area: (transfer_rate, transfer_rate_age_0_14, sgb2_rate)} against the city values 20, 30, 15."""
    return long_rows(cycle, {area: dict(zip(DORTMUND_CITY, triple, strict=True)) for area, triple in values.items()},
                     population=None, city=DORTMUND_CITY)


DORTMUND = table(
    dortmund_rows(2018, {"KEPT": (22.0, 35.0, 14.0),  # worse on 2 of 3: action area
                         "NEW": (20.0, 30.0, 15.0),  # equal to the city everywhere: not worse, 0 of 3
                         "RELEASED": (30.0, 40.0, 10.0),  # 2 of 3
                         "NEVER": (10.0, 20.0, 10.0)}),  # 0 of 3
    dortmund_rows(2021, {"KEPT": (25.0, 40.0, 20.0),  # 3 of 3
                         "NEW": (24.0, 36.0, 10.0),  # 2 of 3
                         "RELEASED": (18.0, 40.0, 10.0),  # 1 of 3
                         "NEVER": (19.0, 36.0, 14.0)}),  # 1 of 3
)


def test_dortmund_flags_two_of_three_worse_than_the_city():
    result = classify(DORTMUND, load_method("dortmund_action_areas"))
    assert column(result.dimensions, "index_value", cycle=2018) == {"KEPT": 2, "NEW": 0, "NEVER": 0, "RELEASED": 2}
    assert column(result.areas, "is_flagged", cycle=2018) == {"KEPT": True, "NEW": False, "NEVER": False,
                                                              "RELEASED": True}
    assert column(result.areas, "combined_class", cycle=2021) == {"KEPT": "A", "NEW": "A", "NEVER": "-",
                                                                  "RELEASED": "-"}


def test_dortmund_kept_new_released_across_cycles():
    areas = classify(DORTMUND, load_method("dortmund_action_areas")).areas
    assert set(column(areas, "change_since_previous", cycle=2018).values()) == {"first_cycle"}
    assert column(areas, "change_since_previous", cycle=2021) == {
        "KEPT": "kept", "NEW": "new", "RELEASED": "released", "NEVER": "not_flagged"}


def test_dortmund_reasons_list_worse_indicators_in_german_format():
    reasons = column(classify(DORTMUND, load_method("dortmund_action_areas")).areas, "reasons", cycle=2018)
    assert reasons["KEPT"] == ("Aktionsraum: Transferleistungsquote 22,0 % (Stadt 20,0 %); "
                               "Transferleistungsquote unter 15 Jahren 35,0 % (Stadt 30,0 %)")
    assert "SGB-II-Quote" not in reasons["KEPT"]  # 14 % is better than the city's 15 %
    assert reasons["NEVER"] == "kein Aktionsraum"


def test_dortmund_decision_resting_on_an_indicator_near_the_city_value_is_fragile():
    # margin 5 % of the city value: transfer_rate within 20 +- 1, the others within 30 +- 1.5 and 15 +- 0.75
    areas = classify(table(dortmund_rows(2021, {
        "TIPS": (20.5, 36.0, 10.0),  # 2 worse, one of them only 0.5 above the city: could be 1 -> fragile
        "CLEAR": (25.0, 36.0, 10.0),  # 2 worse, both clearly
        "SPARE": (20.5, 36.0, 20.0),  # 3 worse, one near: still 2 without it -> not fragile
        "ALMOST": (19.5, 36.0, 10.0),  # 1 worse, one better by only 0.5: could be 2 -> fragile
    })), load_method("dortmund_action_areas")).areas
    assert column(areas, "is_flagged") == {"TIPS": True, "CLEAR": True, "SPARE": True, "ALMOST": False}
    assert column(areas, "is_fragile") == {"TIPS": True, "CLEAR": False, "SPARE": False, "ALMOST": True}


# --- a custom method -----------------------------------------------------------------------------------------
CUSTOM = method(dimension(
    [{"id": "a", "weight": 2}, "b", {"id": "c", "direction": "higher_is_better"}],
    standardisation="deviation_from_city", combine="mean",
    classes=[{"code": 1, "label": "gut", "below": -0.5}, {"code": 2, "label": "mittel", "up_to": 2.5},
             {"code": 3, "label": "schlecht"}]))
CUSTOM_CITY = {"a": 10.0, "b": 8.0, "c": 60.0}
CUSTOM_TABLE = table(long_rows(2021, {
    "X": {"a": 12.5, "b": 5.0, "c": 50.0},  # (2 * 2.5 + (-3) + -1 * (-10)) / (2 + 1 + 1) = 12 / 4 = 3.0
    "Y": {"a": 9.0, "b": 8.4, "c": 62.0},  # (2 * -1 + 0.4 + -1 * 2) / 4 = -3.6 / 4 = -0.9
    "Z": {"a": 10.3, "b": 7.9, "c": 60.5},  # (2 * 0.3 + (-0.1) + -1 * 0.5) / 4 = 0 / 4 = 0
}, city=CUSTOM_CITY))


def test_custom_weighted_mean_of_deviations_with_a_reversed_indicator():
    result = classify(CUSTOM_TABLE, CUSTOM)
    assert approx_column(result.dimensions, "index_value") == {"X": 3.0, "Y": -0.9, "Z": 0.0}
    # below -0.5 -> 1; up to 2.5 -> 2; the rest -> 3
    assert column(result.dimensions, "class_code") == {"X": 3, "Y": 1, "Z": 2}


def test_custom_indicator_rows_show_direction_and_weight():
    indicators = classify(CUSTOM_TABLE, CUSTOM).indicators.filter(pl.col("area_id") == "X")
    # a: 12.5 - 10 = 2.5, weight 2 -> 5; c: higher is better, 50 below the city's 60 -> +10
    assert approx_column(indicators, "contribution", key="indicator_id") == {"a": 5.0, "b": -3.0, "c": 10.0}
    assert column(indicators, "weight", key="indicator_id") == {"a": 2.0, "b": 1.0, "c": 1.0}


# --- derived dynamics (change over years) --------------------------------------------------------------------
# sgb2 and unemployed per area; the 2020 and 2021 values do not enter the 3-year change of 2022.
RISE_2019 = {"P": {"sgb2": 10.0, "unemployed": 5.0}, "Q": {"sgb2": 12.0, "unemployed": 6.0},
             "R": {"sgb2": 14.0, "unemployed": 7.0}, "S": {"sgb2": 20.0, "unemployed": 9.0}}
RISE_2022 = {"P": {"sgb2": 11.0, "unemployed": 5.0}, "Q": {"sgb2": 12.0, "unemployed": 7.0},
             "R": {"sgb2": 18.0, "unemployed": 9.0}, "S": {"sgb2": 19.0, "unemployed": 8.0}}
RISE_BETWEEN = {"P": {"sgb2": 30.0, "unemployed": 1.0}, "Q": {"sgb2": 31.0, "unemployed": 2.0},
                "R": {"sgb2": 35.0, "unemployed": 4.0}, "S": {"sgb2": 33.0, "unemployed": 3.0}}
RISE_TABLE = table(long_rows(2019, RISE_2019), long_rows(2020, RISE_BETWEEN), long_rows(2021, RISE_BETWEEN),
                   long_rows(2022, RISE_2022))


def rise_method() -> Method:
    """hamburg_rise (dynamics = change over 3 years) on two indicators, without its 300-residents rule."""
    changes = [{"id": f"{i}_change_3y", "change_of": i, "change_years": 3} for i in ("sgb2", "unemployed")]
    return load_method({"extends": "hamburg_rise", "min_population": 0, "dimensions": [
        {"id": "status", "indicators": ["sgb2", "unemployed"]},
        {"id": "dynamics", "indicators": changes}]})


def test_change_over_three_years_is_the_difference_to_three_years_before():
    indicators = classify(RISE_TABLE, rise_method()).indicators.filter(pl.col("dimension_id") == "dynamics")
    assert indicators["report_cycle"].unique().to_list() == [2022]
    # sgb2: P 11 - 10 = 1, Q 12 - 12 = 0, R 18 - 14 = 4, S 19 - 20 = -1
    assert approx_column(indicators.filter(pl.col("indicator_id") == "sgb2_change_3y"), "value") == {
        "P": 1.0, "Q": 0.0, "R": 4.0, "S": -1.0}
    # unemployed: P 5 - 5 = 0, Q 7 - 6 = 1, R 9 - 7 = 2, S 8 - 9 = -1
    assert approx_column(indicators.filter(pl.col("indicator_id") == "unemployed_change_3y"), "value") == {
        "P": 0.0, "Q": 1.0, "R": 2.0, "S": -1.0}


def test_cycles_without_a_base_year_have_no_dynamics_class_and_a_note():
    # hamburg_rise keeps absent_indicators: error, yet 2019-2021 (no year 3 years before in the table) are a
    # note, not an error: the change is undefined there, not missing
    result = classify(RISE_TABLE, rise_method())
    wide = result.wide()
    assert set(wide.filter(pl.col("report_cycle") < 2022)["dynamics_class"].to_list()) == {None}
    assert wide.filter(pl.col("report_cycle") == 2022)["dynamics_class"].null_count() == 0
    assert wide["status_class"].null_count() == 0
    assert result.notes == tuple(
        f"{cycle}, dynamics: {indicator}_change_3y needs a cycle before {cycle} that the table does not hold; "
        "left out" for cycle in (2019, 2020, 2021) for indicator in ("sgb2", "unemployed"))


def test_no_cycle_with_a_base_year_leaves_the_dynamics_out():
    result = classify(RISE_TABLE.filter(pl.col("report_cycle") < 2022), rise_method())
    assert len(result.notes) == 6
    assert result.dimensions["dimension_id"].unique().to_list() == ["status"]
    assert set(result.wide()["combined_class"].to_list()) <= {"1", "2", "3", "4"}  # status class alone


def test_change_since_the_previous_cycle_without_change_years():
    # x in 2019 and 2021 (no 2020): the change of 2021 is against 2019, for the areas and the city alike:
    # A: 4 - 1 = 3, city 3 - 2 = 1 -> deviation 2; B: 5.5 - 5 = 0.5 -> deviation 0.5 - 1 = -0.5
    result = classify(table(long_rows(2019, {"A": {"x": 1.0}, "B": {"x": 5.0}}, city={"x": 2.0}),
                            long_rows(2021, {"A": {"x": 4.0}, "B": {"x": 5.5}}, city={"x": 3.0})),
                      method(dimension([{"id": "dx", "change_of": "x"}], standardisation="deviation_from_city")))
    assert approx_column(result.indicators, "value") == {"A": 3.0, "B": 0.5}
    assert approx_column(result.indicators, "standardised") == {"A": 2.0, "B": -0.5}
    assert result.notes == ("2019, index: dx needs a cycle before 2019 that the table does not hold; left out",)


# --- comparison with the previous cycle ----------------------------------------------------------------------

def test_previous_class_and_class_change():
    # classes: x < 0 -> 1, x <= 10 -> 2, else 3 (deviation from a city value of 0 = the value)
    zero = {"x": 0.0}
    result = classify(table(
        long_rows(2020, {"SAME": {"x": 5.0}, "BETTER": {"x": 15.0}, "WORSE": {"x": -3.0}}, city=zero),
        long_rows(2022, {"SAME": {"x": 6.0}, "BETTER": {"x": 5.0}, "WORSE": {"x": 12.0}, "NEWCOMER": {"x": 1.0}},
                  city=zero),
    ), method(dimension(["x"], standardisation="deviation_from_city")))
    dims = result.dimensions
    assert set(column(dims, "class_change", cycle=2020).values()) == {"no_previous"}
    assert column(dims, "previous_class_code", cycle=2022) == {"BETTER": 3, "NEWCOMER": None, "SAME": 2, "WORSE": 1}
    assert column(dims, "class_change", cycle=2022) == {"BETTER": "better", "NEWCOMER": "no_previous",
                                                        "SAME": "same", "WORSE": "worse"}
    assert column(result.wide(), "index_change", cycle=2022)["WORSE"] == "worse"


# --- exclusions ----------------------------------------------------------------------------------------------

def exclusion_result():
    rows = long_rows(2021, {"A": {"x": 10.0}, "B": {"x": 20.0}, "SMALL": {"x": 1000.0}, "NAMED": {"x": -500.0}},
                     population={"A": 1000.0, "B": 300.0, "SMALL": 299.0, "NAMED": 5000.0}, is_valid=True)
    rows += long_rows(2021, {"INVALID": {"x": 700.0}}, is_valid=False)
    return classify(table(rows), method(dimension(["x"]), min_population=300, exclude_areas=["NAMED"]))


def test_exclusion_reasons():
    areas = exclusion_result().areas
    assert column(areas, "exclusion_reason") == {
        "A": None, "B": None,  # B has exactly 300 residents: not fewer than 300
        "SMALL": "weniger als 300 Einwohner",
        "NAMED": "in der Methode ausgeschlossen (exclude_areas)",
        "INVALID": "in den Eingangsdaten als ungültig markiert",
    }
    assert column(areas, "is_flagged")["SMALL"] is None


def test_excluded_areas_do_not_enter_mean_and_sd():
    # over A and B only: mean (10 + 20) / 2 = 15, population SD 5, z = -1 and +1
    result = exclusion_result()
    assert approx_column(result.indicators, "standardised") == {"A": -1.0, "B": 1.0}
    assert result.indicators["mean"].unique().to_list() == [15.0]
    assert result.indicators["sd"].unique().to_list() == [5.0]


def test_missing_value_excludes_the_area_when_allowed():
    rows = long_rows(2021, {"A": {"x": 1.0, "y": 2.0}, "B": {"x": 3.0, "y": 6.0}, "C": {"x": 99.0, "y": None}})
    result = classify(table(rows), method(dimension(["x", "y"]), missing_values="exclude_area"))
    assert column(result.areas, "exclusion_reason") == {"A": None, "B": None, "C": "fehlender Wert: y"}
    # x over A and B: mean 2, SD 1 -> z -1, +1 (C's 99 left out)
    assert approx_column(result.indicators.filter(pl.col("indicator_id") == "x"), "standardised") == {
        "A": -1.0, "B": 1.0}
    assert any("missing values" in note for note in result.notes)


# --- errors --------------------------------------------------------------------------------------------------
THREE_AREAS = table(long_rows(2021, {"A": {"x": 1.0, "y": 5.0}, "B": {"x": 2.0, "y": 5.0},
                                     "C": {"x": 4.0, "y": None}}, population=None))


@pytest.mark.parametrize(("raw", "message"), [
    ({"id": "t", "dimensions": [dimension([])]}, "`indicators` is empty; name at least one indicator"),
    ({"id": "t", "colour": "red", "dimensions": [dimension(["x"])]}, "unknown key(s) colour; known are"),
    ({"id": "t", "dimensions": [dimension(["x"], weights=[1])]}, "unknown key(s) weights"),
    ({"id": "t", "dimensions": [dimension(["x"], classes=[{"code": 1, "label": "a", "below": 2},
                                                          {"code": 2, "label": "b", "up_to": 1},
                                                          {"code": 3, "label": "c"}])]},
     "class bounds must rise: [2, 1]"),
    ({"id": "t", "dimensions": [dimension(["x"])], "flag": {"any_of": [{"dynamik": [3]}]}},
     "flag.any_of[0] names unknown dimension 'dynamik'"),
    ({"id": "t", "dimensions": [dimension([{"id": "x", "weight": 0}])]},
     "(x): weight must be a finite number > 0, not 0"),
    ({"id": "t", "dimensions": [dimension([{"id": "x", "weight": -1.5}])]},
     "weight must be a finite number > 0, not -1.5"),
    ({"dimensions": [dimension(["x"])]}, "the method needs an `id`"),
    ({"id": "t", "dimensions": [dimension([{"id": "x", "weight": True}])]},
     "weight must be a finite number > 0, not True"),
    ({"id": "t", "min_population": True, "dimensions": [dimension(["x"])]}, "min_population must be a finite number"),
])
def test_bad_method_configuration(raw, message):
    with pytest.raises(MethodError, match=re.escape(message)):
        parse_method(raw)


def test_extends_keeps_the_dimensions_it_does_not_name():
    method = load_method({"extends": "berlin_mss", "id": "mss_wide_margin",
                          "dimensions": [{"id": "status", "sensitivity_margin": 0.2}]})
    assert [d.id for d in method.dimensions] == ["status", "dynamics"]
    assert [d.sensitivity_margin for d in method.dimensions] == [0.2, 0.1]
    assert [i.id for i in method.dimensions[0].indicators] == ["S1", "S2", "S3", "S4"]


def test_extends_adds_a_dimension_with_a_new_id():
    method = load_method({"extends": "dortmund_action_areas", "id": "plus",
                          "dimensions": [dimension(["transfer_rate_age_65_plus"], dimension_id="elderly")]})
    assert [d.id for d in method.dimensions] == ["action_area", "elderly"]


def test_unknown_shipped_method():
    with pytest.raises(MethodError, match=r"unknown method 'munich': not a file and not one of the shipped methods "
                                          r"\(berlin_mss, dortmund_action_areas, hamburg_rise\)"):
        load_method("munich")


def test_indicator_not_in_the_table():
    with pytest.raises(DataError, match=r"names indicator\(s\) z, which the table does not hold \(it holds: x, y\)"):
        classify(THREE_AREAS, method(dimension(["x", "z"])))


def test_zero_variance_in_a_cycle():
    with pytest.raises(DataError, match="indicator y has zero variance in cycle 2021"):
        classify(THREE_AREAS.filter(pl.col("area_id") != "C"), method(dimension(["x", "y"])))


def test_missing_value_for_an_included_area():
    with pytest.raises(DataError, match=r"1 missing value\(s\) for included areas, e\.g\. 2021 C y; .*"
                                          r"missing_values: exclude_area"):
        classify(THREE_AREAS, method(dimension(["x", "y"])))


def test_indicator_without_any_value_in_a_cycle():
    frame = pl.concat([THREE_AREAS, THREE_AREAS.with_columns(
        pl.lit(2022, dtype=pl.Int32).alias("report_cycle"),
        pl.when(pl.col("indicator_id") == "x").then(None).otherwise(pl.col("value")).alias("value"))])
    with pytest.raises(DataError, match=r"indicator x has no values in cycle 2022 \(dimension index\); supply it, "
                                          "or set absent_indicators: skip"):
        classify(frame, method(dimension(["x"])))


def test_deviation_from_city_needs_city_values():
    with pytest.raises(DataError, match="deviation_from_city needs the city value, which is missing for x in "
                                          "cycle 2021"):
        classify(THREE_AREAS, method(dimension(["x"], standardisation="deviation_from_city")))


def test_a_cycle_with_every_area_left_out_is_refused_with_the_reasons():
    rows = long_rows(2021, {"A": {"x": 1.0}, "B": {"x": 2.0}, "NAMED": {"x": 3.0}},
                     population={"A": 299.0, "B": 12.0, "NAMED": 5000.0})
    with pytest.raises(DataError, match=re.escape(
            "method 'test', cycle 2021: no area left to classify, all 3 areas are left out (2 weniger als 300 "
            "Einwohner; 1 in der Methode ausgeschlossen (exclude_areas)); check min_population (300), "
            "exclude_areas against the table")):
        classify(table(rows), method(dimension(["x"]), min_population=300, exclude_areas=["NAMED"]))


def test_one_cycle_without_areas_is_refused_even_when_others_have_some():
    # 2021 has three areas of 1000 residents; in 2022 both areas fall under 300
    rows = long_rows(2021, {"A": {"x": 1.0}, "B": {"x": 2.0}, "C": {"x": 4.0}})
    rows += long_rows(2022, {"A": {"x": 1.0}, "B": {"x": 2.0}}, population=100.0)
    chosen = method(dimension(["x"]), min_population=300)
    assert classify(table(rows[:3]), chosen).areas["is_included"].all()  # 2021 alone classifies
    with pytest.raises(DataError, match=r"^method 'test', cycle 2022: no area left to classify, all 2 areas are "
                                          r"left out \(2 weniger als 300 Einwohner\); check min_population \(300\)"
                                          r" against the table$"):
        classify(table(rows), chosen)


def test_min_population_needs_a_population_column():
    with pytest.raises(DataError, match="leaves out areas under 300 residents, but the table has no population"):
        classify(THREE_AREAS, method(dimension(["x"]), min_population=300))


# --- reading tables ------------------------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def indicator_table(path: Path, **keys: object) -> pl.DataFrame:
    columns = keys.pop("columns", Columns())
    return to_indicator_table(read_table(path, separator=keys.pop("separator", ",")), source=str(path),
                              columns=columns, **keys)


def values_of(frame: pl.DataFrame, name: str = "value") -> dict[tuple[str, str], float]:
    return {(r["area_id"], r["indicator_id"]): r[name] for r in frame.iter_rows(named=True)}


def test_wide_csv_becomes_long(tmp_path):
    path = write(tmp_path / "wide.csv", "area_id,report_cycle,population,is_valid,S1,S3\n"
                                        "A,2021,1000,ja,1.5,2\nB,2021,250,nein,3,\n")
    frame = indicator_table(path)
    assert values_of(frame) == {("A", "S1"): 1.5, ("A", "S3"): 2.0, ("B", "S1"): 3.0, ("B", "S3"): None}
    assert column(frame.filter(pl.col("indicator_id") == "S1"), "population") == {"A": 1000.0, "B": 250.0}
    assert column(frame.filter(pl.col("indicator_id") == "S1"), "is_valid") == {"A": True, "B": False}
    assert frame["report_cycle"].dtype == pl.Int32


def test_long_csv_with_decimal_comma(tmp_path):
    path = write(tmp_path / "long.csv", "gebiet;jahr;indikator;wert\nA;2021;S1;1.234,5\nB;2021;S1;-0,5\n")
    columns = Columns(area="gebiet", cycle="jahr", indicator="indikator", value="wert")
    frame = indicator_table(path, columns=columns, separator=";", decimal_comma=True)
    assert values_of(frame) == {("A", "S1"): 1234.5, ("B", "S1"): -0.5}


def test_decimal_comma_refuses_a_decimal_point_instead_of_reading_it_as_thousands(tmp_path):
    path = write(tmp_path / "long.csv", "gebiet;jahr;indikator;wert\nA;2021;S1;1,5\nB;2021;S1;1.5\n")
    columns = Columns(area="gebiet", cycle="jahr", indicator="indikator", value="wert")
    with pytest.raises(TableError, match=re.escape("row 2 (line 3), column wert: '1.5' is not a number written "
                                                   "1.234,5")):
        indicator_table(path, columns=columns, separator=";", decimal_comma=True)


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    path = tmp_path / "cp1252.csv"
    path.write_bytes("area_id,report_cycle,x\nMitte,2021,1\nS\u00fcd,2021,2\n".encode("cp1252"))
    with pytest.raises(TableError, match=r"line 3: not valid utf-8-sig text; give the file's encoding"):
        read_table(path)
    assert read_table(path, encoding="cp1252")["area_id"].to_list() == ["Mitte", "Süd"]


def test_a_cell_that_is_not_a_number_names_file_row_line_and_column(tmp_path):
    path = write(tmp_path / "long.csv", "gebiet;jahr;indikator;wert\nA;2021;S1;1,5\nB;2021;S1;viel\n")
    columns = Columns(area="gebiet", cycle="jahr", indicator="indikator", value="wert")
    with pytest.raises(TableError, match=re.escape(f"{path}, row 2 (line 3), column wert: 'viel' is not a number")):
        indicator_table(path, columns=columns, separator=";", decimal_comma=True)
    # without --decimal-comma already "1,5" in row 1 fails, with a hint
    with pytest.raises(TableError, match=re.escape("row 1 (line 2), column wert: '1,5' is not a number (decimal "
                                                   "comma? use --decimal-comma)")):
        indicator_table(path, columns=columns, separator=";")


def test_a_missing_mapped_column_lists_the_file_columns(tmp_path):
    path = write(tmp_path / "wide.csv", "area_id,report_cycle,S1\nA,2021,1\n")
    with pytest.raises(TableError, match=re.escape(f"{path}: no column 'plr_id' (set it with --area-column); "
                                                   "the file has: area_id, report_cycle, S1")):
        indicator_table(path, columns=Columns(area="plr_id"))


def test_city_area_rows_become_city_values(tmp_path):
    path = write(tmp_path / "long.csv", "area_id,report_cycle,indicator_id,value\n"
                                        "A,2021,x,12\nB,2021,x,7\ncity,2021,x,10\nA,2021,y,1\ncity,2021,y,3\n")
    frame = indicator_table(path, columns=Columns(city_area="city"))
    assert sorted(frame["area_id"].unique().to_list()) == ["A", "B"]
    assert values_of(frame, "city_value") == {("A", "x"): 10.0, ("B", "x"): 10.0, ("A", "y"): 3.0}


def test_city_area_in_a_wide_table(tmp_path):
    path = write(tmp_path / "wide.csv", "area_id,report_cycle,x\nA,2021,12\nSTADT,2021,10\n")
    frame = indicator_table(path, columns=Columns(city_area="STADT"))
    assert values_of(frame) == {("A", "x"): 12.0}
    assert values_of(frame, "city_value") == {("A", "x"): 10.0}


# --- command line --------------------------------------------------------------------------------------------

def test_cli_classifies_a_wide_csv(tmp_path, capsys):
    indicators = list(mss_values("A"))
    lines = ["area_id,report_cycle,population," + ",".join(indicators)]
    lines += [f"{area},2021,1000," + ",".join(str(mss_values(area)[i]) for i in indicators) for area in MSS_S]
    source, output = write(tmp_path / "mss.csv", "\n".join(lines) + "\n"), tmp_path / "out" / "classes.csv"
    assert main(["classify", "--method", "berlin_mss", "--input", str(source), "--output", str(output)]) == 0
    result = pl.read_csv(output)
    assert {"status_index", "status_class", "dynamics_index", "dynamics_class", "combined_class"} <= set(result.columns)
    assert approx_column(result, "status_index") == MSS_STATUS_INDEX
    assert column(result, "status_class") == {"A": 1, "B": 2, "C": 2, "D": 2, "E": 2, "F": 3, "G": 4}
    assert f"written: {output}" in capsys.readouterr().out


def test_cli_with_a_method_file_decimal_comma_and_city_area(tmp_path):
    method_file = write(tmp_path / "m.yml", "id: mine\ndimensions:\n  - id: lage\n    standardisation: "
                                            "deviation_from_city\n    indicators: [x]\n    classes:\n"
                                            "      - {code: 1, label: gut, up_to: 0}\n"
                                            "      - {code: 2, label: schlecht}\n")
    source = write(tmp_path / "in.csv", "gebiet;jahr;x\nA;2021;1.001,5\nB;2021;999,5\nSTADT;2021;1.000,0\n")
    output = tmp_path / "out.parquet"
    assert main(["classify", "--method", str(method_file), "--input", str(source), "--output", str(output),
                 "--area-column", "gebiet", "--cycle-column", "jahr", "--separator", ";", "--decimal-comma",
                 "--city-area", "STADT"]) == 0
    # A: 1001.5 - 1000 = +1.5 -> schlecht; B: 999.5 - 1000 = -0.5 -> gut
    result = pl.read_parquet(output)
    assert approx_column(result, "lage_index") == {"A": 1.5, "B": -0.5}
    assert column(result, "lage_class") == {"A": 2, "B": 1}


def test_cli_bad_method_exits_2_with_the_error_on_stderr(tmp_path, capsys):
    source = write(tmp_path / "in.csv", "area_id,report_cycle,x\nA,2021,1\n")
    output = tmp_path / "out.csv"
    assert main(["classify", "--method", "no_such_method", "--input", str(source), "--output", str(output)]) == 2
    assert "social-monitor classify: error: unknown method 'no_such_method'" in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize("rows, message", [
    ("A,2021,1,\nB,2021,2,5\nC,2021,4,6\n", "1 missing value(s) for included areas, e.g. 2021 A y"),
    ("A,2021,1,5\nB,2021,2,5\nC,2021,4,5\n", "indicator y has zero variance in cycle 2021"),
    ("A,2021,1,4\nB,2021,inf,5\nC,2021,4,6\n", "row 2 (line 3), column x: 'inf' is not a finite number"),
])
def test_cli_data_errors_exit_1_and_method_errors_2(tmp_path, capsys, rows, message):
    """The README's rule: a wrong option (the method file is one) exits 2, a table that cannot be classified 1."""
    good = write(tmp_path / "m.yml", "id: mine\ndimensions:\n  - id: lage\n    indicators: [x, y]\n    classes:\n"
                                     "      - {code: 1, label: gut, up_to: 0}\n      - {code: 2, label: schlecht}\n")
    source = write(tmp_path / "in.csv", "area_id,report_cycle,x,y\n" + rows)
    output = tmp_path / "out.csv"
    assert main(["classify", "--method", str(good), "--input", str(source), "--output", str(output)]) == 1
    assert message in capsys.readouterr().err
    bad = write(tmp_path / "bad.yml", good.read_text(encoding="utf-8").replace("up_to: 0", "up_to: .nan"))
    assert main(["classify", "--method", str(bad), "--input", str(source), "--output", str(output)]) == 2
    assert f"error: {bad} (mine): dimension 1 (lage): classes[0]: up_to must be a finite number, not nan" in \
        capsys.readouterr().err
    assert not output.exists()


def test_the_result_does_not_depend_on_the_row_order_of_the_input():
    """Bit for bit: reruns of the pipeline must give identical published tables (DuckDB returns rows in no
    fixed order, and float sums depend on their order)."""
    mss = load_method("berlin_mss")
    rows = mss_table()
    first = classify(rows, mss)
    for seed in range(3):
        again = classify(rows.sample(fraction=1.0, shuffle=True, seed=seed), mss)
        assert all(getattr(first, name).equals(getattr(again, name)) for name in ("areas", "dimensions", "indicators"))


def test_an_indicator_with_a_last_cycle_is_left_out_after_it():
    """`last_cycle`: the indicator is part of the method up to that cycle only (Berlin's S2 until 2016); after it
    the index is that of the other indicators, although the table still holds the values."""
    values = {"a": {"x": 1.0, "y": 9.0}, "b": {"x": 2.0, "y": 1.0}, "c": {"x": 3.0, "y": 5.0}}
    frame = table(long_rows(2016, values), long_rows(2018, values))
    both = method(dimension(["x", "y"], standardisation="z_score", combine="sum"))
    until = method(dimension(["x", {"id": "y", "last_cycle": 2016}], standardisation="z_score", combine="sum"))
    only_x = method(dimension(["x"], standardisation="z_score", combine="sum"))
    index = {}
    for name, chosen in (("both", both), ("until", until), ("only_x", only_x)):
        result = classify(frame, chosen).dimensions
        for cycle in (2016, 2018):
            index[f"{name} {cycle}"] = column(result, "index_value", cycle)
    assert index["until 2016"] == index["both 2016"]
    assert index["until 2018"] == index["only_x 2018"] != index["both 2018"]
    with pytest.raises(MethodError, match="last_cycle is before first_cycle"):
        method(dimension([{"id": "y", "first_cycle": 2018, "last_cycle": 2016}]))
