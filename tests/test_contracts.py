"""Each raw contract (schemas/raw.py) on a good and on bad deliveries, through the real loader and DuckDB."""

from __future__ import annotations

import duckdb
import pytest

from social_monitor.deliveries import find_manifest, reference_date_of, write_manifest
from social_monitor.ingest import DeliveryError, load_delivery
from tests.deliveries import LAYOUTS, person, write_delivery

CYCLE = 2018

GOOD_ROWS = {
    "register": [person("p1", "01.02.1980", "001"), person("p2", "03.04.2012", "261", nationality="EU"),
                 person("p3", "05.06.1940", "341", residence="N", moved="01.01.2000")],
    "sgb2": [{"Personen_ID": "p2", "BG_Nummer": "bg1", "Alter": 6, "Unterbezirk": "261"}],
    "sgb12": [{"Personen_ID": "p3", "Leistungsart": "GSI", "Geburtsdatum": "05.06.1940", "Unterbezirk": "341"}],
    "asylblg": [{"Personen_ID": "p4", "Geburtsdatum": "07.08.1999", "Geschlecht": "m", "Unterbezirk": "001"}],
    "unemployment": [
        {"Personen_ID": "p1", "Rechtskreis": "SGB III", "Arbeitslos_seit": "01.10.2018", "Alter": 38,
         "Geschlecht": "w", "Unterbezirk": "001"},
        {"Personen_ID": "p5", "Rechtskreis": "SGB II", "Arbeitslos_seit": "31.12.2017", "Alter": 15,
         "Geschlecht": "m", "Unterbezirk": "261"},  # the earliest start a 15-year-old can have: long-term
    ],
}

# source -> (a bad row, the column the message must name, what it must say)
BAD_ROWS = {
    "register": ({**GOOD_ROWS["register"][0], "Personen_ID": "bad", "Geschlecht": "x"}, "Geschlecht", "isin"),
    "sgb2": ({**GOOD_ROWS["sgb2"][0], "Personen_ID": "bad", "Alter": 99}, "Alter", "in_range"),
    "sgb12": ({**GOOD_ROWS["sgb12"][0], "Personen_ID": "bad", "Leistungsart": "XYZ"}, "Leistungsart", "isin"),
    "asylblg": ({**GOOD_ROWS["asylblg"][0], "Personen_ID": "bad", "Unterbezirk": "999"}, "Unterbezirk",
                "codes of the reference"),
    "unemployment": ({**GOOD_ROWS["unemployment"][0], "Personen_ID": "bad", "Arbeitslos_seit": "01.01.2019"},
                     "Arbeitslos_seit", "unemployed_since must lie on or before the reference date"),
}


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def _load(con, folder, source, policy="fail"):
    return load_delivery(con, find_manifest(folder, LAYOUTS[source], CYCLE), policy=policy)


@pytest.mark.parametrize("source", sorted(LAYOUTS))
def test_good_delivery_is_loaded(tmp_path, con, source):
    write_delivery(tmp_path, source, CYCLE, GOOD_ROWS[source])
    result = _load(con, tmp_path, source)
    assert (result.rows_in, result.rows_accepted, result.rows_rejected) == (len(GOOD_ROWS[source]),) * 2 + (0,)
    assert con.execute(f"select count(*) from raw.{source} where report_cycle = {CYCLE}").fetchone()[0] == len(
        GOOD_ROWS[source])


@pytest.mark.parametrize("source", sorted(LAYOUTS))
def test_bad_row_refuses_delivery_naming_file_line_and_column(tmp_path, con, source):
    bad, column, says = BAD_ROWS[source]
    path = write_delivery(tmp_path, source, CYCLE, GOOD_ROWS[source] + [bad])
    with pytest.raises(DeliveryError) as refused:
        _load(con, tmp_path, source)
    message = str(refused.value)
    line = len(GOOD_ROWS[source]) + 2  # header is line 1 in a text file; Parquet rows count from 1
    if LAYOUTS[source].file_format == "parquet":
        line -= 1
    assert f"{path.name}, line {line}, column {column}" in message
    assert says in message
    assert con.execute(f"select count(*) from raw.{source}").fetchone()[0] == 0  # nothing half-loaded


@pytest.mark.parametrize("source", sorted(LAYOUTS))
def test_quarantine_keeps_the_balance(tmp_path, con, source):
    bad, _, _ = BAD_ROWS[source]
    write_delivery(tmp_path, source, CYCLE, GOOD_ROWS[source] + [bad])
    result = _load(con, tmp_path, source, policy="quarantine")
    assert result.rows_in == result.rows_accepted + result.rows_rejected
    assert result.rows_rejected == 1
    rejected = con.execute("select count(distinct source_line) from raw.rejected_rows where source = ?",
                           [source]).fetchone()[0]
    loaded = con.execute(f"select count(*) from raw.{source}").fetchone()[0]
    assert (loaded, rejected) == (result.rows_accepted, 1)


def test_unparseable_date_and_duplicate_key_are_named(tmp_path, con):
    rows = [person("p1", "31.02.1980", "001"), person("p1", "01.01.1990", "001")]
    write_delivery(tmp_path, "register", CYCLE, rows)
    with pytest.raises(DeliveryError) as refused:
        _load(con, tmp_path, "register")
    message = str(refused.value)
    assert "line 2, column Geburtsdatum: value is not a date DD.MM.YYYY" in message
    assert "line 3, column Personen_ID: duplicate key Personen_ID" in message


def test_born_after_reference_date_is_refused(tmp_path, con):
    write_delivery(tmp_path, "register", CYCLE, [person("p1", "01.06.2019", "001")])
    with pytest.raises(DeliveryError, match="line 2, column Geburtsdatum: fails birth_date must lie on or before "
                                            "the reference date"):
        _load(con, tmp_path, "register")


def test_personal_values_never_appear_in_messages(tmp_path, con):
    rows = [person("secret-key-1", "01.01.1980", "001"), person("secret-key-1", "01.01.2030", "001")]
    write_delivery(tmp_path, "register", CYCLE, rows)
    with pytest.raises(DeliveryError) as refused:
        _load(con, tmp_path, "register")
    assert "secret-key-1" not in str(refused.value) and "2030" not in str(refused.value)


def test_missing_column_is_named(tmp_path, con):
    text = "Personen_ID;Geburtsdatum;Geschlecht\np1;01.01.1980;w\n"
    write_delivery(tmp_path, "register", CYCLE, [{}], text=text)
    with pytest.raises(DeliveryError, match=r"header \(line 1\): missing column\(s\) Staatsangehörigkeit"):
        _load(con, tmp_path, "register")


def test_wrong_encoding_is_refused(tmp_path, con):
    text = "Personen_ID;Leistungsart;Geburtsdatum;Unterbezirk\np1;HLU;01.01.1980;001\npä;HLU;01.01.1980;001\n"
    path = write_delivery(tmp_path, "sgb12", CYCLE, [{}, {}], text=text)
    path.write_bytes(text.encode("cp1252"))  # announced as UTF-8, delivered as cp1252
    write_manifest(path, LAYOUTS["sgb12"], reference_date_of(CYCLE), 2)
    with pytest.raises(DeliveryError, match=r"sgb12_2018-12-31.csv, line 3: (Invalid unicode|.*not valid)"):
        _load(con, tmp_path, "sgb12")


def test_changed_file_fails_the_checksum(tmp_path, con):
    path = write_delivery(tmp_path, "sgb12", CYCLE, GOOD_ROWS["sgb12"])
    path.write_text(path.read_text(encoding="utf-8").replace("GSI", "HLU"), encoding="utf-8")
    with pytest.raises(DeliveryError, match="SHA-256 checksum .* does not match the manifest"):
        _load(con, tmp_path, "sgb12")


def test_row_count_must_match_manifest(tmp_path, con):
    write_delivery(tmp_path, "sgb12", CYCLE, GOOD_ROWS["sgb12"])
    manifest = find_manifest(tmp_path, LAYOUTS["sgb12"], CYCLE)
    lying = type(manifest)(**{**manifest.__dict__, "rows": 5})
    with pytest.raises(DeliveryError, match="holds 1 data rows but its manifest .* announces 5"):
        load_delivery(con, lying)


def test_wrong_column_count_names_the_line(tmp_path, con):
    headers = "Personen_ID;Leistungsart;Geburtsdatum;Unterbezirk"
    write_delivery(tmp_path, "sgb12", CYCLE, [{}, {}], text=f"{headers}\np1;HLU;01.01.1980;001\np2;HLU;001\n")
    with pytest.raises(DeliveryError, match=r"sgb12_2018-12-31.csv, line 3: Expected Number of Columns: 4 Found: 3"):
        _load(con, tmp_path, "sgb12")


def test_cp1252_register_is_decoded(tmp_path, con):
    path = write_delivery(tmp_path, "register", CYCLE, GOOD_ROWS["register"])
    assert "Staatsangehörigkeit".encode("cp1252") in path.read_bytes()
    assert _load(con, tmp_path, "register").rows_accepted == 3


def test_reload_replaces_the_cycle(tmp_path, con):
    write_delivery(tmp_path, "register", CYCLE, GOOD_ROWS["register"])
    _load(con, tmp_path, "register")
    write_delivery(tmp_path, "register", CYCLE, GOOD_ROWS["register"][:1])
    _load(con, tmp_path, "register")
    assert con.execute("select count(*) from raw.register").fetchone()[0] == 1


def test_an_unemployment_start_outside_working_life_is_refused_without_showing_it(tmp_path, con):
    """A 20-year-old unemployed since 2003 (before the age of 15) is refused, naming file, line and column; the
    start date (personal) and the person key are not shown."""
    row = {**GOOD_ROWS["unemployment"][0], "Personen_ID": "secret-key-2", "Alter": 20, "Arbeitslos_seit": "17.03.2003"}
    path = write_delivery(tmp_path, "unemployment", CYCLE, [row])
    with pytest.raises(DeliveryError) as refused:
        _load(con, tmp_path, "unemployment")
    message = str(refused.value)
    assert f"{path.name}, line 2, column Arbeitslos_seit: fails unemployed_since must lie" in message
    assert "secret-key-2" not in message and "17.03.2003" not in message and "2003-03-17" not in message


def test_every_source_is_a_raw_table_of_dbt():
    """dbt's raw sources (_raw__sources.yml) are the sources (SOURCES) plus the ingest log and the one table of
    the partner offices' aggregate deliveries: the test that every cycle has all its deliveries counts the
    person-level ones there."""
    import yaml

    from social_monitor.deliveries import SOURCES
    from social_monitor.settings import PROJECT_DIR

    declared = yaml.safe_load((PROJECT_DIR / "dbt_project/models/staging/_raw__sources.yml").read_text("utf-8"))
    [raw] = [source for source in declared["sources"] if source["name"] == "raw"]
    assert {table["name"] for table in raw["tables"]} == {*SOURCES, "deliveries", "aggregates"}
