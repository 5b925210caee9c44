"""The Dagster UI: `dagster dev` on a loopback port, as `make dev` starts it, loads the whole asset graph with its
groups, descriptions, owners, partitions and asset checks (asked through the UI's own GraphQL API), and stops
completely on SIGTERM.

`dagster dev` started from a script ignores SIGINT and SIGTERM unless it is started with
`env --default-signal=INT,TERM` (shared/notes/toolchain.md); the test starts it that way in its own process
group and checks that no process of its DAGSTER_HOME is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from social_monitor.geography import REFERENCE_TABLES
from social_monitor.settings import DBT_PROJECT_DIR, PROJECT_DIR, load_settings
from tests.pipeline_env import BIN, SCALE, environment
from tests.waiting import CEILING_SECONDS, wait_for

# Stages of the pipeline, in order; "report" is the stage still to come. reference (the city's geography and
# the indicator catalogue seed) and intermediate (dbt's middle layer) sit between raw and marts.
GROUPS = ["raw", "reference", "staging", "intermediate", "marts", "classification", "publish", "report"]
CONTROL_ASSETS = {"raw/register": "raw", "raw/sgb2": "raw", "raw/sgb12": "raw", "raw/asylblg": "raw",
                  "raw/deliveries": "raw",
                  "classification/action_areas": "classification",
                  "classification/area_classifications": "classification", "published/marts": "publish"}

ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    groupName
    description
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    kinds
    metadataEntries { label }
    isPartitioned
    isAutoCreatedStub
    partitionKeys
    jobNames
    hasAssetChecks
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name description } }
    }
  }
}
"""
INSTANCE = """
{
  instance { runQueuingSupported runQueueConfig { maxConcurrentRuns } }
}
"""
WORKSPACE = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a loopback URL we built
        return response.read()


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=CEILING_SECONDS) as response:  # noqa: S310
        answer = json.loads(response.read())
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def processes_of(home: Path) -> list[int]:
    """Every process whose environment has this DAGSTER_HOME: the dev server, webserver, daemon, code servers."""
    marker = f"DAGSTER_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def dbt_assets() -> dict[str, str]:
    """Every dbt model and seed as the asset key it must have and the group it belongs to."""
    models = {f"{path.parent.name}/{path.stem}": path.parent.name
              for path in (DBT_PROJECT_DIR / "models").glob("*/*.sql")}
    # the seeds dbt loads (seeds/reference is disabled: the benchmark's copy of the geography)
    seeds = {f"reference/{path.stem}": "reference"
             for path in (DBT_PROJECT_DIR / "seeds" / "catalogue").rglob("*.csv")}
    geography = {f"reference/{table}": "reference" for table in REFERENCE_TABLES}  # not dbt: read by it
    return {**models, **seeds, **geography}


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`dagster dev` of the project's workspace and Dagster instance settings (config/dagster.yaml, as `make dev`
    installs them), up and loaded; stopped with SIGTERM to its process group. Waits for the server on a condition
    (it answers and its code location is loaded), fails at once if it exits, and gives up only at the suite's
    ceiling: on a loaded 2-core machine start-up took over 120 s."""
    root = tmp_path_factory.mktemp("dagster_ui")
    env = environment(root)
    env.pop("SOCIAL_MONITOR_CITY", None)
    home = Path(env["DAGSTER_HOME"])
    shutil.copyfile(PROJECT_DIR / "config" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    log = (root / "dagster_dev.log").open("w")
    process = subprocess.Popen(
        ["env", "--default-signal=INT,TERM", str(BIN / "dagster"), "dev", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    state = {"process": process, "port": port, "home": home, "root": root, "stopped": None}

    def loaded():
        try:
            server_info = json.loads(get(f"http://127.0.0.1:{port}/server_info"))
            entries = graphql(port, WORKSPACE)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        return (server_info, entries) if entries and all(e["loadStatus"] == "LOADED" for e in entries) else None

    def running():
        if process.poll() is not None:
            return f"exited with {process.returncode}:\n{(root / 'dagster_dev.log').read_text()[-3000:]}"
        return None

    try:
        started = time.perf_counter()
        state["server_info"], entries = wait_for(loaded, "dagster dev answering with its code location loaded",
                                                 still_possible=running)
        state["startup_seconds"] = time.perf_counter() - started
        state["locations"] = entries
        state["nodes"] = {"/".join(n["assetKey"]["path"]): n for n in graphql(port, ASSET_NODES)["assetNodes"]}
        yield state
    finally:
        stop(state)
        log.close()


# on 2 busy cores (the suite's other worker) the daemon and code servers took over 30 s to stop
STOP_SECONDS = CEILING_SECONDS


def stop(state: dict) -> None:
    """SIGTERM to the whole process group; waits until every process of its home has gone, and SIGKILLs only what
    is left after STOP_SECONDS (the test then fails)."""
    if state["stopped"] is not None:
        return
    process, home = state["process"], state["home"]
    began = time.perf_counter()
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    while processes_of(home) and time.perf_counter() - began < STOP_SECONDS:
        time.sleep(0.5)
    left = processes_of(home)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    state["stopped"] = {"seconds": time.perf_counter() - began, "left": left, "returncode": process.poll()}


def test_the_code_location_loads(ui):
    assert ui["server_info"].get("dagster_webserver_version")
    assert [e["locationOrLoadError"]["__typename"] for e in ui["locations"]] == ["RepositoryLocation"]
    print(f"\ndagster dev up and loaded in {ui['startup_seconds']:.0f} s")


def test_the_instance_runs_one_run_at_a_time(ui):
    # the project's config/dagster.yaml: the daemon's run queue starts one run (sensor, schedule, UI) at a time
    instance = graphql(ui["port"], INSTANCE)["instance"]
    assert instance["runQueuingSupported"]
    assert instance["runQueueConfig"] == {"maxConcurrentRuns": 1}


def test_every_asset_is_in_the_graph_in_the_group_of_its_stage(ui):
    nodes = ui["nodes"]
    expected = {**CONTROL_ASSETS, **dbt_assets()}
    assert "marts/area_indicators" in expected and "staging/stg_register__persons" in expected
    missing = sorted(set(expected) - set(nodes))
    assert not missing, f"not in the UI's asset graph: {missing}"
    wrong = {key: (nodes[key]["groupName"], group) for key, group in expected.items()
             if nodes[key]["groupName"] != group}
    assert not wrong, f"asset: (group in the UI, expected group): {wrong}"
    assert not [key for key, node in nodes.items() if node["isAutoCreatedStub"]], "an asset only referenced"
    assert {node["groupName"] for node in nodes.values()} <= set(GROUPS)


def test_every_asset_is_described_owned_and_kinded(ui):
    defined = ui["nodes"]
    assert len(defined) >= 20
    undescribed = [key for key, node in defined.items()
                   if not (node["description"] or "").strip() or node["description"].startswith("dbt model ")]
    assert not undescribed, f"no description (or dbt's placeholder): {undescribed}"
    assert not [key for key, node in defined.items() if not node["owners"]], "an asset without an owner"
    assert not [key for key, node in defined.items() if not node["kinds"]], "an asset without a kind"
    assert ui["nodes"]["raw/register"]["owners"] == [{"team": "statistics-office"}]
    assert ui["nodes"]["marts/area_indicators"]["owners"] == [{"team": "social-planning"}]
    assert {"dbt", "duckdb"} <= set(ui["nodes"]["staging/stg_register__persons"]["kinds"])
    # a dbt model without a YAML description is described by the comment heading its SQL, and by its layer
    assert ui["nodes"]["staging/stg_register__persons"]["description"].startswith("One row per registered person")
    assert "Staging layer" in ui["nodes"]["staging/stg_register__persons"]["description"]
    # where each asset's data lies, as metadata
    for key in ("raw/register", "raw/deliveries", "classification/action_areas", "classification/area_classifications"):
        assert any(entry["label"].startswith("warehouse_table") for entry in ui["nodes"][key]["metadataEntries"]), key


def test_the_raw_assets_have_one_partition_per_report_cycle(ui):
    cycles = [str(cycle) for cycle in load_settings({}).config().report_cycles]
    assert cycles
    # the delivery log and raw.aggregates too: a backfill of the raw group over cycles includes them
    for key in ("raw/register", "raw/sgb2", "raw/sgb12", "raw/asylblg", "raw/deliveries", "raw/aggregates"):
        assert ui["nodes"][key]["isPartitioned"], key
        assert ui["nodes"][key]["partitionKeys"] == cycles
    assert not ui["nodes"]["marts/area_indicators"]["isPartitioned"]
    assert "ingest_deliveries" in ui["nodes"]["raw/register"]["jobNames"]
    assert "build_marts" in ui["nodes"]["published/marts"]["jobNames"]


def test_the_asset_checks_are_attached(ui):
    def checks(key: str) -> set[str]:
        answer = ui["nodes"][key]["assetChecksOrError"]
        assert answer["__typename"] == "AssetChecks", answer
        return {check["name"] for check in answer["checks"]}

    for key in ("raw/register", "raw/sgb2", "raw/sgb12", "raw/asylblg"):
        assert "rows_in_equal_accepted_plus_rejected" in checks(key)
    # dbt tests become checks of the model they test
    assert {"not_null_areas_area_id", "unique_combination_areas_area_level__area_id"} <= checks("marts/areas")
    assert "unique_indicators_indicator_id" in checks("marts/indicators")
    assert any(name.startswith("relationships_area_indicators") for name in checks("marts/area_indicators"))
    assert "only_aggregated_tables" in checks("published/marts")
    assert "every_area_classified_in_every_cycle" in checks("classification/action_areas")
    assert "every_method_classifies_every_cycle" in checks("classification/area_classifications")
    # per report cycle: loaded, built, published, report and exports
    assert "every_loaded_cycle_has_every_person_level_source" in checks("raw/deliveries")
    assert "every_loaded_cycle_built" in checks("marts/area_indicators")
    assert "every_built_cycle_published" in checks("published/marts")
    assert checks("report/bericht") == {"every_published_cycle_has_its_report"}
    assert checks("published/exports") == {"every_published_cycle_exported"}
    total = sum(len(checks(key)) for key, node in ui["nodes"].items() if node["hasAssetChecks"])
    assert total >= 40


BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""
BACKFILL_STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status error { message } runs(limit: 10) { status } }
  }
}
"""
PARTITION_STATS = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { partitionStats { numMaterialized numPartitions numFailed } }
  }
}
"""


def graphql_vars(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=CEILING_SECONDS) as response:  # noqa: S310
        answer = json.loads(response.read())
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def test_a_backfill_of_the_raw_group_with_the_delivery_log_runs(ui):
    """The UI's backfill of every raw asset, the delivery log raw/deliveries included, over every report cycle: the
    daemon runs it (one run: single-run backfill policy) and every cycle of the log is materialised."""
    env = environment(ui["root"])
    env.pop("SOCIAL_MONITOR_CITY", None)
    subprocess.run([str(BIN / "social-monitor"), "generate", "--out", str(ui["root"] / "data" / "landing"),
                    "--scale", SCALE], cwd=PROJECT_DIR, env=env, check=True, capture_output=True,
                   timeout=CEILING_SECONDS)
    cycles = [str(cycle) for cycle in load_settings({}).config().report_cycles]
    raw = [key.split("/") for key, node in ui["nodes"].items() if node["groupName"] == "raw"]
    assert ["raw", "deliveries"] in raw
    launched = graphql_vars(ui["port"], BACKFILL, {"params": {
        "partitionNames": cycles, "assetSelection": [{"path": key} for key in raw]}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished():
        backfill = graphql_vars(ui["port"], BACKFILL_STATUS, {"id": launched["backfillId"]})[
            "partitionBackfillOrError"]
        return backfill if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

    backfill = wait_for(finished, "the backfill of the raw group finished")
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    assert [run["status"] for run in backfill["runs"]] == ["SUCCESS"]  # one run for the range
    stats = graphql_vars(ui["port"], PARTITION_STATS, {"path": ["raw", "deliveries"]})["assetNodeOrError"]
    assert stats["partitionStats"] == {"numMaterialized": len(cycles), "numPartitions": len(cycles), "numFailed": 0}


def test_sigterm_stops_every_process_of_the_server(ui):
    assert processes_of(ui["home"]), "no process of the dev server found while it runs"
    stop(ui)
    stopped = ui["stopped"]
    print(f"\nstopped in {stopped['seconds']:.1f} s, exit code {stopped['returncode']}")
    assert stopped["left"] == [], f"still running after SIGTERM and {STOP_SECONDS} s: {stopped['left']}"
    assert stopped["returncode"] is not None
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        get(f"http://127.0.0.1:{ui['port']}/server_info", timeout=2)
