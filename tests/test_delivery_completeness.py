"""The two kinds of bad delivery that concern several sources at once and are caught after loading, by the
dbt singular tests (docs/bad-input.md, "Checked after loading"): a source missing for a cycle
(``assert_every_cycle_has_all_deliveries``, an error) and a person in SGB II and AsylbLG of the same cycle
(``assert_no_person_draws_sgb2_and_asylblg``, a warning).

Small hand-made deliveries are loaded into a temporary warehouse with the real loader, then the real
``dbt build`` runs against it (``--store-failures``, so the rows each test returns can be read back):

1. 2018 without its SGB XII delivery, and 2019 complete with one person key in both SGB II and AsylbLG;
2. the same after the SGB XII delivery for 2018 has arrived.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from social_monitor.deliveries import find_manifest
from social_monitor.geography import load_geography
from social_monitor.ingest import load_delivery
from social_monitor.pseudonyms import PseudonymKey
from social_monitor.reference import write_reference
from social_monitor.settings import DBT_PROJECT_DIR, DEFAULT_CITY, PROJECT_DIR, city_dir, dbt_vars_json
from tests.deliveries import LAYOUTS, person, write_delivery
from tests.waiting import CEILING_SECONDS

DBT = str(Path(sys.executable).parent / "dbt")
DOC = PROJECT_DIR / "docs" / "bad-input.md"
MISSING, OVERLAP = "assert_every_cycle_has_all_deliveries", "assert_no_person_draws_sgb2_and_asylblg"
BOTH = "both-7731"  # the raw key of the person delivered by the SGB II and the AsylbLG office in 2019


def rows(source: str, cycle: int) -> list[dict[str, object]]:
    """A few valid rows; the keys carry the cycle, so no two cycles' files are the same file."""
    c = str(cycle)
    asylblg_key = BOTH if cycle == 2019 else f"a1-{c}"
    return {
        "register": [person(f"r1-{c}", "01.02.1980", "001"), person(f"r2-{c}", "03.04.2012", "261"),
                     person(f"r3-{c}", "05.06.1940", "341", residence="N", moved="01.01.2000")],
        "sgb2": [{"Personen_ID": BOTH if cycle == 2019 else f"s1-{c}", "BG_Nummer": "bg1", "Alter": 35,
                  "Unterbezirk": "261"},
                 {"Personen_ID": f"s2-{c}", "BG_Nummer": "bg2", "Alter": 58, "Unterbezirk": "001"}],
        "sgb12": [{"Personen_ID": f"x1-{c}", "Leistungsart": "GSI", "Geburtsdatum": "05.06.1940",
                   "Unterbezirk": "341"}],
        "asylblg": [{"Personen_ID": asylblg_key, "Geburtsdatum": "07.08.1988", "Geschlecht": "m",
                     "Unterbezirk": "261"},
                    {"Personen_ID": f"a2-{c}", "Geburtsdatum": "01.01.2016", "Geschlecht": "w",
                     "Unterbezirk": "001"}],
        "unemployment": [{"Personen_ID": f"r1-{c}", "Rechtskreis": "SGB III", "Arbeitslos_seit": "01.10.2017",
                          "Alter": 38, "Geschlecht": "w", "Unterbezirk": "001"}],
    }[source]


def _load(con: duckdb.DuckDBPyConnection, landing: Path, source: str, cycle: int) -> None:
    write_delivery(landing, source, cycle, rows(source, cycle))
    load_delivery(con, find_manifest(landing, LAYOUTS[source], cycle))


def _dbt_build(root: Path, warehouse: Path, name: str) -> dict[str, object]:
    """The real ``dbt build`` of the whole project; its results by test name and each test's failing rows."""
    target = root / f"target_{name}"
    env = {**os.environ, "SOCIAL_MONITOR_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [DBT, "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(root / f"logs_{name}"), "--store-failures",
         "--vars", dbt_vars_json()],
        env=env, capture_output=True, text=True, timeout=CEILING_SECONDS)
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    status = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        failing = {test: con.execute(f"select * from dbt_test__audit.{test} order by all").fetchall()
                   for test in (MISSING, OVERLAP)}
        columns = {test: [r[0] for r in con.execute(f"describe dbt_test__audit.{test}").fetchall()]
                   for test in (MISSING, OVERLAP)}
        recipients = con.execute(
            "select report_cycle, person_key, scheme from intermediate.int_transfer_recipients order by all"
        ).fetchall() if "int_transfer_recipients" in status and status["int_transfer_recipients"] == "success" \
            else None
    return {"returncode": done.returncode, "output": done.stdout + done.stderr, "status": status,
            "failing": failing, "columns": columns, "recipients": recipients}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("completeness")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        # the geography the Dagster assets of the group reference load before dbt, for the cycles of this test
        write_reference(con, load_geography(city_dir(DEFAULT_CITY)), [2018, 2019])
        for source in ("register", "sgb2", "asylblg", "unemployment"):
            _load(con, landing, source, 2018)
        for source in ("register", "sgb2", "sgb12", "asylblg", "unemployment"):
            _load(con, landing, source, 2019)
    incomplete = _dbt_build(root, warehouse, "incomplete")
    with duckdb.connect(str(warehouse)) as con:
        _load(con, landing, "sgb12", 2018)
    complete = _dbt_build(root, warehouse, "complete")
    return {"incomplete": incomplete, "complete": complete}


def test_a_cycle_without_a_source_fails_the_build_and_names_the_cycle(builds):
    build = builds["incomplete"]
    assert build["returncode"] != 0, build["output"][-3000:]
    assert build["status"][MISSING] == "fail"
    assert f"Failure in test {MISSING}" in build["output"]
    assert build["failing"][MISSING] == [(2018, 4)]  # 2018 has 4 of 5 sources; 2019 is complete
    assert build["columns"][MISSING] == ["report_cycle", "sources_delivered"]
    # The error stops the build there: nothing that counts recipients is built from the incomplete cycle.
    for model in ("int_transfer_recipients", "int_area_measures", "area_indicators"):
        assert build["status"][model] == "skipped", model


def test_the_late_delivery_completes_the_cycle(builds):
    build = builds["complete"]
    assert build["returncode"] == 0, build["output"][-3000:]
    assert build["status"][MISSING] == "pass"
    assert build["failing"][MISSING] == []
    assert build["status"]["area_indicators"] == "success"


def test_a_person_in_sgb2_and_asylblg_warns_by_cycle_without_failing(builds):
    build = builds["complete"]
    assert build["returncode"] == 0, build["output"][-3000:]  # a warning does not fail the build
    assert build["status"][OVERLAP] == "warn"
    assert f"Warning in test {OVERLAP}" in build["output"]
    assert build["failing"][OVERLAP] == [(2019, 1)]  # 2019 only: 2018's keys differ between the two sources
    assert build["columns"][OVERLAP] == ["report_cycle", "persons_in_both"]  # a count, never a key
    assert BOTH not in build["output"]
    # The same raw key gave the same pseudonym in both sources; the person is counted once, under SGB II.
    pseudonym = PseudonymKey.from_env().pseudonym(BOTH)
    assert [r for r in build["recipients"] if r[1] == pseudonym] == [(2019, pseudonym, "sgb2")]
    assert len([r for r in build["recipients"] if r[0] == 2019]) == 4  # 2 SGB II, 1 SGB XII, 2 AsylbLG - 1
    # Also seen when the build fails for another reason.
    assert builds["incomplete"]["status"][OVERLAP] == "warn"


@pytest.mark.parametrize("kind, test", [("person in SGB II and AsylbLG at once", OVERLAP),
                                        ("missing source for a cycle", MISSING)])
def test_the_catalogue_names_the_dbt_test_and_this_file(kind, test):
    row = next(line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith(f"| {kind} |"))
    assert f"`{test}`" in row and Path(__file__).name in row
