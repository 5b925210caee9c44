"""The code location loads, reads well in the UI, and its sensor picks up deliveries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.instance.ref import InstanceRef

from orchestration.definitions import defs
from orchestration.jobs import new_delivery_sensor
from social_monitor.layouts import delivered_sources
from social_monitor.settings import PROJECT_DIR, load_settings
from tests.deliveries import person, write_delivery
from tests.waiting import CEILING_SECONDS


@pytest.fixture(scope="module")
def graph():
    return defs.get_repository_def().asset_graph


def test_every_asset_has_a_group_and_a_description(graph):
    groups = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_external:
            continue
        groups.setdefault(node.group_name, []).append(key)
        assert node.description, key
    assert {"raw", "reference", "staging", "intermediate", "marts", "classification", "publish"} <= set(groups)


def test_raw_assets_are_partitioned_per_report_cycle(graph):
    node = graph.get(dg.AssetKey(["raw", "register"]))
    assert node.partitions_def.get_partition_keys() == ["2007", "2012", "2018", "2025"]


def test_jobs_schedule_and_sensor_are_defined():
    repo = defs.get_repository_def()
    assert {"ingest_deliveries", "build_marts"} <= set(repo.job_names)
    assert repo.get_schedule_def("nightly_build_marts").cron_schedule == "0 2 * * *"
    assert repo.get_sensor_def("new_delivery_sensor")


def test_sensor_requests_new_and_changed_deliveries_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIAL_MONITOR_LANDING_DIR", str(tmp_path))
    write_delivery(tmp_path, "register", 2018, [person("p1", "01.01.1980", "001")])
    write_delivery(tmp_path, "register", 2030, [person("p1", "01.01.1980", "001")])  # not a configured cycle

    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        first = new_delivery_sensor(context)
        assert [(r.partition_key, r.asset_selection) for r in first] == [
            ("2018", [dg.AssetKey(["raw", "register"]), dg.AssetKey(["raw", "deliveries"])])]
        second = new_delivery_sensor(context)
        assert isinstance(second, dg.SkipReason) and "2030 is not in city.yml" in second.skip_message

        write_delivery(tmp_path, "register", 2018, [person("p2", "01.01.1990", "001")])  # a corrected delivery
        third = new_delivery_sensor(context)
        assert [r.partition_key for r in third] == ["2018"]


# --- a report cycle in Dagster: real runs of a small sample city ------------------------------------------------
# The sample city is generated and materialised as `make run` does it, in two runs: the raw group over the range
# of every report cycle (which includes the delivery log raw/deliveries, a partitioned asset), then build_marts
# (dbt, classification, publication, report, exports). The Dagster instance of those runs is read back.

CYCLES = ["2007", "2012", "2018", "2025"]
PER_CYCLE_CHECKS = {  # asset -> check whose metadata has one entry per report cycle
    ("raw", "deliveries"): "every_loaded_cycle_has_every_person_level_source",
    ("marts", "area_indicators"): "every_loaded_cycle_built",
    ("classification", "action_areas"): "every_area_classified_in_every_cycle",
    ("published", "marts"): "every_built_cycle_published",
    ("report", "bericht"): "every_published_cycle_has_its_report",
    ("published", "exports"): "every_published_cycle_exported",
}


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    from tests.pipeline_env import build

    built = build(tmp_path_factory.mktemp("cycle_view"))
    built["home"] = Path(built["env"]["DAGSTER_HOME"])
    return built


def instance_of(city) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(city["home"])))


def latest_check(instance: dg.DagsterInstance, asset: tuple[str, ...], name: str):
    key = dg.AssetCheckKey(dg.AssetKey(list(asset)), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = record.event.dagster_event.event_specific_data
    return record, evaluation.passed, {label: entry.value for label, entry in evaluation.metadata.items()}


def materialize(city, *args: str) -> str:
    from tests.pipeline_env import DAGSTER, sh

    return sh(city["env"], *DAGSTER, "asset", "materialize", "-m", "orchestration.definitions", *args)


def test_a_range_run_of_the_raw_group_includes_the_delivery_log(city):
    # Before: raw/deliveries was an AssetSpec without a backfill policy, and `dagster asset materialize --select
    # 'raw/deliveries,raw/register' --partition-range 2007...2025` failed ("Partition ranges with the CLI require
    # all selected assets to have a BackfillPolicy.single_run() policy"). Now the raw group's range run has it.
    instance = instance_of(city)
    log, register = dg.AssetKey(["raw", "deliveries"]), dg.AssetKey(["raw", "register"])
    assert sorted(instance.get_materialized_partitions(log)) == CYCLES
    runs = {instance.get_latest_materialization_event(key).run_id for key in (log, register)}
    assert len(runs) == 1, "the delivery log is materialised in the raw group's run"
    assert instance.get_run_by_id(runs.pop()).tags["dagster/asset_partition_range_start"] == "2007"

    tables = {s.table for s in delivered_sources(load_settings(city["env"]).city_dir)}
    with duckdb.connect(str(city["warehouse"]), read_only=True) as con:
        for cycle in CYCLES:
            event = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=log, asset_partitions=[cycle]), limit=1).records[0]
            metadata = {label: entry.value for label, entry in event.asset_materialization.metadata.items()}
            accepted = sum(con.execute(f"select count(*) from raw.{table} where report_cycle = ?",
                                       [int(cycle)]).fetchone()[0] for table in tables)
            assert metadata["report_cycle"] == int(cycle)
            assert metadata["rows_accepted"] == accepted > 0  # the rows the raw tables hold for this cycle
            assert metadata["rows_in"] == metadata["rows_accepted"] + metadata["rows_rejected"]
            assert {"register", "sgb2", "sgb12", "asylblg"} <= set(metadata["sources_loaded"].split(", "))
            assert metadata["person_level_missing"] == "none"


def test_the_delivery_log_of_a_cycle_never_loaded_fails_with_the_cycle_named(tmp_path):
    from tests.pipeline_env import DAGSTER, environment

    env = environment(tmp_path)
    done = subprocess.run([*DAGSTER, "asset", "materialize", "-m", "orchestration.definitions", "--select",
                           "raw/deliveries", "--partition", "2012"], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=CEILING_SECONDS)
    assert done.returncode != 0
    assert "No delivery of report cycle(s) 2012 is loaded" in done.stdout + done.stderr


def test_every_cycle_shows_loaded_built_classified_published_reported_exported(city):
    instance = instance_of(city)
    with duckdb.connect(str(city["published"]), read_only=True) as con:
        published = dict(con.execute("select report_cycle, count(*) from area_indicators group by 1").fetchall())
    with duckdb.connect(str(city["warehouse"]), read_only=True) as con:
        built = dict(con.execute("select report_cycle, count(*) from marts.area_indicators group by 1").fetchall())
    assert sorted(map(str, published)) == CYCLES
    for asset, name in PER_CYCLE_CHECKS.items():
        _, passed, metadata = latest_check(instance, asset, name)
        assert passed, (asset, name, metadata)
        assert [key for key in metadata if key.isdigit()] == CYCLES, (asset, name)
    checks = {name: latest_check(instance, asset, name)[2] for asset, name in PER_CYCLE_CHECKS.items()}
    for cycle in CYCLES:
        assert checks["every_loaded_cycle_built"][cycle].startswith(f"{built[int(cycle)]} values")
        assert checks["every_built_cycle_published"][cycle].startswith(f"{published[int(cycle)]} values")
        assert checks["every_published_cycle_has_its_report"][cycle] == f"bericht_{cycle}.html: ok"
        assert checks["every_published_cycle_exported"][cycle].startswith("ok: ")
    report = instance.get_latest_materialization_event(dg.AssetKey(["report", "bericht"])).asset_materialization
    assert report.metadata["report_cycles_written"].value == ", ".join(CYCLES)


def test_one_cycles_report_is_rerun_alone(city):
    from orchestration.checks import every_published_cycle_has_its_report
    from orchestration.resources import PipelineSettings

    folder = Path(city["published"]).parent / "report"
    pipeline = PipelineSettings(landing_dir=str(city["root"]), published_path=str(city["published"]),
                                config_path=str(load_settings(city["env"]).config_path))
    (folder / "bericht_2012.html").unlink()  # lost: the check names the cycle to rerun
    failed = every_published_cycle_has_its_report(pipeline=pipeline)
    assert not failed.passed and failed.metadata["cycles_to_rerun"].value == "2012"
    assert failed.metadata["2012"].value == "bericht_2012.html: missing"
    before = {path.name: path.stat().st_mtime_ns for path in folder.glob("bericht_*.html")}

    logs = materialize(city, "--select", "report/bericht",
                       "--config-json", json.dumps({"ops": {"report__bericht": {"config": {"cycles": [2012]}}}}))
    assert "report written for report cycle(s) 2012" in logs
    after = {path.name: path.stat().st_mtime_ns for path in folder.glob("bericht_*.html")}
    assert sorted(after) == [f"bericht_{cycle}.html" for cycle in CYCLES]
    assert {name: after[name] for name in before} == before, "another cycle's report was written again"

    instance = instance_of(city)
    report = instance.get_latest_materialization_event(dg.AssetKey(["report", "bericht"]))
    assert report.asset_materialization.metadata["report_cycles_written"].value == "2012"
    record, passed, metadata = latest_check(instance, ("report", "bericht"), "every_published_cycle_has_its_report")
    assert record.run_id == report.run_id and passed and metadata["cycles_to_rerun"] == "none"


def test_a_cycle_not_published_is_refused_by_name(city):
    from tests.pipeline_env import DAGSTER

    done = subprocess.run([*DAGSTER, "asset", "materialize", "-m", "orchestration.definitions", "--select",
                           "published/exports", "--config-json",
                           json.dumps({"ops": {"published__exports": {"config": {"cycles": [2019]}}}})],
                          cwd=PROJECT_DIR, env=city["env"], capture_output=True, text=True, timeout=CEILING_SECONDS)
    assert done.returncode != 0
    assert "report cycle(s) 2019 not in" in done.stdout + done.stderr


def test_the_exports_check_names_the_cycle_of_a_damaged_export(city, tmp_path):
    from orchestration.checks import every_published_cycle_exported
    from orchestration.resources import PipelineSettings

    copy = tmp_path / "published"
    shutil.copytree(Path(city["published"]).parent, copy, ignore=shutil.ignore_patterns("report"))
    (copy / "marts.duckdb").touch()  # the published file as old as the exports copied with it
    for path in (copy / "exports").rglob("*"):
        os.utime(path)
    pipeline = PipelineSettings(landing_dir=str(tmp_path), published_path=str(copy / "marts.duckdb"),
                                config_path=str(load_settings(city["env"]).config_path))
    assert every_published_cycle_exported(pipeline=pipeline).passed
    (copy / "exports" / "2018" / "areas.parquet").unlink()
    result = every_published_cycle_exported(pipeline=pipeline)
    assert not result.passed and result.metadata["cycles_to_rerun"].value == "2018"
    assert result.metadata["2018"].value == "areas.parquet missing or old"


def test_the_runs_dbt_build_parses_only_what_changed(city):
    """The manifest is prepared with the run's vars and profile (orchestration/dbt_project.py), so the run's `dbt
    build` parses partially; with other vars or another profile dbt says "Unable to do partial parsing" and
    parses the whole project on every run (issue 14: about 5 s of every run)."""
    instance = instance_of(city)
    run_id = instance.get_latest_materialization_event(dg.AssetKey(["marts", "area_indicators"])).run_id
    # dbt's target folder is the data folder's (orchestration/dbt_project.py), not the source tree's
    [log] = (load_settings(city["env"]).data_dir / "dbt_target").glob(f"dbt_models-{run_id[:7]}-*/dbt.log")
    text = log.read_text(encoding="utf-8")
    assert "Partial parsing enabled" in text
    assert "Unable to do partial parsing" not in text


def test_the_dbt_resource_answers_its_version_question_without_importing_dbt():
    """dagster-dbt asks `<dbt_executable> --version` once per run (to tell dbt Core from dbt Fusion); `dbt --version`
    imports dbt and asks PyPI for the latest release, seconds of every run (issue 14). The resource's executable
    answers with the installed dbt-core's version (dbt's own declaration, dbt.version) and never imports dbt."""
    from dbt.version import __version__ as dbt_version

    executable = defs.resources["dbt"].dbt_executable
    # Python lists every module it imports on stderr (PYTHONPROFILEIMPORTTIME); `dbt --version` would list dbt's
    done = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert f"installed: {dbt_version}" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "importlib.metadata" in imported  # the listing works
    assert not {name for name in imported if name == "dbt" or name.startswith("dbt.")}


def test_the_runs_dbt_build_runs_through_the_resources_executable(city):
    """The run's `dbt build` is dbt's own command line, started through the resource's executable (whose `--version`
    costs no dbt import), and it built the marts."""
    instance = instance_of(city)
    run_id = instance.get_latest_materialization_event(dg.AssetKey(["marts", "area_indicators"])).run_id
    commands = [entry.user_message for entry in instance.all_logs(run_id)
                if entry.step_key == "dbt_models" and entry.user_message.startswith("Running dbt command:")]
    assert len(commands) == 1
    # without dbt's unit tests: the test suite runs them (tests/test_pipeline.py::test_dbt_unit_tests_pass)
    assert commands[0].startswith(f"Running dbt command: `{defs.resources['dbt'].dbt_executable} build "
                                  "--exclude-resource-type unit_test --vars ")
