"""The data dictionary of the published file, its Parquet/Excel exports per cycle and its dbt docs.

The published file here is small and hand-made, but real: every table is validated against its contract in
schemas/published.py and written into a DuckDB file, with suppressed cells in every table that has them.
The workbook is read back as an analyst would: with pandas (typed columns) and openpyxl (formats, fills); the
Parquet files with pyarrow (the column descriptions in their metadata).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas._libs.parsers import STR_NA_VALUES

from schemas.published import CHANGES, DOCUMENTED_TABLES, LEVEL_COLUMNS, PUBLISHED_TABLES, data_dictionary
from social_monitor import cli
from social_monitor.exports import CODE_LABELS, SUPPRESSED_FILL, export, has_cycle_column, workbook_name, write_workbook
from social_monitor.labels import CHANGE_DE, SUPPRESSION_DE
from social_monitor.published_docs import SOURCES_PATH, render_sources
from social_monitor.settings import CITIES_DIR, DBT_PROJECT_DIR, CityConfig, dbt_vars_json
from tests.conftest import EXAMPLES_ENV
from tests.waiting import CEILING_SECONDS

CYCLES = (2018, 2025)
CITY = "Musterstadt (Beispiel)"
PUBLISHED_AT = dt.datetime(2026, 3, 1, 12, 30)


def _rows() -> dict[str, list[tuple]]:
    """Rows of every published table for two cycles: city, two Sozialräume, one Unterbezirk."""
    areas = [("city", "city", "Gesamtstadt", "published"), ("sozialraum", "S1", "Nordstadt", "published"),
             ("sozialraum", "S2", "Südstadt", "assumed"), ("unterbezirk", "011", "Hafen", "published")]
    area_levels = [("city", "Gesamtstadt", "Gesamtstadt", None, None, False, 0),
                   ("sozialraum", "Sozialraum", "Sozialräume", None, "unterbezirk", False, 1),
                   ("unterbezirk", "Unterbezirk", "Unterbezirke", "city", None, True, 2)]
    hierarchy = [("sozialraum", "S1", "city", "city", True, None, None),
                 ("sozialraum", "S2", "city", "city", True, None, None),
                 ("unterbezirk", "011", "sozialraum", "S1", True, None, None),
                 ("unterbezirk", "011", "city", "city", True, None, None)]
    indicators = [("residents", 10, "Einwohnerinnen und Einwohner", "Einwohner am 31.12.", "residents", None,
                   "Personen", 1, "neutral", "Demografie", None),
                  ("transfer_rate", 20, "Transferleistungsquote", "Empfänger je 100 Einwohner", "recipients",
                   "residents", "%", 100, "higher_is_worse", "Erwerbstätigkeit und Transferleistungen",
                   None)]
    cells, action, action_ind, quartiere, classes, dims, class_ind = [], [], [], [], [], [], []
    for cycle in CYCLES:
        for level, area, residents, recipients in (("city", "city", 10_000, 1_500), ("sozialraum", "S1", 6_000, 1_200),
                                                   ("sozialraum", "S2", 4_000, 300), ("unterbezirk", "011", 900, 200)):
            hidden = cycle == 2025 and area == "S2"  # 2025: the residents of S2 secondary, a count (no denominator)
            cells.append((cycle, level, area, "residents", None if hidden else residents, None,
                          None if hidden else float(residents), 10_000.0, "secondary" if hidden else None, 2018))
            hidden = cycle == 2025 and area in ("S2", "011")  # 2025: S2 small count, 011 secondary
            reason = {"S2": "small_count", "011": "secondary"}.get(area) if hidden else None
            cells.append((cycle, level, area, "transfer_rate", None if hidden else recipients,
                          None if hidden else residents, None if hidden else 100 * recipients / residents, 15.0,
                          reason, 2018))
        for area, name, worse, hidden in (("S1", "Nordstadt", True, False), ("S2", "Südstadt", False, cycle == 2025)):
            action.append((cycle, "sozialraum", area, name, worse, "first_cycle" if cycle == 2018 else
                           ("kept" if worse else "not_action_area"), int(worse), 1,
                           "Transferleistungsquote" if worse else None, "Begründung" if worse else None))
            action_ind.append((cycle, area, "transfer_rate", None if hidden else (20.0 if worse else 7.5), 15.0,
                               worse, hidden))
            classes.append(("mss_style", cycle, area, name, None if hidden else 5000.0, True, None,
                            "1+" if worse else "3−", worse, "first_cycle" if cycle == 2018 else "kept", False,
                            None))
            dims.append(("mss_style", cycle, area, "status", "Status-Index", 1, 0.5, 0.7, 1 if worse else 3, "hoch",
                         None, None, "no_previous", 0.2, False, None))
            class_ind.append(("mss_style", cycle, area, "status", "transfer_rate", "transfer_rate",
                              None if hidden else 20.0, 15.0, 14.0, 3.0, None if hidden else 2.0, 1.0,
                              None if hidden else 2.0, hidden))
        quartiere.append((cycle, "S1", "011", "Hafen", "transfer_rate", None if cycle == 2025 else 22.2, 15.0,
                          True, cycle == 2025))
    methods = [("mss_style", "MSS-Stil", "sozialraum", "Status-Index", "Berlin MSS", "status", "Aufmerksamkeit",
                300.0, "id: mss_style\n", None)]
    rows = {"areas": areas, "area_levels": area_levels, "area_hierarchy": hierarchy, "indicators": indicators,
            "area_indicators": [(*cell, *_rank(cell, cells)) for cell in cells],
            # one geography version: the harmonised series is the cells themselves, exact (without ranks)
            "area_indicators_harmonised": [(*cell, False, None) for cell in cells], "area_conversion": [],
            "action_areas": action,
            "action_area_indicators": action_ind, "action_area_quartiere": quartiere,
            "classification_methods": methods, "area_classifications": classes,
            "area_classification_dimensions": dims, "area_classification_indicators": class_ind}
    rows["publication"] = [(table, len(rows[table]), PUBLISHED_AT, ", ".join(map(str, CYCLES)), CITY)
                           for table in PUBLISHED_TABLES]
    rows["disclosure_audit"] = [(cycle, 2, 2, 0, 0, 0, 3, 3, 100) for cycle in CYCLES]
    return rows


def _rank(cell: tuple, cells: list[tuple]) -> tuple[int | None, int | None, None]:
    """(rank, ranked areas, decile) of a cell among the published values of its cycle, level and indicator; the
    decile stays empty (fewer than 10 areas), the city and a suppressed cell have no rank."""
    cycle, level, _area, indicator, _num, _den, value, _city, suppression, _version = cell
    if level == "city" or suppression is not None or value is None:
        return None, None, None
    others = [c[6] for c in cells if c[:2] == (cycle, level) and c[3] == indicator and c[8] is None
              and c[6] is not None]
    return 1 + sum(v > value for v in others), len(others), None


def write_published_file(path: Path) -> dict[str, int]:
    """A published file whose every table passes its contract; returns rows per table."""
    counts = {}
    with duckdb.connect(str(path)) as con:
        for table, rows in _rows().items():
            contract = DOCUMENTED_TABLES[table]
            schema = {name: column.dtype.type for name, column in contract.to_schema().columns.items()}
            # the rows above leave out area_key, which is always area_level:area_id
            given = {name: dtype for name, dtype in schema.items() if name != "area_key"}
            frame = pl.DataFrame(rows, schema=given, orient="row")
            if "area_key" in schema:
                frame = frame.with_columns(pl.concat_str("area_level", pl.lit(":"), "area_id").alias("area_key"))
            frame = contract.validate(frame.select(list(schema)))  # noqa: F841
            con.execute(f"create table {table} as select * from frame")
            counts[table] = len(rows)
    return counts


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("published") / "marts.duckdb"
    return path, write_published_file(path)


# --- the data dictionary ---------------------------------------------------------------------------------------

def test_every_published_table_and_column_has_german_header_and_description():
    dictionary = data_dictionary()
    assert list(dictionary) == [*PUBLISHED_TABLES, "publication", "disclosure_audit"]
    for table, doc in dictionary.items():
        assert doc.title_de and doc.description_de and doc.sheet_de, table
        assert [c.name for c in doc.columns] == list(DOCUMENTED_TABLES[table].to_schema().columns), table
        for column in doc.columns:
            assert column.header_de.strip() and column.description_de.strip(), f"{table}.{column.name}"
        headers = [c.header_de for c in doc.columns]
        assert len(set(headers)) == len(headers), f"{table}: two columns share a German header"
    sheets = [doc.sheet_de for doc in dictionary.values()]
    assert len(set(sheets)) == len(sheets) and all(len(s) <= 31 and not re.search(r"[\[\]:*?/\\]", s)
                                                   for s in sheets)


# --- exports ----------------------------------------------------------------------------------------------------

def test_one_parquet_per_table_per_cycle_with_the_published_rows(published, tmp_path):
    path, counts = published
    results = export(path, tmp_path / "exports")
    assert [r.report_cycle for r in results] == list(CYCLES)
    for table, rows in counts.items():
        per_cycle = [pl.read_parquet(tmp_path / "exports" / str(c) / f"{table}.parquet") for c in CYCLES]
        if has_cycle_column(table):
            assert sum(frame.height for frame in per_cycle) == rows, table
            for cycle, frame in zip(CYCLES, per_cycle, strict=True):
                assert frame["report_cycle"].unique().to_list() == [cycle], table
        else:
            assert [frame.height for frame in per_cycle] == [rows, rows], table
        assert per_cycle[0].columns == list(DOCUMENTED_TABLES[table].to_schema().columns), table
    # the Parquet files keep the published types and the suppression codes
    cells = pl.read_parquet(tmp_path / "exports" / "2025" / "area_indicators.parquet")
    assert cells.schema["numerator"] == pl.Int64 and cells.schema["report_cycle"] == pl.Int32
    assert sorted(cells["suppression"].drop_nulls().to_list()) == ["secondary", "secondary", "small_count"]
    listing = sorted(p.name for p in (tmp_path / "exports" / "2025").iterdir())
    assert listing == sorted([f"{t}.parquet" for t in counts] + ["Sozialmonitoring_Musterstadt_2025.xlsx"])
    assert [p.name for p in (tmp_path / "exports").iterdir() if p.name.startswith(".")] == []


def _workbook(published, tmp_path, cycle: int = 2025) -> Path:
    path, _ = published
    export(path, tmp_path, cycles=[cycle])
    return tmp_path / str(cycle) / workbook_name(CITY, cycle)


def test_workbook_reads_back_typed_with_pandas(published, tmp_path):
    _, counts = published
    sheets = pd.read_excel(_workbook(published, tmp_path), sheet_name=None)
    assert not (tmp_path / "2018").exists()
    dictionary = data_dictionary()
    assert list(sheets) == ["Hinweise", *(doc.sheet_de for doc in dictionary.values())]
    for table, doc in dictionary.items():
        frame = sheets[doc.sheet_de]
        # the first row holds the headers and nothing else (no legend beside them)
        assert not [c for c in frame.columns if str(c).startswith("Unnamed")], table
        assert len(frame) == (counts[table] // len(CYCLES) if has_cycle_column(table) else counts[table]), table
        headers = {c.name: c.header_de for c in doc.columns}
        assert set(headers.values()) <= set(frame.columns), table
        if frame.empty:  # area_conversion: no geography reform in the sample
            continue
        # a number column of the contract holds numbers only: pandas imports it with a numeric dtype
        for name, column in DOCUMENTED_TABLES[table].to_schema().columns.items():
            if column.dtype.type.is_numeric():
                series = frame[headers[name]]
                assert pd.api.types.is_numeric_dtype(series), (table, name, series.dtype)
            if column.dtype.type == pl.Boolean:
                assert set(frame[headers[name]].dropna()) <= {True, False}, (table, name)


def test_every_published_cell_reads_back_as_published(published, tmp_path):
    """Numbers, flags, times and texts (text columns read as text) come back as the published file holds them;
    the columns shown as labels are the next test's."""
    path, _ = published
    book = _workbook(published, tmp_path)
    with duckdb.connect(str(path), read_only=True) as con:
        for table, doc in data_dictionary().items():
            where = " where report_cycle = 2025" if has_cycle_column(table) else ""
            expected = con.execute(f"select * from {table}{where}").pl()
            text = {c.header_de: str for c in doc.columns if expected.schema[c.name] == pl.String}
            sheet = pd.read_excel(book, sheet_name=doc.sheet_de, dtype=text)
            for column in doc.columns:
                labelled = (table, column.name) in CODE_LABELS or (
                    column.name in LEVEL_COLUMNS and (table, column.name) != ("area_levels", "area_level"))
                if labelled:
                    continue
                got = [None if pd.isna(value) else value for value in sheet[column.header_de]]
                want = expected[column.name].to_list()
                # the whole city: its level id, area id and key are shown by its name (area_levels of the file)
                level = {"area_id": "area_level", "area_key": "area_level", "container_id": "container_level",
                         "area_level": "area_level"}.get(column.name)
                if level in expected.columns:
                    want = ["Gesamtstadt" if of == "city" else value
                            for of, value in zip(expected[level].to_list(), want, strict=True)]
                if expected.schema[column.name] == pl.Float64:
                    assert [v is None for v in got] == [v is None for v in want], (table, column.name)
                    assert [v for v in got if v is not None] == pytest.approx([v for v in want if v is not None]), \
                        (table, column.name)
                else:
                    assert got == want, (table, column.name)


def test_workbook_shows_names_german_labels_units_and_suppression_in_its_own_column(published, tmp_path):
    sheets = pd.read_excel(_workbook(published, tmp_path), sheet_name=None)
    cells = sheets["Indikatoren je Gebiet"]
    assert list(cells.columns) == [
        "Berichtsjahr", "Gebietsebene", "Gebietsnummer", "Gebietsname", "Gebietsschlüssel", "Indikator",
        "Bezeichnung des Indikators", "Zähler", "Nenner", "Wert", "Einheit", "Wert Gesamtstadt", "Geheimhaltung",
        "Gebietsstand", "Rang",
        "Gebiete im Rang", "Dezil"]
    assert cells["Zähler"].dtype.kind == "f" and cells["Berichtsjahr"].dtype.kind == "i"
    rows = {(r["Gebietsnummer"], r["Indikator"]): r for r in cells.to_dict("records")}
    nordstadt = rows["S1", "transfer_rate"]
    assert (nordstadt["Gebietsebene"], nordstadt["Gebietsname"], nordstadt["Bezeichnung des Indikators"],
            nordstadt["Einheit"]) == ("Sozialraum", "Nordstadt", "Transferleistungsquote", "%")
    assert (nordstadt["Zähler"], nordstadt["Nenner"], nordstadt["Wert"], nordstadt["Rang"]) == (1200, 6000, 20.0, 1)
    assert pd.isna(nordstadt["Geheimhaltung"])
    city = rows["Gesamtstadt", "residents"]
    assert (city["Gebietsebene"], city["Gebietsname"], city["Gebietsschlüssel"], city["Einheit"]) == (
        "Gesamtstadt", "Gesamtstadt", "Gesamtstadt", "Personen")
    assert rows["011", "transfer_rate"]["Gebietsname"] == "Hafen"
    # suppressed: the numbers empty, the reason in words in its own column, the city value still there
    for key, reason in ((("S2", "transfer_rate"), "Fallzahl von 1 bis 2"),
                        (("011", "transfer_rate"), "Sekundärsperrung"), (("S2", "residents"), "Sekundärsperrung")):
        assert rows[key]["Geheimhaltung"] == reason, key
        assert all(pd.isna(rows[key][c]) for c in ("Zähler", "Wert", "Rang", "Gebiete im Rang")), key
    assert rows["S2", "transfer_rate"]["Wert Gesamtstadt"] == 15.0

    def column(sheet: str, header: str) -> list:
        return sheets[sheet][header].tolist()

    # codes as German labels
    assert set(column("Aktionsräume", "Veränderung zum Vorbericht")) == {"bleibt Aktionsraum", "kein Aktionsraum"}
    assert column("Gebietsklassifikation", "Veränderung zum Vorbericht") == ["bleibt markiert", "bleibt markiert"]
    assert set(column("Klassifikation Dimensionen", "Klassenveränderung")) == {"kein Vorbericht"}
    assert column("Indikatoren", "Richtung") == ["ohne Wertung", "höherer Wert ungünstiger"]
    assert column("Gebiete", "Herkunft des Namens") == ["veröffentlicht", "veröffentlicht", "angenommen",
                                                         "veröffentlicht"]
    assert column("Gebiete", "Gebietsebene") == ["Gesamtstadt", "Sozialraum", "Sozialraum", "Unterbezirk"]
    # the level table: each level's id beside its name (the name as the other sheets show it), the city by name
    assert list(sheets["Gebietsebenen"].columns[:2]) == ["Kennung der Gebietsebene", "Gebietsebene"]
    assert column("Gebietsebenen", "Kennung der Gebietsebene") == ["Gesamtstadt", "sozialraum", "unterbezirk"]
    assert column("Gebietsebenen", "Gebietsebene") == ["Gesamtstadt", "Sozialraum", "Unterbezirk"]
    assert column("Gebietsebenen", "Zusammengefasste Ebene")[1] == "Unterbezirk"
    assert column("Gebietsebenen", "Übergeordnete Ebene")[2] == "Gesamtstadt"
    # no code of a contract's code list is left on a sheet (topic fields and target groups are German already)
    dictionary = data_dictionary()
    for table, contract in DOCUMENTED_TABLES.items():
        for name, schema_column in contract.to_schema().columns.items():
            codes = {c for check in schema_column.checks if check.name == "isin"
                     for c in check.statistics["allowed_values"]}
            if codes and name not in ("topic_field", "target_group"):
                header = next(c.header_de for c in dictionary[table].columns if c.name == name)
                assert not codes & set(sheets[dictionary[table].sheet_de][header]), (table, name)
    # names beside the keys on the other sheets
    hierarchy = sheets["Gebietszuordnung"]
    inside = hierarchy[(hierarchy["Gebietsnummer"] == "011") & (hierarchy["Ebene des umfassenden Gebiets"]
                                                                 == "Sozialraum")]
    assert inside[["Gebietsname", "Name des umfassenden Gebiets"]].values.tolist() == [["Hafen", "Nordstadt"]]
    assert column("Aktionsräume Indikatoren", "Gebietsname") == ["Nordstadt", "Südstadt"]
    assert column("Aktionsräume Indikatoren", "Bezeichnung des Indikators") == ["Transferleistungsquote"] * 2
    assert column("Aktionsräume Quartiere", "Gebietsname") == ["Nordstadt"]
    assert column("Aktionsräume Quartiere", "Gesperrt") == [True]
    classified = sheets["Gebietsklassifikation"]
    assert classified["Bezeichnung des Verfahrens"].tolist() == ["MSS-Stil", "MSS-Stil"]
    # the population of S2 is empty because its residents are suppressed: the reason beside it
    assert classified["Einwohner"].tolist()[0] == 5000 and pd.isna(classified["Einwohner"].tolist()[1])
    assert pd.isna(classified["Geheimhaltung Einwohner"].tolist()[0])
    assert classified["Geheimhaltung Einwohner"].tolist()[1] == "Sekundärsperrung"
    # a dimension's German name beside its key, on both sheets of the classification
    dimensions = sheets["Klassifikation Dimensionen"]
    at = list(dimensions.columns).index("Dimension")
    assert dimensions.columns[at + 1] == "Bezeichnung der Dimension"
    assert dimensions[["Dimension", "Bezeichnung der Dimension"]].values.tolist() == [["status", "Status-Index"]] * 2
    inputs = sheets["Klassifikation Indikatoren"]
    assert inputs["Bezeichnung der Dimension"].tolist() == ["Status-Index"] * 2
    assert inputs[["Gebietsname", "Bezeichnung des Quellindikators", "Einheit"]].values.tolist() == [
        ["Nordstadt", "Transferleistungsquote", "%"], ["Südstadt", "Transferleistungsquote", "%"]]
    assert inputs["Gesperrt"].tolist() == [False, True] and pd.isna(inputs["Beitrag"].tolist()[1])
    # a key is text with its leading zeros: pandas' type detection makes a number of a column of such keys (the
    # notes say so), read as text as the notes say it is the key as published
    assert column("Aktionsräume Quartiere", "Quartier") == [11]
    book = _workbook(published, tmp_path)
    assert pd.read_excel(book, sheet_name="Aktionsräume Quartiere", dtype={"Quartier": str})["Quartier"].tolist() \
        == ["011"]
    assert 'dtype={"Gebietsnummer": str}' in " ".join(map(str, sheets["Hinweise"].fillna("").values.ravel()))


def test_the_workbook_never_shows_the_city_by_its_id(published, tmp_path):
    """The whole city is `city` (level, area id) and `city:city` (area key) in the tables for programs; every cell
    of the workbook shows it by its German name instead."""
    book = openpyxl.load_workbook(_workbook(published, tmp_path))
    shown = [(sheet.title, cell.coordinate, cell.value) for sheet in book.worksheets for row in sheet.iter_rows()
             for cell in row if isinstance(cell.value, str)]
    assert not [cell for cell in shown if cell[2] == "city" or cell[2].startswith("city:")]
    assert sum(value == "Gesamtstadt" for _sheet, _cell, value in shown) > 10


def test_a_classification_dimension_without_a_german_name_is_refused(tmp_path):
    """The published tables and the workbook name each dimension in German: a configured method whose dimension
    has no name_de (neither its own nor from the method it extends) stops the pipeline, naming file, method and
    dimension; the shipped cities name every dimension."""
    for city in ("dortmund", "berlin"):
        for method in CityConfig.from_file(CITIES_DIR / city / "city.yml").methods():
            assert all(dimension.name_de != dimension.id for dimension in method.dimensions), (city, method.id)
    raw = yaml.safe_load((CITIES_DIR / "dortmund" / "city.yml").read_text(encoding="utf-8"))
    custom = next(m for m in raw["classification_methods"] if m.get("id") == "transfer_deviation")
    del custom["dimensions"][0]["name_de"]
    # a dimension of an extended method keeps the base's name; a new one without a name is refused as well
    extended = next(m for m in raw["classification_methods"] if m.get("extends") == "berlin_mss")
    extended["dimensions"].append({"id": "extra", "indicators": ["sgb2_rate"],
                                   "classes": custom["dimensions"][0]["classes"]})
    path = tmp_path / "city.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        CityConfig.from_file(path).methods()
    message = str(refused.value)
    assert str(path) in message and "name_de" in message
    assert "method mss_style, dimension extra" in message
    assert "method transfer_deviation, dimension deviation" in message
    assert "dimension status" not in message and "dimension dynamics" not in message


def test_header_comments_explain_in_german_and_name_the_column_last(published, tmp_path):
    book = openpyxl.load_workbook(_workbook(published, tmp_path))
    dictionary = data_dictionary()
    for table, doc in dictionary.items():
        sheet = book[doc.sheet_de]
        comments = {cell.value: cell.comment.text for cell in sheet[1]}
        for column in doc.columns:
            text = comments[column.header_de]
            assert not text.startswith(column.name), (table, column.name, text)
            assert text.endswith(f"(Spalte {column.name} in Parquet und DuckDB)"), (table, column.name, text)
            assert text.startswith(column.description_de.split(" ")[0]), (table, column.name, text)
    # a column only the workbook has names no Parquet column
    names = {cell.value: cell.comment.text for cell in book["Indikatoren je Gebiet"][1]}
    assert names["Einheit"].startswith("Einheit des Werts") and "Spalte" not in names["Einheit"]
    assert names["Gebietsnummer"].startswith("Schlüssel des Gebiets")


def test_workbook_formats_counts_whole_rates_with_unit_and_greys_suppressed_cells(published, tmp_path):
    book = openpyxl.load_workbook(_workbook(published, tmp_path))
    grey = "FF" + SUPPRESSED_FILL.lstrip("#").upper()
    for sheet in book.worksheets[1:]:
        header = [cell.value for cell in sheet[1]]
        assert sheet.max_column == len(header) and all(isinstance(h, str) and h for h in header), sheet.title
    sheet = book["Indikatoren je Gebiet"]
    col = {cell.value: cell.column - 1 for cell in sheet[1]}
    seen = set()
    for row in sheet.iter_rows(min_row=2):
        indicator, value, city = row[col["Indikator"]].value, row[col["Wert"]], row[col["Wert Gesamtstadt"]]
        for cell in (value, city):
            if cell.value is None:
                continue
            if indicator == "residents":  # a count: a whole number
                assert cell.number_format == "#,##0" and float(cell.value).is_integer(), cell.coordinate
            else:  # a rate: its unit shown with the number, the cell a number
                assert cell.number_format == '#,##0.0" %"' and isinstance(cell.value, (int, float)), cell.coordinate
            seen.add(indicator)
        for name in ("Zähler", "Nenner"):
            if row[col[name]].value is not None:
                assert row[col[name]].number_format == "#,##0"
        suppressed = row[col["Geheimhaltung"]].value is not None
        assert (value.value is None) == suppressed
        assert (value.fill.fgColor.rgb == grey) == suppressed, value.coordinate
        assert (row[col["Rang"]].fill.fgColor.rgb == grey) == (suppressed and row[col["Gebietsebene"]].value
                                                              != "Gesamtstadt"), value.coordinate
    assert seen == {"residents", "transfer_rate"}
    notes = " ".join(str(cell.value) for row in book["Hinweise"].iter_rows() for cell in row if cell.value)
    assert "01.03.2026 12:30" in notes and "statistischen Geheimhaltung" in notes and "marts.duckdb" in notes
    assert "Fallzahlen von 1 bis 2" in notes and all(doc.sheet_de in notes for doc in data_dictionary().values())


# names and units as an office may write them: umlauts, quotes, leading "=" or "@" (never a formula), digits
_NAMES = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
    lambda text: text.strip() == text and text not in STR_NA_VALUES)


@settings(max_examples=int(os.environ.get(EXAMPLES_ENV, "0") or 0) or 15)
@given(area=_NAMES, indicator=_NAMES, unit=_NAMES)
def test_any_name_and_unit_read_back_as_text_beside_typed_numbers(published, area, indicator, unit):
    path, _ = published
    with duckdb.connect(str(path), read_only=True) as con:
        frames = {table: con.execute(f"select * from {table}" + (" where report_cycle = 2025"
                                                                  if has_cycle_column(table) else "")).pl()
                  for table in DOCUMENTED_TABLES}
    frames["areas"] = frames["areas"].with_columns(
        area_name=pl.when(pl.col("area_id") == "S1").then(pl.lit(area)).otherwise("area_name"))
    frames["indicators"] = frames["indicators"].with_columns(
        name_de=pl.when(pl.col("indicator_id") == "transfer_rate").then(pl.lit(indicator)).otherwise("name_de"),
        unit=pl.when(pl.col("indicator_id") == "transfer_rate").then(pl.lit(unit)).otherwise("unit"))
    with tempfile.TemporaryDirectory() as folder:
        book = Path(folder) / "book.xlsx"
        write_workbook(book, frames, data_dictionary(), cycle=2025, city_name=CITY, published=path,
                       published_at=PUBLISHED_AT)
        cells = pd.read_excel(book, sheet_name="Indikatoren je Gebiet")
        nordstadt = cells[(cells["Gebietsnummer"] == "S1") & (cells["Indikator"] == "transfer_rate")].iloc[0]
        sheet = openpyxl.load_workbook(book)["Indikatoren je Gebiet"]
        value_format = sheet.cell(row=int(nordstadt.name) + 2, column=cells.columns.get_loc("Wert") + 1).number_format
    assert (nordstadt["Gebietsname"], nordstadt["Bezeichnung des Indikators"], nordstadt["Einheit"]) == (
        area, indicator, unit)
    assert nordstadt["Wert"] == 20.0
    assert all(pd.api.types.is_numeric_dtype(cells[c]) for c in ("Zähler", "Nenner", "Wert", "Wert Gesamtstadt"))
    # the unit in the cell's format, quoted (a quote in the unit left out): the cell stays the number 20; one
    # decimal as the report shows a rate, none for an index (a unit "Index ...")
    decimals = "" if unit.startswith("Index") else ".0"
    assert value_format == "#,##0" + decimals + '" ' + unit.replace('"', "") + '"'


def test_parquet_files_carry_the_column_descriptions_in_their_metadata(published, tmp_path):
    path, _ = published
    export(path, tmp_path, cycles=[2018])
    for table, doc in data_dictionary().items():
        schema = pq.read_schema(tmp_path / "2018" / f"{table}.parquet")
        assert schema.metadata[b"table"] == table.encode()
        assert schema.metadata[b"title"].decode() == doc.title_de
        assert schema.metadata[b"description"].decode() == doc.description_de
        assert schema.names == [column.name for column in doc.columns]
        for column in doc.columns:
            metadata = schema.field(column.name).metadata
            assert metadata[b"description"].decode() == column.description_de, (table, column.name)
            assert metadata[b"header_de"].decode() == column.header_de, (table, column.name)
    # the texts name the numbers of the disclosure rule, not its placeholders
    suppression = pq.read_schema(tmp_path / "2018" / "area_indicators.parquet").field("suppression")
    assert "small_count (Fallzahl von 1 bis 2)" in suppression.metadata[b"description"].decode()
    # and a reader that knows nothing of Arrow still finds the table's title in the file's key-value metadata
    with duckdb.connect() as con:
        keys = dict(con.execute("select decode(key), decode(value) from parquet_kv_metadata(?)",
                                [str(tmp_path / "2018" / "areas.parquet")]).fetchall())
    assert keys["title"] == "Gebiete"


def test_every_code_list_of_the_contracts_has_german_labels():
    labelled = {}
    for table, contract in DOCUMENTED_TABLES.items():
        for name, column in contract.to_schema().columns.items():
            for check in column.checks:
                if check.name == "isin" and name not in ("topic_field", "target_group"):  # German already
                    labelled[(table, name)] = set(check.statistics["allowed_values"])
    assert {key: set(labels) for key, labels in CODE_LABELS.items()} == labelled
    for labels in CODE_LABELS.values():
        assert all(text.strip() for text in labels.values()) and len(set(labels.values())) == len(labels)
    # the report's labels cover the action areas' changes and the flags' "not flagged"
    assert set(CHANGE_DE) == set(CHANGES) | {"not_flagged"}
    assert set(SUPPRESSION_DE) == set(labelled[("area_indicators", "suppression")])


def test_a_new_export_replaces_a_cycle_whole_and_a_failed_one_leaves_the_last(published, tmp_path, monkeypatch):
    path, _ = published
    export(path, tmp_path)
    folder = tmp_path / "2018"
    (folder / "stale.txt").write_text("from an older export")
    export(path, tmp_path, cycles=[2018])
    assert not (folder / "stale.txt").exists()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken_workbook(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("social_monitor.exports.write_workbook", broken_workbook)
    with pytest.raises(OSError, match="disk full"):
        export(path, tmp_path, cycles=[2018])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2018", "2025"]


def test_leftovers_of_a_killed_export_are_cleaned_up(published, tmp_path):
    path, _ = published
    export(path, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".2018.tmp-{dead}").mkdir()  # killed while writing
    (tmp_path / "2025").rename(tmp_path / f".2025.old-{dead}")  # killed between moving the old one aside and in
    export(path, tmp_path, cycles=[2018])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2018", "2025"]
    assert (tmp_path / "2025" / "areas.parquet").exists()


def test_cli_exports_and_refuses_an_unknown_cycle(published, tmp_path, capsys):
    path, _ = published
    assert cli.main(["export", "--published", str(path), "--out", str(tmp_path), "--cycles", "2025"]) == 0
    assert "2025:" in capsys.readouterr().out and (tmp_path / "2025" / "areas.parquet").exists()
    assert cli.main(["export", "--published", str(path), "--out", str(tmp_path), "--cycles", "1999"]) == 1
    assert "1999" in capsys.readouterr().err and not (tmp_path / "1999").exists()
    assert cli.main(["export", "--published", str(tmp_path / "missing.duckdb")]) == 1


def test_dagster_asset_exports_beside_the_published_file(published, tmp_path):
    from orchestration.assets.exports import published_exports
    from orchestration.resources import PipelineSettings

    source, counts = published
    target = tmp_path / "published" / "marts.duckdb"
    target.parent.mkdir()
    target.write_bytes(source.read_bytes())
    result = dg.materialize([published_exports], resources={"pipeline": PipelineSettings(
        landing_dir=str(tmp_path), published_path=str(target), config_path=str(tmp_path / "unused.yml"))})
    assert result.success
    metadata = result.asset_materializations_for_node("published__exports")[0].metadata
    assert metadata["files_written"].value == len(CYCLES) * (len(DOCUMENTED_TABLES) + 1)
    assert {key: m.value for key, m in metadata.items() if key.startswith("rows_")} == {
        f"rows_{table}": rows for table, rows in counts.items()}
    assert (target.parent / "exports" / "2018" / "Sozialmonitoring_Musterstadt_2018.xlsx").exists()


# --- dbt docs of the published file ----------------------------------------------------------------------------

def test_published_sources_yaml_is_generated_from_the_dictionary():
    assert SOURCES_PATH.read_text(encoding="utf-8") == render_sources(), "run `social-monitor published-docs`"
    source = yaml.safe_load(SOURCES_PATH.read_text(encoding="utf-8"))["sources"][0]
    dictionary = data_dictionary()
    assert [t["name"] for t in source["tables"]] == list(dictionary)
    for table in source["tables"]:
        assert [c["name"] for c in table["columns"]] == [c.name for c in dictionary[table["name"]].columns]
        assert all(c["description"] for c in table["columns"])


def test_default_dbt_target_never_touches_the_published_file():
    outputs = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8"))["social_monitor"]
    assert "attach" not in outputs["outputs"]["dev"] and outputs["target"] == "dev"
    attach = outputs["outputs"]["docs"]["attach"]
    assert [(a["alias"], a["read_only"]) for a in attach] == [("published", True)]


def test_dbt_docs_generate_catalogues_the_published_tables_in_german(published, tmp_path):
    path, _ = published
    env = {**os.environ, "SOCIAL_MONITOR_PUBLISHED": str(path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "docs", "generate", "--target", "docs", "--profiles-dir", ".",
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"), "--vars", dbt_vars_json()],
        cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=CEILING_SECONDS)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    dictionary = data_dictionary()
    for table, doc in dictionary.items():
        key = f"source.social_monitor.published.{table}"
        assert list(catalog["sources"][key]["columns"]) == [c.name for c in doc.columns], table
        assert doc.title_de in manifest["sources"][key]["description"]
        for column in doc.columns:
            assert column.header_de in manifest["sources"][key]["columns"][column.name]["description"]
    assert catalog["sources"]["source.social_monitor.published.area_indicators"]["columns"]["value"]["type"] == \
        "DOUBLE"
    # the published file is only read
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from publication").fetchone()[0] == len(PUBLISHED_TABLES)
