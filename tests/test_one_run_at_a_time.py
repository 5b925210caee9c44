"""One run at a time, and one line for a locked warehouse or a full disk (issue 10, part 5).

Real runs only: two `make cycle`-equivalent Dagster CLI runs (`dagster asset materialize --select '*'
--partition 2018`, in-process as `make cycle` starts them) on a real sample city in a temporary folder, a real
DuckDB lock held by another process, and a real full disk: a small tmpfs mounted in a user and mount namespace
(`unshare -rm`, no root needed where unprivileged user namespaces are allowed; the test is skipped with the
reason where they are not).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance

from social_monitor.settings import PROJECT_DIR, load_settings
from social_monitor.storage import RunLock, RunLockBusy
from tests.deliveries import ALL_LAYOUTS, LAYOUTS
from tests.pipeline_env import BIN, BUILD_MARTS, DAGSTER, INGEST, environment
from tests.waiting import CEILING_SECONDS

CYCLE = "2018"
CYCLE_RUN = [*DAGSTER, "asset", "materialize", "-m", "orchestration.definitions", "--select", "*",
             "--partition", CYCLE]


def start(env: dict[str, str], args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=PROJECT_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def run(env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=CEILING_SECONDS)


def failure_lines(output: str) -> list[str]:
    """The first line of every failure Dagster printed: the line after each *_FAILURE event's header."""
    lines = output.splitlines()
    found = []
    for i, line in enumerate(lines):
        if re.search(r" - (STEP|RESOURCE_INIT)_FAILURE - ", line):
            following = [text for text in lines[i + 1:i + 4] if text.strip()]
            found.append(following[0] if following else "")
    return found


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two cycle runs of one sample city, started together in one Dagster home."""
    root = tmp_path_factory.mktemp("one_run")
    env = environment(root)
    done = run(env, [str(BIN / "social-monitor"), "generate", "--out", str(root / "data" / "landing"),
                     "--scale", "0.05", "--cycles", CYCLE, "-q"])
    assert done.returncode == 0, done.stderr
    # as `make cycle` does: the instance settings and the run storage exist before any run starts
    shutil.copy(PROJECT_DIR / "config" / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    done = run(env, [*DAGSTER, "instance", "migrate"])
    assert done.returncode == 0, done.stdout + done.stderr
    logs = [root / "first.log", root / "second.log"]
    processes = [start(env, CYCLE_RUN, log) for log in logs]
    codes = [process.wait(timeout=CEILING_SECONDS) for process in processes]
    return {"root": root, "env": env, "codes": codes, "outputs": [log.read_text() for log in logs],
            "warehouse": root / "data" / "warehouse" / "warehouse.duckdb",
            "published": root / "data" / "published" / "marts.duckdb"}


def test_two_cycle_runs_started_together_run_one_after_the_other(two_runs):
    assert two_runs["codes"] == [0, 0], "\n".join(out[-3000:] for out in two_runs["outputs"])
    instance = DagsterInstance.from_config(two_runs["env"]["DAGSTER_HOME"])
    records = instance.get_run_records()
    assert len(records) == 2
    windows = []
    for record in records:
        events = instance.all_logs(record.dagster_run.run_id)
        steps = [e.timestamp for e in events if e.dagster_event_type == DagsterEventType.STEP_START]
        ends = [e.timestamp for e in events if e.dagster_event_type == DagsterEventType.RUN_SUCCESS]
        assert steps and ends
        windows.append((min(steps), max(ends), record.dagster_run.run_id))
    (first_start, first_end, first_id), (second_start, _, second_id) = sorted(windows)
    # no step of the second run started before the first run had finished
    assert second_start >= first_end
    # and the second run said why it waited, naming the run it waited for
    waited = [out for out in two_runs["outputs"] if "waiting for the warehouse" in out]
    assert len(waited) == 1
    assert re.search(rf"waiting for the warehouse \S+warehouse.duckdb: it is in use by run {first_id}", waited[0])
    assert second_id not in waited[0].split("waiting for the warehouse", 1)[1].splitlines()[0]


def test_after_the_two_runs_the_warehouse_is_consistent(two_runs):
    assert two_runs["codes"] == [0, 0]
    with duckdb.connect(str(two_runs["warehouse"]), read_only=True) as con:
        deliveries = con.execute("select source, rows_in, rows_accepted, rows_rejected from raw.deliveries "
                                 "order by source").fetchall()
        assert [d[0] for d in deliveries] == sorted(ALL_LAYOUTS)  # person-level sources and aggregate deliveries
        assert all(rows_in == accepted + rejected for _, rows_in, accepted, rejected in deliveries)
        for source, _, accepted, _ in deliveries:
            if source in LAYOUTS:
                stored = con.execute(f"select count(*) from raw.{LAYOUTS[source].table} "
                                     f"where report_cycle = {CYCLE}").fetchone()[0]
            else:  # every aggregate delivery loads into raw.aggregates
                stored = con.execute(f"select count(*) from raw.aggregates where delivery = '{source}' "
                                     f"and report_cycle = {CYCLE}").fetchone()[0]
            assert stored == accepted, source  # each delivery loaded once, not twice
        # the marts counted the deliveries as they were last loaded, not a load that happened during the count
        loaded = con.execute(f"select max(loaded_at) from raw.deliveries where report_cycle = {CYCLE}").fetchone()[0]
        counted = con.execute("select distinct deliveries_loaded_at from intermediate.int_base_area_counts "
                              f"where report_cycle = {CYCLE}").fetchall()
        assert counted == [(loaded,)]
    with duckdb.connect(str(two_runs["published"]), read_only=True) as con:
        assert con.execute("select distinct report_cycles from publication").fetchall() == [(CYCLE,)]
    # the run lock is free again
    with RunLock(two_runs["warehouse"]).held("test", wait_seconds=0):
        pass


def copy_of(two_runs, tmp_path: Path) -> dict[str, str]:
    shutil.copytree(two_runs["root"] / "data", tmp_path / "data")
    return environment(tmp_path)


def test_a_run_that_finds_the_warehouse_in_use_is_refused_with_one_line(two_runs, tmp_path):
    env = {**copy_of(two_runs, tmp_path), "SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS": "0"}
    warehouse = tmp_path / "data" / "warehouse" / "warehouse.duckdb"
    before = warehouse.read_bytes()
    with RunLock(warehouse).held("other-run-0001"):
        done = run(env, [*INGEST, "--partition", CYCLE])
        with pytest.raises(RunLockBusy, match="in use by run other-run-0001"):
            with RunLock(warehouse).held("third", wait_seconds=0.2, poll_seconds=0.05):
                pass
    output = done.stdout + done.stderr
    assert done.returncode != 0
    first = failure_lines(output)
    assert first and first[0].startswith(
        f"dagster._core.definitions.events.Failure: the warehouse {warehouse} is in use by run other-run-0001")
    assert "one run at a time" in first[0]
    assert "STEP_START" not in output  # refused before any step wrote anything
    assert warehouse.read_bytes() == before


def test_a_warehouse_locked_by_another_process_fails_with_one_line(two_runs, tmp_path):
    env = copy_of(two_runs, tmp_path)
    warehouse = tmp_path / "data" / "warehouse" / "warehouse.duckdb"
    expected = f"{warehouse} is locked by another process ("
    holder = subprocess.Popen([str(BIN / "python"), "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.read()", str(warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        ingest = run(env, [*INGEST, "--partition", CYCLE])
        build = run(env, BUILD_MARTS)
        cli = run(env, [str(BIN / "social-monitor"), "export", "--published", str(warehouse),
                        "--out", str(tmp_path / "exports"), "-q"])
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    for done in (ingest, build):
        assert done.returncode != 0
        first = failure_lines(done.stdout + done.stderr)
        assert first, (done.stdout + done.stderr)[-3000:]
        assert all(line.startswith("dagster._core.definitions.events.Failure: " + expected) for line in first), first
        assert all(f"PID {holder.pid})" in line for line in first), first
    # the geography's step (the first to write the warehouse) met the lock in the build (the Dagster process
    # itself holds no connection)
    assert 'Execution of step "geography" failed' in build.stdout + build.stderr
    print("\n".join(["", *failure_lines(ingest.stdout + ingest.stderr), *failure_lines(build.stdout + build.stderr),
                      cli.stderr]))
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines() == [cli.stderr.strip()]  # one line
    assert cli.stderr.startswith(f"social-monitor export: error: {expected}")


def small_disk_or_skip(mount: Path, size: str) -> list[str]:
    """``unshare … sh -c 'mount a <size> tmpfs on <mount> && exec "$@"'``: a command prefix that runs a program
    with a real, small file system that fills up; skips the test (loudly) where that cannot be made."""
    mount.mkdir(parents=True, exist_ok=True)
    prefix = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size={size} tmpfs "{mount}" && exec "$@"', "sh"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        probe = None
    if probe is None or probe.returncode != 0:
        reason = probe.stderr.strip() if probe is not None else "no unshare program"
        pytest.skip(f"DISK-FULL NOT TESTED: cannot mount a small tmpfs in a user namespace here ({reason}); "
                    "allow unprivileged user namespaces (or run as root) to test it")
    return prefix


def test_a_full_disk_is_named_not_a_failed_rollback(two_runs, tmp_path):
    env = copy_of(two_runs, tmp_path)
    small = tmp_path / "small"
    prefix = small_disk_or_skip(small, "2m")
    # the warehouse on the small disk: the load of the register (12 MB of warehouse) does not fit
    ingest = run({**env, "SOCIAL_MONITOR_WAREHOUSE": str(small / "warehouse.duckdb")},
                 [*prefix, *INGEST, "--partition", CYCLE])
    # the published file on the small disk (3 MB at this scale): publishing does not fit
    publish = run({**env, "SOCIAL_MONITOR_PUBLISHED": str(small / "marts.duckdb")}, [*prefix, *BUILD_MARTS])
    # the command line writing its exports (370 KB) to a smaller disk
    export = run(env, [*small_disk_or_skip(small, "64k"), str(BIN / "social-monitor"), "export", "--published",
                       str(tmp_path / "data" / "published" / "marts.duckdb"), "--out", str(small / "exports"), "-q"])
    full = f"disk full: the file system {small} "
    for done, step in ((ingest, "raw__register"), (publish, "published__marts")):
        output = done.stdout + done.stderr
        assert done.returncode != 0
        first = failure_lines(output)
        assert first, output[-3000:]
        assert all(line.startswith("dagster._core.definitions.events.Failure: " + full) for line in first), first
        assert f'Execution of step "{step}" failed' in output
        assert "cannot rollback" not in output
    assert export.returncode == 1
    assert export.stderr.strip().splitlines() == [export.stderr.strip()]  # one line
    assert export.stderr.startswith(f"social-monitor export: error: {full}")


def test_the_wait_for_another_run_is_a_number_of_seconds():
    assert load_settings({"SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS": "0"}).run_lock_wait_seconds == 0
    assert load_settings({"SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS": "90"}).run_lock_wait_seconds == 90
    for bad in ("soon", "-1", "inf", "nan"):
        with pytest.raises(ValueError, match=f"SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS='{bad}' is not a number"):
            load_settings({"SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS": bad})
