"""Non-finite numbers never classify (issue 10, part 7), proven on generated tables and method files.

One NaN used to make every z-score of its cycle NaN, and polars orders NaN above every number, so every area
of the cycle landed in the worst class (Berlin: 436 of 436 areas flagged in 2017). The properties:

- tables: NaN / inf / -inf / Infinity … in value, city value or population cells, in CSV (decimal point and
  decimal comma), in Parquet (NaN and infinite floats), long and wide: ``social-monitor classify`` exits 1 with
  one line naming the file, the row and line of one of those cells and its column. Under
  ``missing_values: exclude_area`` the outcome is the outcome with those cells left empty, bit for bit.
- the engine on a data frame (the pipeline's path): the same, naming cycle, area and indicator.
- method files: a non-finite, string or boolean value in any numeric key, a string or number in a boolean
  key, class codes that do not rise: exit 2 with one line naming the method file and the key.

Examples per test: the ``social-monitor`` hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import re
import tempfile
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from social_monitor.classification import DataError, MethodError, classify, parse_method
from social_monitor.classification.warehouse import classify_in_warehouse, classify_methods_in_warehouse
from social_monitor.cli import main

INDICATORS = ("x", "y")
CITY_AREA = "STADT"
# text a supplier's tool writes for NaN and the infinities; "1e999" is too large for a float and reads as inf
NON_FINITE_TEXT = ["NaN", "nan", "NAN", "-nan", "inf", "-inf", "+inf", "Inf", "INF", "Infinity", "-Infinity",
                   "+Infinity", "infinity"]
NON_FINITE_FLOATS = [math.nan, math.inf, -math.inf]

# a method that reads every number column: z-scores of x and y, the deviation of x from the city value, and
# a minimum population
METHOD = {
    "id": "generated",
    "min_population": 100,
    "missing_values": "error",
    "dimensions": [
        {"id": "lage", "standardisation": "z_score", "restandardise": True, "sensitivity_margin": 0.1,
         "indicators": [{"id": "x", "weight": 2}, {"id": "y", "direction": "higher_is_better"}],
         "classes": [{"code": 1, "label": "gut", "below": -0.5}, {"code": 2, "label": "mittel", "up_to": 0.5},
                     {"code": 3, "label": "schlecht"}]},
        {"id": "stadt", "standardisation": "deviation_from_city", "sensitivity_margin": 0.5,
         "indicators": [{"id": "x"}, {"id": "x_change", "change_of": "x", "change_years": 1}],
         "classes": [{"code": 1, "label": "besser", "up_to": 0}, {"code": 2, "label": "schlechter"}]},
    ],
    "flag": {"label": "im Fokus", "any_of": [{"lage": [3]}, {"lage": [2], "stadt": [2]}]},
}


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def run_cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["classify", "--quiet", *argv])
    return code, err.getvalue()


# --- generated tables ----------------------------------------------------------------------------------------

@st.composite
def base_tables(draw) -> pl.DataFrame:
    """A long table of finite numbers: 2 cycles, 4-7 areas, x and y, population and the city values."""
    areas = [f"A{i}" for i in range(draw(st.integers(4, 7)))]
    rows = []
    for cycle in (2020, 2021):
        city = {i: draw(st.integers(0, 400)) / 4 for i in INDICATORS}
        values = {i: draw(st.lists(st.integers(0, 400), min_size=len(areas), max_size=len(areas), unique=True))
                  for i in INDICATORS}
        for position, area in enumerate(areas):
            population = draw(st.sampled_from([1200.0, 8000.0, 250.0, 50.0]))  # 50: under min_population
            for indicator in INDICATORS:
                rows.append({"report_cycle": cycle, "area_id": area, "indicator_id": indicator,
                             "value": values[indicator][position] / 4, "city_value": city[indicator],
                             "population": population})
    return pl.DataFrame(rows, schema={"report_cycle": pl.Int32, "area_id": pl.Utf8, "indicator_id": pl.Utf8,
                                      "value": pl.Float64, "city_value": pl.Float64, "population": pl.Float64})


def wide_frame(long: pl.DataFrame) -> pl.DataFrame:
    """One row per cycle and area, x and y as columns; the city values as rows of area STADT."""
    areas = long.pivot(on="indicator_id", index=["area_id", "report_cycle", "population"], values="value")
    city = long.group_by("report_cycle", "indicator_id").agg(pl.col("city_value").first()).pivot(
        on="indicator_id", index="report_cycle", values="city_value").with_columns(
        pl.lit(CITY_AREA).alias("area_id"), pl.lit(None, dtype=pl.Float64).alias("population"))
    return pl.concat([areas, city.select(areas.columns)], how="vertical").sort("report_cycle", "area_id")


def number_columns(layout: str) -> list[str]:
    return ["value", "city_value", "population"] if layout == "long" else [*INDICATORS, "population"]


FILE_TYPES = ["csv", "csv_decimal_comma", "parquet"]
LAYOUTS = ["long", "wide"]


@st.composite
def hostile_deliveries(draw, file_type: str, layout: str) -> dict:
    """A table in ``layout`` for a ``file_type`` file, with non-finite numbers in 1-3 random number cells."""
    long = draw(base_tables())
    frame = long if layout == "long" else wide_frame(long)
    cells = [(row, column) for column in number_columns(layout) for row in range(frame.height)
             if frame[column][row] is not None]
    chosen = draw(st.lists(st.sampled_from(cells), min_size=1, max_size=3, unique=True))
    forms = st.sampled_from(NON_FINITE_FLOATS) if file_type == "parquet" else st.sampled_from(
        NON_FINITE_TEXT + (["1e999"] if file_type == "csv" else []))
    return {"layout": layout, "file_type": file_type, "frame": frame,
            "cells": {cell: draw(forms) for cell in chosen},
            "padding": draw(st.sampled_from(["", " "]))}


def write_delivery(delivery: dict, folder: Path, blank: bool = False) -> tuple[Path, list[str]]:
    """The delivery as a file, the hostile cells written (or left empty); the options to read it."""
    frame, file_type = delivery["frame"], delivery["file_type"]
    options = ["--layout", delivery["layout"]]
    if delivery["layout"] == "wide":
        options += ["--city-area", CITY_AREA]
    if file_type == "parquet":
        columns = {c: frame[c].to_list() for c in frame.columns}
        for (row, column), value in delivery["cells"].items():
            columns[column][row] = None if blank else value
        path = folder / "delivery.parquet"
        pl.DataFrame(columns, schema=frame.schema).write_parquet(path)
        return path, options
    comma = file_type == "csv_decimal_comma"
    separator = ";" if comma else ","

    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            written = f"{value:g}"
            return written.replace(".", ",") if comma else written
        return str(value)

    rows = [[text(v) for v in row] for row in frame.iter_rows()]
    for (row, column), value in delivery["cells"].items():
        rows[row][frame.columns.index(column)] = "" if blank else f"{delivery['padding']}{value}"
    path = folder / "delivery.csv"
    path.write_text("\n".join(separator.join(r) for r in [frame.columns, *rows]) + "\n", encoding="utf-8")
    return path, options + (["--separator", ";", "--decimal-comma"] if comma else [])


def method_file(folder: Path, missing_values: str) -> Path:
    path = folder / "method.yml"
    path.write_text(yaml.safe_dump({**METHOD, "missing_values": missing_values}, sort_keys=False), encoding="utf-8")
    return path


def outcome(delivery: dict, missing_values: str, blank: bool = False) -> tuple[int, str, pl.DataFrame | None]:
    """Exit code, the error line (file path replaced by FILE) and the result of one classify run."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source, options = write_delivery(delivery, folder, blank=blank)
        output = folder / "classes.parquet"
        code, err = run_cli("--method", str(method_file(folder, missing_values)), "--input", str(source),
                            "--output", str(output), *options)
        result = pl.read_parquet(output) if output.exists() else None
        return code, err.replace(str(source), "FILE").replace(str(folder), "DIR"), result


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("file_type", FILE_TYPES)
@given(data=st.data())
def test_a_non_finite_cell_is_refused_with_its_file_line_and_column(file_type, layout, data):
    delivery = data.draw(hostile_deliveries(file_type, layout))
    code, err, result = outcome(delivery, "error")
    line = one_line(err)
    assert code == 1 and result is None, line
    assert line.startswith("social-monitor classify: error: FILE, row "), line
    named = re.search(r"row (\d+)(?: \(line (\d+)\))?, column (\w+): ", line)
    assert named, line
    row, file_line, column = int(named[1]), named[2], named[3]
    assert (row - 1, column) in delivery["cells"], (line, delivery["cells"])  # one of the cells we spoiled
    if delivery["file_type"] == "parquet":
        assert file_line is None
    else:
        assert int(file_line) == row + 1  # the header is line 1
    assert "is not a finite number" in line and "missing_values: exclude_area" in line


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("file_type", FILE_TYPES)
@given(data=st.data())
def test_under_exclude_area_a_non_finite_cell_is_a_missing_cell(file_type, layout, data):
    delivery = data.draw(hostile_deliveries(file_type, layout))
    code, err, result = outcome(delivery, "exclude_area")
    blank_code, blank_err, blank_result = outcome(delivery, "exclude_area", blank=True)
    assert (code, err) == (blank_code, blank_err)
    event("classified" if result is not None else "refused")
    if result is None:
        assert code == 1, err  # the same refusal as with the cells left empty (e.g. a cycle left without areas)
        return
    assert code == 0 and result.equals(blank_result)
    for column in ("lage_index", "stadt_index"):
        assert result[column].is_finite().fill_null(True).all()


# --- the engine on a data frame (the pipeline's path) ---------------------------------------------------------

@st.composite
def hostile_frames(draw) -> tuple[pl.DataFrame, dict]:
    frame = draw(base_tables())
    cells = draw(st.lists(st.tuples(st.integers(0, frame.height - 1), st.sampled_from(
        ["value", "city_value", "population"])), min_size=1, max_size=3, unique=True))
    return frame, {cell: draw(st.sampled_from(NON_FINITE_FLOATS)) for cell in cells}


def spoil(frame: pl.DataFrame, cells: dict, blank: bool = False) -> pl.DataFrame:
    columns = {c: frame[c].to_list() for c in frame.columns}
    for (row, column), value in cells.items():
        columns[column][row] = None if blank else value
    return pl.DataFrame(columns, schema=frame.schema)


def engine_outcome(frame: pl.DataFrame, missing_values: str):
    try:
        return classify(frame, parse_method({**METHOD, "missing_values": missing_values}))
    except DataError as error:
        return str(error)


@given(hostile_frames())
def test_the_engine_refuses_non_finite_numbers_naming_cycle_area_and_indicator(case):
    frame, cells = case
    error = engine_outcome(spoil(frame, cells), "error")
    assert isinstance(error, str), "a table with NaN or inf was classified"
    named = re.search(r"column (\w+) are not finite numbers \(NaN or infinite\), e\.g\. cycle (\d+), area (\w+), "
                      r"indicator (\w+)", error)
    assert named, error
    spoiled = {(frame["report_cycle"][r], frame["area_id"][r], frame["indicator_id"][r], c) for r, c in cells}
    assert (int(named[2]), named[3], named[4], named[1]) in spoiled, error


@given(hostile_frames())
def test_under_exclude_area_the_engine_reads_non_finite_numbers_as_missing(case):
    frame, cells = case
    spoiled = engine_outcome(spoil(frame, cells), "exclude_area")
    blank = engine_outcome(spoil(frame, cells, blank=True), "exclude_area")
    event("refused" if isinstance(blank, str) else "classified")
    if isinstance(blank, str):
        assert spoiled == blank
        return
    for name in ("areas", "dimensions", "indicators"):
        assert getattr(spoiled, name).equals(getattr(blank, name)), name
    assert [n for n in spoiled.notes if not n.startswith("non-finite numbers")] == list(blank.notes)
    assert any(n.startswith("non-finite numbers (NaN or infinite) read as missing") for n in spoiled.notes)


def test_a_nan_in_the_marts_fails_the_pipeline_classification(tmp_path):
    """The Dagster asset's path, on a real DuckDB file: a NaN in marts.area_indicators is refused by a method
    with missing_values: error, and the action-area rule (exclude_area) leaves that area out with its reason."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.indicators as select * from (values ('x', 'X-Quote', '%', 'higher_is_worse'), "
                "('y', 'Y-Quote', '%', 'higher_is_worse'), ('residents', 'Einwohner', '', 'neutral')) "
                "t(indicator_id, name_de, unit, direction)")
    con.execute("create table marts.areas as select 'sozialraum' as area_level, 'S' || i as area_id, "
                "'Sozialraum ' || i as area_name from range(1, 6) r(i) "
                "union all select 'unterbezirk', 'U' || i, 'Quartier ' || i from range(1, 4) r(i)")
    con.execute("create table marts.area_levels as select * from (values ('sozialraum', false), "
                "('unterbezirk', true)) t(area_level, is_base)")
    con.execute("create table marts.area_hierarchy as select 'unterbezirk' as area_level, 'U' || i as area_id, "
                "'sozialraum' as container_level, 'S5' as container_id, true as is_direct from range(1, 4) r(i)")
    con.execute("""create table marts.area_indicators as
        select 2021 as report_cycle, 'sozialraum' as area_level, 'S' || i as area_id, indicator_id,
               (case when indicator_id = 'residents' then 1000 else i * 1.5 end)::double as value,
               4.0::double as city_value
        from range(1, 6) r(i), (values ('x'), ('y'), ('residents')) t(indicator_id)
        union all  -- three Quartiere of S5 with their x: 9, NaN and 2 against the city's 4
        select 2021, 'unterbezirk', 'U' || i, 'x', [9.0, 'nan'::double, 2.0][i], 4.0 from range(1, 4) r(i)""")
    con.execute("update marts.area_indicators set value = 'nan'::double where area_id = 'S3' and indicator_id = 'x'")
    from social_monitor.classification import ActionAreaRule, load_method

    rule = ActionAreaRule(indicators=("x", "y"), min_indicators_worse=2, quartier_indicator=None)
    strict = load_method({**METHOD, "area_level": "sozialraum", "dimensions": METHOD["dimensions"][:1],
                          "flag": {"label": "im Fokus", "any_of": [{"lage": [3]}]}})
    with pytest.raises(DataError, match=r"column value are not finite numbers \(NaN or infinite\), e\.g\. cycle "
                                        r"2021, area S3, indicator x"):
        classify_methods_in_warehouse(con, rule, [strict])
    results = classify_methods_in_warehouse(con, rule, [])
    areas = results[0].areas
    assert areas.filter(pl.col("area_id") == "S3")["exclusion_reason"].to_list() == ["fehlender Wert: x"]
    # S4 and S5 (6.0 and 7.5, 6.0 and 7.5) are worse than the city's 4.0 on both; S1, S2 are not
    assert sorted(areas.filter("is_flagged")["area_id"].to_list()) == ["S4", "S5"]
    assert any("read as missing" in note for note in results[0].notes)
    # the Quartiere still worse than the city inside an action area: a NaN is missing, not worse
    quartier_rule = ActionAreaRule(indicators=("x", "y"), min_indicators_worse=2, quartier_indicator="x")
    quartiere = classify_in_warehouse(con, quartier_rule).quartiere
    assert quartiere.select("base_area_id", "value", "is_worse_than_city").rows() == [
        ("U1", 9.0, True), ("U2", None, False), ("U3", 2.0, False)]
    con.close()


# --- generated method files ----------------------------------------------------------------------------------

NUMBER_KEYS = [  # (path in METHOD, key named in the error)
    (("min_population",), "min_population"),
    (("dimensions", 0, "sensitivity_margin"), "sensitivity_margin"),
    (("dimensions", 1, "sensitivity_margin"), "sensitivity_margin"),
    (("dimensions", 0, "indicators", 0, "weight"), "weight"),
    (("dimensions", 0, "indicators", 1, "weight"), "weight"),
    (("dimensions", 0, "classes", 0, "below"), "below"),
    (("dimensions", 0, "classes", 1, "up_to"), "up_to"),
    (("dimensions", 1, "classes", 0, "up_to"), "up_to"),
    (("dimensions", 1, "indicators", 1, "change_years"), "change_years"),
]
BOOLEAN_KEYS = [(("dimensions", 0, "restandardise"), "restandardise"),
                (("dimensions", 1, "restandardise"), "restandardise")]
NOT_A_NUMBER = [math.nan, math.inf, -math.inf, "NaN", ".nan", "inf", "1", "0.5", "", "false", True, False,
                [1], {"a": 1}]
NOT_A_BOOLEAN = ["false", "true", "False", "no", "yes", "0", "1", 0, 1, 0.0, math.nan, "", None]


def set_path(raw: dict, path: tuple, value: object) -> dict:
    raw = copy.deepcopy(raw)
    node = raw
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return raw


@st.composite
def hostile_methods(draw, kind: str) -> tuple[dict, str]:
    if kind == "number":
        (path, key), value = draw(st.sampled_from(NUMBER_KEYS)), draw(st.sampled_from(NOT_A_NUMBER))
        if key == "change_years":
            value = draw(st.sampled_from([*NOT_A_NUMBER, 1.5, 3.0, 0, -2]))
        return set_path(METHOD, path, value), key
    if kind == "boolean":
        (path, key), value = draw(st.sampled_from(BOOLEAN_KEYS)), draw(st.sampled_from(NOT_A_BOOLEAN))
        return set_path(METHOD, path, value), key
    # class codes: a code that is not an integer, or codes out of order
    dimension = draw(st.integers(0, 1))
    codes = [c["code"] for c in METHOD["dimensions"][dimension]["classes"]]
    position = draw(st.integers(0, len(codes) - 1))
    if draw(st.booleans()):
        codes[position] = draw(st.sampled_from([True, 1.0, "1", math.nan, None]))
    else:  # one code repeated, or two swapped: either way they no longer rise
        other = (position + draw(st.integers(1, len(codes) - 1))) % len(codes)
        if draw(st.booleans()):
            codes[position], codes[other] = codes[other], codes[position]
        else:
            codes[position] = codes[other]
    raw = copy.deepcopy(METHOD)
    for spec, code in zip(raw["dimensions"][dimension]["classes"], codes, strict=True):
        spec["code"] = code
    return raw, "code"


@pytest.mark.parametrize("kind", ["number", "boolean", "codes"])
@given(data=st.data())
def test_a_method_file_with_a_bad_number_boolean_or_code_is_refused_naming_file_and_key(kind, data):
    raw, key = data.draw(hostile_methods(kind))
    event(key)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hostile.yml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        table = Path(tmp) / "table.csv"
        table.write_text("area_id,report_cycle,population,x,y\nA,2021,500,1,2\nB,2021,500,2,1\n", encoding="utf-8")
        code, err = run_cli("--method", str(path), "--input", str(table), "--output", str(Path(tmp) / "o.csv"))
        line = one_line(err)
        assert code == 2, line
        assert f"error: {path} (generated)" in line and key in line.split(str(path))[1], line
        assert not (Path(tmp) / "o.csv").exists()
    with pytest.raises(MethodError):
        parse_method(raw)


def test_the_string_false_is_not_read_as_true():
    raw = set_path(METHOD, ("dimensions", 0, "restandardise"), "false")
    with pytest.raises(MethodError, match=r"dimension 1 \(lage\): restandardise must be true or false \(a YAML "
                                          r"boolean, without quotes\), not 'false'"):
        parse_method(raw)
    parsed = parse_method(set_path(METHOD, ("dimensions", 0, "restandardise"), False))
    assert parsed.dimensions[0].restandardise is False


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "viel"])
def test_a_non_finite_min_population_option_is_a_usage_error(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["classify", "--method", "berlin_mss", "--input", str(tmp_path / "in.csv"), "--output",
              str(tmp_path / "o.csv"), "--min-population", value])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        f"social-monitor classify: error: argument --min-population: '{value}' is not a")


@pytest.mark.parametrize("value", [2.5, "2", True, math.nan, math.inf, None])
def test_the_action_area_rule_needs_a_whole_number_of_indicators(value):
    from social_monitor.classification import ActionAreaRule, RuleError

    with pytest.raises(RuleError, match=re.escape(f"min_indicators_worse must be a whole number, not {value!r}")):
        ActionAreaRule.from_config({"indicators": ["x", "y", "z"], "min_indicators_worse": value})


@pytest.mark.parametrize("standardisation, message", [
    ("z_score", "the mean or SD of indicator x in cycle 2021 is not a finite number"),
    ("deviation_from_city", "the index of 2 area(s) is not a finite number, e.g. cycle 2021, area A"),
])
def test_finite_values_too_large_to_compute_with_are_refused(standardisation, message):
    """Finite inputs can still overflow (1e308 + 1e308 is inf): no index is computed from that."""
    frame = pl.DataFrame({"report_cycle": [2021] * 3, "area_id": ["A", "B", "C"], "indicator_id": ["x"] * 3,
                          "value": [1e308, 1.7e308, -1e308], "city_value": [-1e308] * 3},
                         schema_overrides={"report_cycle": pl.Int32})
    chosen = parse_method({"id": "big", "dimensions": [{
        "id": "lage", "standardisation": standardisation, "indicators": ["x"],
        "classes": [{"code": 1, "label": "gut", "up_to": 0}, {"code": 2, "label": "schlecht"}]}]})
    with pytest.raises(DataError, match=re.escape(message)):
        classify(frame, chosen)
