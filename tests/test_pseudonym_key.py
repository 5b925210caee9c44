"""The pseudonym key cannot change silently.

Every load records the key's fingerprint in raw.deliveries; a load under another key is refused, naming the
remedy, and the warehouse is left as it was. The remedy, a full reload under the new key (`make rekey`:
`social-monitor rekey --yes`, then the normal Dagster materialisation of every cycle), is run for real.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from social_monitor.deliveries import find_manifest, reference_date_of
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.pseudonyms import KEY_ENV, PseudonymKey
from social_monitor.rekey import RekeyError, clear_for_new_key
from social_monitor.settings import PROJECT_DIR, load_settings
from tests.deliveries import LAYOUTS, person, write_delivery
from tests.pipeline_env import BIN, DAGSTER, environment

KEY_A = "the-old-key-of-the-city-0001"
KEY_B = "the-new-key-of-the-city-0002"
CYCLES = load_settings().config().report_cycles  # the configured cycles: the reload brings back every one


def _rows(source: str, cycle: int) -> list[dict]:
    """Small valid rows of a source, different in every cycle (the same file for two cycles is refused)."""
    if source == "register":
        return [person(f"r{cycle}-1", "01.02.1980", "001"), person(f"r{cycle}-2", "03.04.1990", "261")]
    if source == "sgb2":
        return [{"Personen_ID": f"r{cycle}-2", "BG_Nummer": "bg1", "Alter": 17, "Unterbezirk": "261"}]
    if source == "sgb12":
        return [{"Personen_ID": f"r{cycle}-1", "Leistungsart": "GSI", "Geburtsdatum": "01.02.1980",
                 "Unterbezirk": "001"}]
    if source == "unemployment":
        return [{"Personen_ID": f"r{cycle}-1", "Rechtskreis": "SGB III", "Arbeitslos_seit": f"01.06.{cycle}",
                 "Alter": 38, "Geschlecht": "w", "Unterbezirk": "001"}]
    assert source == "asylblg", source
    return [{"Personen_ID": f"a{cycle}-1", "Geburtsdatum": "07.08.1999", "Geschlecht": "m", "Unterbezirk": "001"}]


def _landing(folder: Path, cycles=CYCLES) -> Path:
    for cycle in cycles:
        for source in LAYOUTS:
            write_delivery(folder, source, cycle, _rows(source, cycle))
    return folder


def _load(con, landing: Path, source: str, cycle: int, secret: str):
    return load_delivery(con, find_manifest(landing, LAYOUTS[source], cycle),
                         key=PseudonymKey.from_env({KEY_ENV: secret}))


def _state(con) -> tuple:
    return (con.execute("select * from raw.sgb12 order by all").fetchall(),
            con.execute("select * from raw.register order by all").fetchall(),
            con.execute("select * exclude (loaded_at) from raw.deliveries order by all").fetchall())


@given(st.text(min_size=16, max_size=40), st.text(min_size=16, max_size=40))
def test_fingerprint_identifies_the_key_without_showing_it(one, other):
    a, b = PseudonymKey.from_env({KEY_ENV: one}), PseudonymKey.from_env({KEY_ENV: other})
    assert a.fingerprint == PseudonymKey.from_env({KEY_ENV: one}).fingerprint
    assert (a.fingerprint == b.fingerprint) == (one == other)
    assert len(a.fingerprint) == 64 and one not in a.fingerprint and one.encode().hex() not in a.fingerprint
    # a keyed hash: the plain hash of the label, or of the key, is not it
    assert a.fingerprint not in (hashlib.sha256(one.encode()).hexdigest(),
                                 hmac.new(b"", one.encode(), hashlib.sha256).hexdigest())
    assert a.fingerprint != a.pseudonym("social-monitor pseudonym key fingerprint v1")


def test_every_load_records_the_fingerprint(tmp_path):
    landing = _landing(tmp_path / "landing", [2018])
    with duckdb.connect() as con:
        for source in LAYOUTS:
            _load(con, landing, source, 2018, KEY_A)
        recorded = con.execute("select source, key_fingerprint from raw.deliveries order by all").fetchall()
        assert recorded == [(s, PseudonymKey.from_env({KEY_ENV: KEY_A}).fingerprint) for s in sorted(LAYOUTS)]
        assert KEY_A not in str(con.execute("select * from raw.deliveries").fetchall())


@pytest.mark.parametrize("what", ["another source", "the same source and cycle", "another cycle"])
def test_a_load_under_another_key_is_refused_and_changes_nothing(tmp_path, what):
    landing = _landing(tmp_path / "landing", [2012, 2018])
    with duckdb.connect() as con:
        _load(con, landing, "register", 2018, KEY_A)
        _load(con, landing, "sgb12", 2018, KEY_A)
        before = _state(con)
        source, cycle = {"another source": ("asylblg", 2018), "the same source and cycle": ("sgb12", 2018),
                         "another cycle": ("register", 2012)}[what]
        with pytest.raises(DeliveryError) as raised:
            _load(con, landing, source, cycle, KEY_B)
        message = str(raised.value)
        old, new = (PseudonymKey.from_env({KEY_ENV: k}).fingerprint[:12] for k in (KEY_A, KEY_B))
        assert message.startswith(f"{LAYOUTS[source].file_name(reference_date_of(cycle))}: refused: the "
                                  "pseudonym key")
        assert f"fingerprint {new}" in message and f"2 under fingerprint {old}" in message
        assert "make rekey" in message and KEY_A not in message and KEY_B not in message
        assert "\n" not in message
        assert _state(con) == before
        _load(con, landing, source, cycle, KEY_A)  # the warehouse's own key still loads


def test_a_warehouse_loaded_before_fingerprints_needs_the_full_reload(tmp_path):
    """A warehouse of an earlier version (raw.deliveries without the column): its key is unknown."""
    landing = _landing(tmp_path / "landing", [2018])
    with duckdb.connect() as con:
        _load(con, landing, "register", 2018, KEY_A)
        con.execute("alter table raw.deliveries drop column key_fingerprint")
        with pytest.raises(DeliveryError, match=r"1 loaded before key fingerprints were recorded \(key unknown\).*"
                                                 r"make rekey"):
            _load(con, landing, "sgb12", 2018, KEY_A)


def test_rekey_refuses_to_clear_when_the_landing_folder_cannot_reload_everything(tmp_path):
    landing = _landing(tmp_path / "landing")
    with duckdb.connect() as con:
        _load(con, landing, "register", 2018, KEY_A)
        before = _state(con)
        (landing / "asylblg_2007-12-31.manifest.json").unlink()
        (landing / "sgb12_2012-12-31.csv").unlink()
        with pytest.raises(RekeyError) as raised:
            clear_for_new_key(con, landing, CYCLES, LAYOUTS)
        assert "nothing was cleared" in str(raised.value)
        assert "no asylblg_2007-12-31.manifest.json" in str(raised.value)
        assert "sgb12_2012-12-31.csv: file named in manifest" in str(raised.value)
        assert _state(con) == before


def test_make_rekey_clears_then_reloads_every_cycle():
    done = subprocess.run(["make", "-n", "rekey"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    commands = [line for line in done.stdout.splitlines() if "social-monitor rekey" in line or "materialize" in line]
    assert len(commands) == 2 and "social-monitor rekey --yes" in commands[0]
    assert "asset materialize -m orchestration.definitions --select '*' --partition-range" in commands[1]


def test_full_reload_under_a_new_key(tmp_path):
    """Loaded under key A; Dagster refuses a partition under key B (one line naming the remedy); the rekey
    command and the normal Dagster materialisation of every cycle bring the warehouse to key B entirely."""
    env = environment(tmp_path)
    landing = _landing(tmp_path / "data" / "landing")
    warehouse = tmp_path / "data" / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        for cycle in CYCLES:
            for source in LAYOUTS:
                _load(con, landing, source, cycle, KEY_A)
    new_key = {**env, KEY_ENV: KEY_B}
    raw = [*DAGSTER, "asset", "materialize", "-m", "orchestration.definitions", "--select", "group:raw"]

    refused = subprocess.run([*raw, "--partition", "2018"], cwd=PROJECT_DIR, env=new_key, capture_output=True,
                             text=True, timeout=600)
    assert refused.returncode != 0
    assert "refused: the pseudonym key" in refused.stdout + refused.stderr and "make rekey" in refused.stderr

    cleared = subprocess.run([str(BIN / "social-monitor"), "rekey", "--yes"], cwd=PROJECT_DIR, env=new_key,
                             capture_output=True, text=True, timeout=600)
    assert cleared.returncode == 0, cleared.stderr
    assert f"cleared {len(CYCLES) * len(LAYOUTS)} deliveries" in cleared.stdout
    reloaded = subprocess.run([*raw, "--partition-range", f"{CYCLES[0]}...{CYCLES[-1]}"], cwd=PROJECT_DIR,
                              env=new_key, capture_output=True, text=True, timeout=600)
    assert reloaded.returncode == 0, reloaded.stderr[-3000:]

    b = PseudonymKey.from_env({KEY_ENV: KEY_B})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        fingerprints = con.execute("select key_fingerprint, count(*) from raw.deliveries group by all").fetchall()
        assert fingerprints == [(b.fingerprint, len(CYCLES) * len(LAYOUTS))]
        keys = {row[0] for row in con.execute("select person_key from raw.register where report_cycle = 2018")
                .fetchall()}
        assert keys == {b.pseudonym("r2018-1"), b.pseudonym("r2018-2")}
        # the person in the register and in SGB XII has the same pseudonym in both again
        assert con.execute("select count(*) from raw.sgb12 s join raw.register r using (report_cycle, person_key)"
                           ).fetchone()[0] == len(CYCLES)


def test_rekey_without_yes_changes_nothing(tmp_path, monkeypatch, capsys):
    from social_monitor.cli import main

    monkeypatch.setenv("SOCIAL_MONITOR_DATA_DIR", str(tmp_path))
    assert main(["rekey"]) == 2
    assert "make rekey" in capsys.readouterr().err
    assert not (tmp_path / "warehouse").exists()
