"""The data dictionary of the published file, its Parquet/Excel exports per cycle and its dbt docs.

The published file here is small and hand-made, but real: every table is validated against its contract in
schemas/published.py and written into a DuckDB file, with suppressed cells in every table that has them.
The workbook is read back from its XML (no Excel reader is installed): sheet names, headers, cell types, fills.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from schemas.published import DOCUMENTED_TABLES, PUBLISHED_TABLES, data_dictionary
from social_monitor import cli
from social_monitor.exports import SUPPRESSED_FILL, SUPPRESSED_MARK, export, has_cycle_column, workbook_name
from social_monitor.published_docs import SOURCES_PATH, render_sources
from social_monitor.settings import DBT_PROJECT_DIR, dbt_vars_json
from tests.waiting import CEILING_SECONDS

CYCLES = (2018, 2025)
CITY = "Musterstadt (Beispiel)"
PUBLISHED_AT = dt.datetime(2026, 3, 1, 12, 30)


def _rows() -> dict[str, list[tuple]]:
    """Rows of every published table for two cycles: city, two Sozialräume, one Unterbezirk."""
    areas = [("city", "0", "Musterstadt", "published"), ("sozialraum", "S1", "Nordstadt", "published"),
             ("sozialraum", "S2", "Südstadt", "assumed"), ("unterbezirk", "011", "Hafen", "published")]
    area_levels = [("city", "Gesamtstadt", "Gesamtstadt", None, None, False, 0),
                   ("sozialraum", "Sozialraum", "Sozialräume", None, "unterbezirk", False, 1),
                   ("unterbezirk", "Unterbezirk", "Unterbezirke", "city", None, True, 2)]
    hierarchy = [("sozialraum", "S1", "city", "0", True, None, None),
                 ("sozialraum", "S2", "city", "0", True, None, None),
                 ("unterbezirk", "011", "sozialraum", "S1", True, None, None),
                 ("unterbezirk", "011", "city", "0", True, None, None)]
    indicators = [("residents", 10, "Einwohnerinnen und Einwohner", "Einwohner am 31.12.", "residents", None,
                   "Personen", 1, "neutral", "Demografie", None),
                  ("transfer_rate", 20, "Transferleistungsquote", "Empfänger je 100 Einwohner", "recipients",
                   "residents", "%", 100, "higher_is_worse", "Erwerbstätigkeit und Transferleistungen",
                   None)]
    cells, action, action_ind, quartiere, classes, dims, class_ind = [], [], [], [], [], [], []
    for cycle in CYCLES:
        for level, area, residents, recipients in (("city", "0", 10_000, 1_500), ("sozialraum", "S1", 6_000, 1_200),
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
            dims.append(("mss_style", cycle, area, "status", 1, 0.5, 0.7, 1 if worse else 3, "hoch", None, None,
                         "no_previous", 0.2, False, None))
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


# --- reading an .xlsx back from its XML ------------------------------------------------------------------------

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
      "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
      "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}


def read_xlsx(path: Path) -> dict[str, dict[str, tuple[str, object, str | None]]]:
    """sheet name -> cell reference (A1) -> (type: s/n/b, value, fill colour RGB or None), in sheet order."""
    with zipfile.ZipFile(path) as archive:
        xml = {name: ElementTree.fromstring(archive.read(name)) for name in archive.namelist()
               if name.endswith(".xml") or name.endswith(".rels")}
    strings = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t"))
               for si in xml["xl/sharedStrings.xml"].findall("m:si", NS)]
    styles = xml["xl/styles.xml"]
    fills = []
    for fill in styles.find("m:fills", NS).findall("m:fill", NS):
        colour = fill.find("m:patternFill/m:fgColor", NS)
        fills.append(colour.get("rgb") if colour is not None else None)
    cell_fills = [fills[int(xf.get("fillId", 0))] for xf in styles.find("m:cellXfs", NS).findall("m:xf", NS)]
    targets = {rel.get("Id"): rel.get("Target") for rel in xml["xl/_rels/workbook.xml.rels"].findall("rel:Relationship",
                                                                                                      NS)}
    sheets = {}
    for sheet in xml["xl/workbook.xml"].find("m:sheets", NS).findall("m:sheet", NS):
        target = targets[sheet.get(f"{{{NS['r']}}}id")]
        cells = {}
        for cell in xml[f"xl/{target}"].iter(f"{{{NS['m']}}}c"):
            kind, raw = cell.get("t", "n"), cell.findtext("m:v", default=None, namespaces=NS)
            if raw is None:
                continue
            value = strings[int(raw)] if kind == "s" else (raw == "1" if kind == "b" else float(raw))
            cells[cell.get("r")] = (kind, value, cell_fills[int(cell.get("s", 0))])
        sheets[sheet.get("name")] = cells
    return sheets


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


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


def test_workbook_has_german_sheets_headers_numbers_and_marked_suppressed_cells(published, tmp_path):
    path, counts = published
    export(path, tmp_path, cycles=[2025])
    assert not (tmp_path / "2018").exists()
    sheets = read_xlsx(tmp_path / "2025" / workbook_name(CITY, 2025))
    dictionary = data_dictionary()
    assert list(sheets) == ["Hinweise", *(doc.sheet_de for doc in dictionary.values())]

    notes = " ".join(str(v) for _, v, _ in sheets["Hinweise"].values())
    assert "01.03.2026 12:30" in notes and "statistischen Geheimhaltung" in notes and "marts.duckdb" in notes
    assert all(doc.sheet_de in notes for doc in dictionary.values())

    cells = sheets["Indikatoren je Gebiet"]
    doc = dictionary["area_indicators"]
    header = [cells[f"{column_letter(i)}1"][1] for i in range(len(doc.columns))]
    assert header == [c.header_de for c in doc.columns]
    assert header[:2] == ["Berichtsjahr", "Gebietsebene"]
    col = {c.name: column_letter(i) for i, c in enumerate(doc.columns)}
    by_area = {cells[f"{col['area_id']}{row}"][1]: row for row in range(2, 10)
               if cells[f"{col['indicator_id']}{row}"][1] == "transfer_rate"}
    grey = "FF" + SUPPRESSED_FILL.lstrip("#").upper()
    # S2 (small count) and 011 (secondary): numerator, denominator and value read "gesperrt" on grey
    for area in ("S2", "011"):
        for name in ("numerator", "denominator", "value"):
            assert cells[f"{col[name]}{by_area[area]}"] == ("s", SUPPRESSED_MARK, grey), (area, name)
    assert cells[f"{col['suppression']}{by_area['S2']}"][1] == "Fallzahl von 1 bis 2"
    # published cells stay numbers, without the grey fill; the city value of a suppressed row too
    assert cells[f"{col['value']}{by_area['S1']}"] == ("n", 20.0, None)
    assert cells[f"{col['numerator']}{by_area['S1']}"] == ("n", 1200.0, None)
    assert cells[f"{col['city_value']}{by_area['S2']}"][:2] == ("n", 15.0)
    assert cells[f"{col['report_cycle']}{by_area['S1']}"][:2] == ("n", 2025.0)
    # a suppressed cell has no rank: marked like its value; S1 is first of the one ranked Sozialraum
    for name in ("value_rank", "ranked_areas", "value_decile"):
        assert cells[f"{col[name]}{by_area['S2']}"] == ("s", SUPPRESSED_MARK, grey), name
    assert cells[f"{col['value_rank']}{by_area['S1']}"][:2] == ("n", 1.0)
    assert cells[f"{col['ranked_areas']}{by_area['S1']}"][:2] == ("n", 1.0)
    assert f"{col['value_decile']}{by_area['S1']}" not in cells  # fewer than 10 areas: empty, not marked
    # a count with no denominator (residents) is an empty cell, not a marked one
    residents_rows = [row for row in range(2, 10) if cells[f"{col['indicator_id']}{row}"][1] == "residents"]
    assert all(f"{col['denominator']}{row}" not in cells for row in residents_rows)

    suppressed_count = next(row for row in residents_rows if cells[f"{col['area_id']}{row}"][1] == "S2")
    assert cells[f"{col['numerator']}{suppressed_count}"] == ("s", SUPPRESSED_MARK, grey)
    assert cells[f"{col['value']}{suppressed_count}"] == ("s", SUPPRESSED_MARK, grey)
    # the population of a classified area whose residents are suppressed
    classes = sheets["Gebietsklassifikation"]
    ccol = {c.name: column_letter(i) for i, c in enumerate(dictionary["area_classifications"].columns)}
    populations = {classes[f"{ccol['area_id']}{row}"][1]: classes[f"{ccol['population']}{row}"] for row in (2, 3)}
    assert populations == {"S1": ("n", 5000.0, None), "S2": ("s", SUPPRESSED_MARK, grey)}
    # is_suppressed flags mark the emptied cells in the other tables
    quartiere = sheets["Aktionsräume Quartiere"]
    qcol = {c.name: column_letter(i) for i, c in enumerate(dictionary["action_area_quartiere"].columns)}
    assert quartiere[f"{qcol['value']}2"] == ("s", SUPPRESSED_MARK, grey)
    assert quartiere[f"{qcol['is_suppressed']}2"][:2] == ("b", True)
    inputs = sheets["Klassifikation Indikatoren"]
    icol = {c.name: column_letter(i) for i, c in enumerate(dictionary["area_classification_indicators"].columns)}
    marked = {name for name in icol if inputs.get(f"{icol[name]}3", (None, None, None))[1] == SUPPRESSED_MARK}
    assert marked == {"value", "standardised", "contribution"}
    assert inputs[f"{icol['value']}2"] == ("n", 20.0, None)
    # every table sheet has all its rows of the cycle
    for table, doc in dictionary.items():
        rows = {int(re.sub(r"[A-Z]+", "", ref)) for ref in sheets[doc.sheet_de]}
        expected = counts[table] // len(CYCLES) if has_cycle_column(table) else counts[table]
        assert max(rows) - 1 == expected, table


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
