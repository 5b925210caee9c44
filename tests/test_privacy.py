"""Privacy: person keys are stored only as keyed-hash pseudonyms, and identifiers stay out of the models."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pytest

from social_monitor.deliveries import find_manifest
from social_monitor.ingest import load_delivery
from social_monitor.pseudonyms import DEVELOPMENT_KEY, KEY_ENV, PseudonymKey
from tests.deliveries import LAYOUTS, person, write_delivery

CYCLE = 2018
KEYS = ["P-000001", "P-000002", "Müller-Ä-7"]
REGISTER = [person(KEYS[0], "01.02.1980", "001"), person(KEYS[1], "03.04.2012", "261"),
            person(KEYS[2], "05.06.1940", "341")]
SGB2 = [{"Personen_ID": KEYS[1], "BG_Nummer": "BG-4711", "Alter": 6, "Unterbezirk": "261"}]
UNEMPLOYED = [{"Personen_ID": KEYS[0], "Rechtskreis": "SGB III", "Arbeitslos_seit": "01.10.2018", "Alter": 38,
               "Geschlecht": "w", "Unterbezirk": "001"}]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def _load(con, folder, key=None):
    write_delivery(folder, "register", CYCLE, REGISTER)
    write_delivery(folder, "sgb2", CYCLE, SGB2)
    write_delivery(folder, "unemployment", CYCLE, UNEMPLOYED)
    for source in ("register", "sgb2", "unemployment"):
        load_delivery(con, find_manifest(folder, LAYOUTS[source], CYCLE), key=key)


def _hmac(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_person_keys_are_stored_as_hmac_sha256_with_the_development_key(tmp_path, con):
    _load(con, tmp_path / "landing", key=PseudonymKey.from_env({}))
    stored = sorted(r[0] for r in con.execute("select person_key from raw.register").fetchall())
    assert stored == sorted(_hmac(DEVELOPMENT_KEY, k) for k in KEYS)
    household = con.execute("select household_key from raw.sgb2").fetchone()[0]
    assert household == _hmac(DEVELOPMENT_KEY, "BG-4711")


def test_the_same_person_gets_the_same_pseudonym_in_every_source(tmp_path, con):
    _load(con, tmp_path / "landing", key=PseudonymKey.from_env({}))
    assert con.execute("select count(*) from raw.sgb2 join raw.register using (person_key)").fetchone()[0] == 1
    assert con.execute("select count(*) from raw.unemployment join raw.register using (person_key)").fetchone()[0] == 1


def test_a_key_from_the_environment_changes_every_pseudonym(tmp_path, con):
    secret = "a-real-secret-of-the-city-0123456789"
    key = PseudonymKey.from_env({KEY_ENV: secret})
    assert not key.is_development and "DEVELOPMENT" not in key.description and secret not in key.description
    _load(con, tmp_path / "landing", key=key)
    stored = sorted(r[0] for r in con.execute("select person_key from raw.register").fetchall())
    assert stored == sorted(_hmac(secret, k) for k in KEYS)
    assert not set(stored) & {_hmac(DEVELOPMENT_KEY, k) for k in KEYS}


def test_sql_and_python_compute_the_same_pseudonym_also_for_long_keys():
    for secret in ("short-but-sixteen!", "x" * 100):
        key = PseudonymKey.from_env({KEY_ENV: secret})
        sql = duckdb.sql(f"select {key.sql(chr(39) + 'Müller-Ä-7' + chr(39))}").fetchone()[0]
        assert sql == key.pseudonym("Müller-Ä-7") == _hmac(secret, "Müller-Ä-7")


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match=f"{KEY_ENV} must be at least 16 characters"):
        PseudonymKey.from_env({KEY_ENV: "tooshort"})


def test_no_delivered_identifier_is_stored_anywhere_in_the_warehouse(tmp_path, con):
    _load(con, tmp_path / "landing")
    tables = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                         "where data_type = 'VARCHAR'").fetchall()
    found = []
    for schema, table, column in tables:
        for value in [*KEYS, "BG-4711"]:
            hits = con.execute(f'select count(*) from "{schema}"."{table}" where "{column}" = ?', [value]).fetchone()
            if hits[0]:
                found.append((schema, table, column, value))
    assert found == []
