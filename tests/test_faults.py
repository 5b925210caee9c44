"""Faults: readers during publishing, runs killed with SIGKILL, reruns, and a quarantine above its threshold.

All on a real sample city (tests/pipeline_env.py): the real publish step, real Dagster runs killed as a
whole process group (Dagster and its dbt child), and read-only DuckDB readers in separate processes.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from schemas.published import LONG_VIEW, PUBLISHED_TABLES, WIDE_VIEW_PREFIX
from social_monitor.deliveries import reference_date_of, sha256_of, write_manifest
from social_monitor.publish import publish
from social_monitor.settings import DEFAULT_CITY, PROJECT_DIR, copy_city
from tests.deliveries import LAYOUTS
from tests.pipeline_env import BUILD_MARTS, INGEST, build, environment, sh
from tests.waiting import CEILING_SECONDS

READERS = 2  # each publication runs the disclosure audit (linear programs, about a minute here): few
PUBLICATIONS = 2


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return build(tmp_path_factory.mktemp("faults"))


def checksums(path: Path) -> dict[str, str]:
    """An MD5 of every published table's sorted rows (publication without its timestamp)."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables order by 1").fetchall()]
        result = {}
        for table in tables:
            rows = f"(select * exclude (published_at) from {table})" if table == "publication" else table
            result[table] = con.execute(
                f"select md5(coalesce(string_agg(cast(t as varchar), '|' order by cast(t as varchar)), '')) "
                f"from {rows} t").fetchone()[0]
    return result


def _reader(path: str, stop, results, ready) -> None:
    """Open the published file read-only in a loop, as a BI tool does, and check each file is whole."""
    ok = failed = mixed = 0
    errors: list[str] = []
    while not stop.is_set():
        if ok + failed + mixed == 1:
            ready.put(os.getpid())  # reading: one read done
        try:
            with duckdb.connect(path, read_only=True) as con:
                rows, announced, cities = con.execute(
                    "select (select count(*) from area_indicators), "
                    "(select row_count from publication where table_name = 'area_indicators'), "
                    "(select count(distinct city_name) from publication)").fetchone()
                con.execute("select report_cycle, count(*) from area_classifications group by 1").fetchall()
            if rows == announced and cities == 1:
                ok += 1
            else:
                mixed += 1
        except Exception as error:  # noqa: BLE001 - every failed read is counted, whatever the cause
            failed += 1
            errors.append(f"{type(error).__name__}: {error}"[:200])
    results.put((ok, failed, mixed, errors[:3]))


def test_concurrent_readers_never_fail_while_runs_publish(city, tmp_path, record_property):
    target = tmp_path / "published" / "marts.duckdb"
    publish(city["warehouse"], target, city_name="Lauf 0")
    context = multiprocessing.get_context("spawn")
    stop, results, ready = context.Event(), context.Queue(), context.Queue()
    readers = [context.Process(target=_reader, args=(str(target), stop, results, ready)) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    for _ in readers:  # every reader is reading (on a busy machine starting 8 processes takes a while)
        ready.get(timeout=CEILING_SECONDS)
    started = time.perf_counter()
    for run in range(1, PUBLICATIONS + 1):
        publish(city["warehouse"], target, city_name=f"Lauf {run}")
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    stop.set()
    counts = [results.get(timeout=CEILING_SECONDS) for _ in readers]
    for reader in readers:
        reader.join(timeout=CEILING_SECONDS)
    ok, failed, mixed = (sum(c[i] for c in counts) for i in range(3))
    print(f"\n{READERS} readers, {PUBLICATIONS} publications in {seconds:.1f} s: {ok} reads ok, {failed} failed, "
          f"{mixed} mixed")
    for name, figure in [("readers", READERS), ("publications", PUBLICATIONS), ("publish_seconds", round(seconds, 1)),
                         ("reads_ok", ok), ("reads_failed", failed), ("reads_mixed", mixed)]:
        record_property(name, figure)  # in the JUnit XML too (--junitxml), where -s output is not kept
    assert failed == 0, [c[3] for c in counts]
    assert mixed == 0
    assert ok > READERS * PUBLICATIONS  # the readers really read while the file was replaced
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select any_value(city_name) from publication").fetchone()[0] == f"Lauf {PUBLICATIONS}"
    assert not target.with_name(target.name + ".tmp").exists()


def _killed_run(env: dict[str, str], marker: str, delay: float) -> bool:
    """Start build_marts; SIGKILL its whole process group ``delay`` seconds after a log line with ``marker``."""
    process = subprocess.Popen(BUILD_MARTS, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    killed = False
    for line in process.stdout:
        if marker in line and "STEP_START" in line:
            time.sleep(delay)
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
            break
    process.stdout.close()
    process.wait(timeout=CEILING_SECONDS)
    return killed


# (the step at whose start the run is killed, seconds after its start)
KILL_POINTS = [("dbt_models", 4.0), ("classification__area_classifications", 0.0), ("published__marts", 0.3)]


def test_a_killed_run_leaves_the_last_good_file_and_the_next_run_repairs_nothing(city, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(city["root"] / "data", root / "data")
    env = environment(root)
    published = root / "data" / "published" / "marts.duckdb"
    good = checksums(published)
    for marker, delay in KILL_POINTS:
        assert _killed_run(env, marker, delay), f"the run never reached {marker}"
        assert checksums(published) == good, f"killed at {marker} + {delay} s: the published file changed"
    # the next runs complete without any manual repair: ingest one cycle again, rebuild, publish
    sh(env, *INGEST, "--partition", "2018")
    sh(env, *BUILD_MARTS)
    # and, with the same deliveries, give identical tables (idempotent)
    assert checksums(published) == good
    assert not published.with_name(published.name + ".tmp").exists()


def _counted(warehouse) -> dict[int, object]:
    """When int_base_area_counts counted each cycle: the load time of the deliveries it counted."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(con.execute("select report_cycle, any_value(deliveries_loaded_at) "
                                "from intermediate.int_base_area_counts group by 1").fetchall())


def test_a_rerun_of_the_same_cycle_gives_identical_tables(city):
    before, counted_before = checksums(city["published"]), _counted(city["warehouse"])
    sh(city["env"], *INGEST, "--partition", "2018")
    sh(city["env"], *BUILD_MARTS)
    after, counted_after = checksums(city["published"]), _counted(city["warehouse"])
    # the published tables, publication and disclosure_audit, and the views for people (indikatoren_*)
    views = [name for name in after if name.startswith(WIDE_VIEW_PREFIX)]
    assert LONG_VIEW in views and len(after) == len(PUBLISHED_TABLES) + 2 + len(views)
    assert after == before
    # only the reloaded cycle and the next one (whose moves compare with 2018's register) were counted again
    # (the incremental model); the others were left as they were
    assert counted_after[2018] > counted_before[2018]
    following = min(c for c in counted_before if c > 2018)
    assert counted_after[following] > counted_before[following]
    others = [c for c in counted_before if c not in (2018, following)]
    assert len(others) == 2 and all(counted_after[c] == counted_before[c] for c in others)


def test_a_quarantine_above_its_threshold_fails_the_run_and_publishes_nothing_of_it(city, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(city["root"] / "data", root / "data")
    published = root / "data" / "published" / "marts.duckdb"
    good = checksums(published)
    copy_city(DEFAULT_CITY, root / "city", ingest_policy="quarantine", quarantine_max_share=0.001)
    env = {**environment(root), "SOCIAL_MONITOR_CITY": str(root / "city")}
    # a corrected 2018 register in which every 100th person has an Unterbezirk that does not exist: 1 % of
    # the rows, above the threshold of 0.1 %
    register = root / "data" / "landing" / LAYOUTS["register"].file_name(reference_date_of(2018))
    earlier = sha256_of(register)  # the delivery loaded by the good run
    header, *body = [line for line in register.read_bytes().split(b"\n") if line]
    bad = [b";".join([*line.split(b";")[:6], b"999", *line.split(b";")[7:]]) if i % 100 == 0 else line
           for i, line in enumerate(body)]
    register.write_bytes(b"\n".join([header, *bad]) + b"\n")
    write_manifest(register, LAYOUTS["register"], reference_date_of(2018), len(bad))
    refused_sha256 = sha256_of(register)
    assert refused_sha256 != earlier

    done = subprocess.run([*INGEST, "--partition", "2018"], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=CEILING_SECONDS)
    assert done.returncode != 0
    assert "would be quarantined, more than the threshold of 0.1%" in done.stdout + done.stderr
    with duckdb.connect(str(root / "data" / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        refused = con.execute("select count(distinct source_line) from raw.rejected_rows where source = 'register' "
                              "and delivery_outcome = 'refused' and column_name = 'Unterbezirk'").fetchone()[0]
        kept = con.execute("select rows_in, rows_rejected, sha256 from raw.deliveries where source = 'register' "
                           "and report_cycle = 2018").fetchall()
        logged = {r[0] for r in con.execute("select sha256 from raw.deliveries").fetchall()}
        loaded = con.execute("select count(*), count(*) filter (where unterbezirk_id = '999') from raw.register "
                             "where report_cycle = 2018").fetchone()
    assert refused == len(range(0, len(body), 100))  # counted and named, by line
    # the earlier, good delivery's record stays; the refused file's checksum is nowhere in the log
    assert kept == [(len(body), 0, earlier)]
    assert refused_sha256 not in logged
    assert loaded == (len(body), 0)  # its rows stay loaded, none of the refused file's
    assert checksums(published) == good  # nothing of the refused delivery is published
