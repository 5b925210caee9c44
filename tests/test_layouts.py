"""Delivery layouts (config/<city>/deliveries.yml): a city with other headers, codes and formats delivers the
same rows; the loader of the layout file names file and key; write-manifest refuses a file off its layout."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.assets.raw import raw_assets
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.deliveries import find_manifest, reference_date_of, write_manifest
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.layouts import LAYOUT_FILE, LayoutError, load_layouts
from social_monitor.sample_city.generator import generate
from social_monitor.settings import CITIES_DIR, PROJECT_DIR, copy_city

DORTMUND = CITIES_DIR / "dortmund"
CYCLE = 2018
EXAMPLES = int(os.environ.get("SOCIAL_MONITOR_HYPOTHESIS_EXAMPLES", "15"))

# Another city's layouts of the same sources: every header and every code spelled otherwise, and other
# formats (the register in Parquet, SGB II as comma-separated text, tabs, pipes, latin-1, ISO and compact dates).
OTHER = {
    "register": {
        "sender": "Einwohnerregister", "file_name": "EWR-{reference_date}.parquet", "format": "parquet",
        "encoding": "utf-8", "separator": None, "date_format": "%Y-%m-%d",
        "headers": {"unterbezirk_id": "PLR", "person_key": "ID", "sex": "GESCHL", "birth_date": "GEBDAT",
                    "nationality_group": "STAAT", "residence_type": "WHG", "move_in_date": "EINZUG",
                    "street_key": "STRSCHL", "house_number": "HNR", "household_key": "HHID",
                    "birth_country": "GEBLAND", "second_nationality_group": "STAAT2"},
        "codes": {"sex": {1: "m", 2: "w", 3: "d", 4: "o"},
                  "nationality_group": {"D": "deutsch", "EU": "EU", "NEU": "Drittstaat", "X": "staatenlos/ungeklärt"},
                  "residence_type": {"HW": "H", "NW": "N", "Haupt": "H"},
                  "second_nationality_group": {"D2": "deutsch", "EU2": "EU", "NEU2": "Drittstaat",
                                               "X2": "staatenlos/ungeklärt"},
                  "birth_country": {"I": "Inland", "A": "Ausland", "?": "unbekannt"}},
    },
    "sgb2": {
        "file_name": "sgb2-bestand-{reference_date}.txt", "format": "csv", "encoding": "utf-8", "separator": ",",
        "date_format": "%d.%m.%Y",
        "headers": {"person_key": "PERS", "household_key": "BG", "age": "ALTER_JAHRE", "unterbezirk_id": "RAUM"},
        "codes": {},
    },
    "sgb12": {
        "file_name": "hlu_gsi_{reference_date}.tsv", "format": "csv", "encoding": "latin-1", "separator": "\t",
        "date_format": "%Y%m%d",
        "headers": {"person_key": "Kennung", "birth_date": "Geb.Datum", "benefit_kind": "Kapitel",
                    "unterbezirk_id": "Gebiet"},
        "codes": {"benefit_kind": {"3": "HLU", "4": "GSI"}},
    },
    "asylblg": {
        "file_name": "asyl_{reference_date}.csv", "format": "csv", "encoding": "cp1252", "separator": "|",
        "date_format": "%d/%m/%Y",
        "headers": {"person_key": "Kennung", "birth_date": "Geburtstag", "sex": "Geschlecht_Code",
                    "unterbezirk_id": "Gebiet"},
        "codes": {"sex": {"M": "m", "F": "w", "D": "d", "X": "o"}},
    },
    "unemployment": {
        "file_name": "ALO-{reference_date}.parquet", "format": "parquet", "encoding": "utf-8", "separator": None,
        "date_format": "%Y%m%d",
        "headers": {"unterbezirk_id": "RAUM", "legal_basis": "RK", "age": "ALTER", "person_key": "PERS",
                    "sex": "G", "unemployed_since": "ALO_SEIT"},
        "codes": {"legal_basis": {"II": "SGB II", "III": "SGB III"}, "sex": {"M": "m", "F": "w", "D": "d", "X": "o"}},
    },
}


def other_city(root: Path, layouts: dict = OTHER) -> Path:
    city = copy_city(DORTMUND, root / "othercity")
    (city / LAYOUT_FILE).write_text(yaml.safe_dump(layouts, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return city


def test_the_dortmund_layout_is_todays_delivery():
    """The headers and codes that were written in the code, as the offices deliver them today."""
    layouts = load_layouts(DORTMUND)
    assert layouts["register"].file_name(dt.date(2018, 12, 31)) == "bevoelkerung_2018-12-31.csv"
    assert (layouts["register"].encoding, layouts["register"].separator) == ("cp1252", ";")
    assert list(layouts["register"].file_columns) == [
        "Personen_ID", "Geburtsdatum", "Geschlecht", "Staatsangehörigkeit", "Wohnungsstatus", "Zuzugsdatum",
        "Unterbezirk", "Straßenschlüssel", "Hausnummer", "Staatsangehörigkeit_2", "Geburtsland", "Haushalts_ID"]
    assert layouts["sgb2"].file_format == "parquet" and layouts["sgb2"].separator is None
    assert layouts["sgb12"].codes == {"benefit_kind": {"HLU": "HLU", "GSI": "GSI"}}
    assert layouts["asylblg"].manifest_name(dt.date(2007, 12, 31)) == "asylblg_2007-12-31.manifest.json"


def _materialize_raw(root: Path, city: Path, landing: Path) -> Path:
    warehouse = root / "warehouse.duckdb"
    assets = [a for a in raw_assets if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(
        assets, partition_key=str(CYCLE), instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(path=str(warehouse)),
                   "pipeline": PipelineSettings(landing_dir=str(landing), published_path=str(root / "pub.duckdb"),
                                                config_path=str(city / "city.yml"))})
    assert result.success
    return warehouse


def _raw_rows(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {source: con.execute(f"select * exclude (source_file, source_line) from raw.{source} "
                                    "order by all").fetchall() for source in OTHER}


def test_another_citys_layout_generates_and_loads_the_same_rows_through_dagster(tmp_path):
    """The same seed written in Dortmund's layout and in another city's (other names, codes, formats) lands
    (lineage aside: a Parquet row is numbered from 1, a text line from 2 after the header)
    the same accepted rows, canonical, through real Dagster materialisations into real DuckDB files."""
    city = other_city(tmp_path)
    layouts = load_layouts(city)
    generate(tmp_path / "dortmund" / "landing", cycles=(CYCLE,), scale=0.05, city_dir=CITIES_DIR / "dortmund")
    generate(tmp_path / "other" / "landing", cycles=(CYCLE,), scale=0.05, city_dir=city, layouts=layouts)
    written = sorted(p.name for p in (tmp_path / "other" / "landing").iterdir())
    assert "EWR-2018-12-31.parquet" in written and "hlu_gsi_2018-12-31.manifest.json" in written
    raw = (tmp_path / "other" / "landing" / "hlu_gsi_2018-12-31.tsv").read_bytes()
    header, first = raw.split(b"\n")[:2]
    assert header == b"Kennung\tGeb.Datum\tKapitel\tGebiet"  # the file's own order, not the contract's
    assert first.split(b"\t")[2] in (b"3", b"4") and len(first.split(b"\t")[1]) == 8  # its codes, its dates

    ours = _raw_rows(_materialize_raw(tmp_path / "dortmund", DORTMUND, tmp_path / "dortmund" / "landing"))
    theirs = _raw_rows(_materialize_raw(tmp_path / "other", city, tmp_path / "other" / "landing"))
    for source in OTHER:
        assert len(ours[source]) > 100
        assert theirs[source] == ours[source], source


# --- generated layouts, loaded by the real loader -------------------------------------------------------

ROWS = [  # canonical SGB XII rows: (person key, birth date, benefit kind, Unterbezirk)
    ("K-1", dt.date(1950, 3, 1), "GSI", "001"),
    ("K-2", dt.date(1981, 12, 31), "HLU", "011"),
    ("K-3", dt.date(2001, 1, 9), "HLU", "962"),
]
NAMES = st.text(st.characters(codec="latin-1", exclude_characters="\"\t|;,\r\n\x85\xa0",
                              categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=20).map(str.strip) \
    .filter(lambda name: name and name.isprintable() and not name.startswith("\ufeff"))
DATE_FORMATS = st.permutations(["%d", "%m", "%Y"]).flatmap(
    lambda parts: st.sampled_from([".", "-", "/", ""]).map(lambda sep: sep.join(parts)))


@st.composite
def sgb12_layouts(draw) -> dict:
    columns = ["person_key", "birth_date", "benefit_kind", "unterbezirk_id"]
    headers = draw(st.lists(NAMES, min_size=4, max_size=4, unique=True))
    order = draw(st.permutations(columns))
    codes = draw(st.lists(NAMES, min_size=2, max_size=2, unique=True))
    return {
        "file_name": "sgb12_{reference_date}.csv", "format": "csv",
        "encoding": draw(st.sampled_from(["utf-8", "latin-1", "cp1252"])),
        "separator": draw(st.sampled_from([";", ",", "\t", "|"])),
        "date_format": draw(DATE_FORMATS),
        "headers": {column: headers[columns.index(column)] for column in order},
        "codes": {"benefit_kind": {codes[0]: "HLU", codes[1]: "GSI"}},
    }


def _write_sgb12(folder: Path, layout, rows=ROWS, *, odd_code: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ref = reference_date_of(CYCLE)
    path = folder / layout.file_name(ref)
    city_code = layout.city_code_of("benefit_kind")
    values = {"person_key": lambda r: r[0], "birth_date": lambda r: r[1].strftime(layout.date_format),
              "benefit_kind": lambda r: odd_code if odd_code and r[0] == "K-2" else city_code[r[2]],
              "unterbezirk_id": lambda r: r[3]}
    lines = [layout.separator.join(layout.headers.values())]
    lines += [layout.separator.join(values[column](row) for column in layout.headers) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(layout.encoding))
    write_manifest(path, layout, ref, len(rows))


def _loaded(folder: Path, layouts) -> list[tuple]:
    with duckdb.connect() as con:
        load_delivery(con, find_manifest(folder, layouts["sgb12"], CYCLE))
        return con.execute("select * exclude (source_file) from raw.sgb12 order by all").fetchall()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(layout=sgb12_layouts(), odd=NAMES)
def test_a_generated_layout_loads_the_same_rows_and_names_its_own_headers(tmp_path_factory, layout, odd):
    root = tmp_path_factory.mktemp("layout")
    expected = _loaded(_write_dortmund(root / "dortmund"), load_layouts(DORTMUND))
    city = other_city(root, {**yaml.safe_load((DORTMUND / LAYOUT_FILE).read_text(encoding="utf-8")),
                             "sgb12": layout})
    layouts = load_layouts(city)
    _write_sgb12(root / "other", layouts["sgb12"])
    assert _loaded(root / "other", layouts) == expected

    # a value that is no code of the city's layout is a bad value, named by the city's header; it is shown
    # only if it is a published code
    if odd in layout["codes"]["benefit_kind"]:
        return
    _write_sgb12(root / "odd", layouts["sgb12"], odd_code=odd)
    with pytest.raises(DeliveryError) as refused, duckdb.connect() as con:
        load_delivery(con, find_manifest(root / "odd", layouts["sgb12"], CYCLE))
    [problem] = refused.value.problems
    assert (problem.line, problem.column) == (3, layout["headers"]["benefit_kind"])
    published = set(layouts["sgb12"].city_codes)
    assert problem.check.startswith("isin(")
    if odd.strip() not in published:
        assert repr(odd.strip()) not in problem.reason


def test_a_contract_code_the_city_does_not_use_is_named_and_an_unknown_one_is_not(tmp_path):
    layouts = load_layouts(other_city(tmp_path))
    rows = [{"Kennung": f"K-{i}", "Geburtstag": "01/02/1990", "Geschlecht_Code": code, "Gebiet": "001"}
            for i, code in enumerate(["F", "w", "Q7", "HLU"])]
    path = tmp_path / "landing" / layouts["asylblg"].file_name(reference_date_of(CYCLE))
    path.parent.mkdir()
    text = "|".join(rows[0]) + "\n" + "".join("|".join(row.values()) + "\n" for row in rows)
    path.write_bytes(text.encode("cp1252"))
    write_manifest(path, layouts["asylblg"], reference_date_of(CYCLE), len(rows))
    with duckdb.connect() as con, pytest.raises(DeliveryError) as refused:
        load_delivery(con, find_manifest(path.parent, layouts["asylblg"], CYCLE))
    reasons = {(p.line, p.column): p.reason for p in refused.value.problems}
    check = "isin(['M', 'F', 'D', 'X'])"
    assert reasons == {
        (3, "Geschlecht_Code"): f"value 'w' fails {check}: it is the contract's code, not one of the city's layout",
        (4, "Geschlecht_Code"): f"value fails {check}",
        (5, "Geschlecht_Code"): f"value 'HLU' fails {check}: it is a code of Kapitel (fields shifted?)",
    }


def _write_dortmund(folder: Path) -> Path:
    _write_sgb12(folder, load_layouts(DORTMUND)["sgb12"])
    return folder


# --- the layout file's own errors ---------------------------------------------------------------------

BROKEN = [
    (lambda d: d.pop("sgb2"), "sgb2: no layout"),
    (lambda d: d.update(wohngeld={}), "wohngeld: unknown source"),
    (lambda d: d["register"].update(format="xlsx"), "register.format: 'xlsx' is not one of csv, parquet"),
    (lambda d: d["register"].update(file_name="bevoelkerung.csv"), "register.file_name: must contain"),
    (lambda d: d["register"].update(file_name="../x_{reference_date}.csv"), "register.file_name: must be a bare"),
    (lambda d: d["register"].update(encoding="utf-16"), "register.encoding: 'utf-16' does not write"),
    (lambda d: d["register"].update(encoding="rot13"), "register.encoding: 'rot13' is not a character"),
    (lambda d: d["register"].update(separator=";;"), "register.separator: ';;' is not one character"),
    (lambda d: d["sgb2"].update(separator=";"), "sgb2.separator: a parquet file has no separator"),
    (lambda d: d["register"].update(date_format="%d.%m.%y"), "register.date_format: '%d.%m.%y' must use"),
    (lambda d: d["register"]["headers"].pop("sex"), "register.headers.sex: missing"),
    (lambda d: d["register"]["headers"].update(gender="G"), "register.headers.gender: not a column"),
    (lambda d: d["register"]["headers"].update(sex="Personen_ID"), "register.headers.sex: the header 'Personen_ID'"),
    (lambda d: d["sgb12"]["codes"]["benefit_kind"].update(HLU="XYZ"), "sgb12.codes.benefit_kind.HLU: maps to 'XYZ'"),
    (lambda d: d["sgb12"]["codes"]["benefit_kind"].pop("GSI"), "sgb12.codes.benefit_kind: no city code for the "
                                                                "contract's code(s) GSI"),
    (lambda d: d["sgb12"]["codes"].pop("benefit_kind"), "sgb12.codes.benefit_kind: missing"),
    (lambda d: d["sgb12"]["codes"].update(unterbezirk_id={}), "sgb12.codes.unterbezirk_id: not a coded column"),
    (lambda d: d["asylblg"].update(file_name="sgb12_{reference_date}.csv"), "sgb12.file_name: its manifests would "
                                                                             "also match asylblg.file_name"),
    (lambda d: d["asylblg"].update(colour="red"), "asylblg.colour: unknown key"),
]


@pytest.mark.parametrize(("change", "message"), BROKEN, ids=[m for _, m in BROKEN])
def test_a_broken_layout_file_is_refused_naming_file_and_key(tmp_path, change, message):
    layouts = yaml.safe_load((DORTMUND / LAYOUT_FILE).read_text(encoding="utf-8"))
    change(layouts)
    city = other_city(tmp_path, layouts)
    with pytest.raises(LayoutError) as refused:
        load_layouts(city)
    assert str(refused.value).startswith(f"{city / LAYOUT_FILE}: {message}"), str(refused.value)


def test_a_city_without_layouts_or_with_bad_yaml_is_named(tmp_path):
    city = copy_city(DORTMUND, tmp_path / "c")
    (city / LAYOUT_FILE).unlink()
    with pytest.raises(LayoutError, match="has no delivery layouts"):
        load_layouts(city)
    (city / LAYOUT_FILE).write_text("register: [\n", encoding="utf-8")
    with pytest.raises(LayoutError, match=r"deliveries\.yml: not valid YAML at line"):
        load_layouts(city)


# --- write-manifest ------------------------------------------------------------------------------------


def _write_manifest_cli(city: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOCIAL_MONITOR_CITY": str(city)}
    return subprocess.run([str(Path(sys.executable).parent / "social-monitor"), "write-manifest", *args],
                          cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)


def test_write_manifest_writes_the_manifest_the_loader_reads_and_refuses_a_file_off_its_layout(tmp_path):
    city = other_city(tmp_path)
    layouts = load_layouts(city)
    _write_sgb12(tmp_path / "landing", layouts["sgb12"])
    data = tmp_path / "landing" / "hlu_gsi_2018-12-31.tsv"
    written = json.loads((tmp_path / "landing" / "hlu_gsi_2018-12-31.manifest.json").read_text(encoding="utf-8"))
    (tmp_path / "landing" / "hlu_gsi_2018-12-31.manifest.json").unlink()

    done = _write_manifest_cli(city, str(data), "--source", "sgb12", "--date", "2018-12-31")
    assert done.returncode == 0, done.stderr
    made = json.loads((tmp_path / "landing" / "hlu_gsi_2018-12-31.manifest.json").read_text(encoding="utf-8"))
    assert made == written  # rows, checksum, format details of the layout
    assert (made["rows"], made["encoding"], made["delimiter"]) == (3, "latin-1", "\t")
    with duckdb.connect() as con:
        assert load_delivery(con, find_manifest(tmp_path / "landing", layouts["sgb12"], CYCLE)).rows_accepted == 3

    # a Dortmund header in this city's file: named; the data of the file never printed
    text = data.read_bytes().decode("latin-1").replace("Kapitel", "Leistungsart")
    data.write_bytes(text.encode("latin-1"))
    (tmp_path / "landing" / "hlu_gsi_2018-12-31.manifest.json").unlink()
    done = _write_manifest_cli(city, str(data), "--source", "sgb12", "--date", "2018-12-31")
    assert done.returncode == 1
    assert "missing column(s) Kapitel" in done.stderr and "unexpected column(s)" not in done.stderr or \
        "Leistungsart" in done.stderr
    assert "K-1" not in done.stderr + done.stdout and "1950" not in done.stderr + done.stdout
    assert not (tmp_path / "landing" / "hlu_gsi_2018-12-31.manifest.json").exists()

    # a file without a header line: its first line is data, counted, never shown
    data.write_bytes("\n".join(text.splitlines()[1:]).encode("latin-1") + b"\n")
    done = _write_manifest_cli(city, str(data), "--source", "sgb12", "--date", "2018-12-31")
    assert done.returncode == 1 and "missing column(s)" in done.stderr
    assert "K-1" not in done.stderr and "19500301" not in done.stderr

    # the file of another source or date: refused by its name
    shutil.copy(data, tmp_path / "landing" / "asyl_2018-12-31.csv")
    done = _write_manifest_cli(city, str(tmp_path / "landing" / "asyl_2018-12-31.csv"), "--source", "sgb12",
                               "--date", "2018-12-31")
    assert done.returncode == 1 and "names the file of 2018-12-31 hlu_gsi_2018-12-31.tsv" in done.stderr
    done = _write_manifest_cli(city, str(data), "--source", "sgb12", "--date", "2018-06-30")
    assert done.returncode == 2 and "31 December" in done.stderr
