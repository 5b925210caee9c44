"""The code location loads, reads well in the UI, and its sensor picks up deliveries."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.definitions import defs
from orchestration.jobs import new_delivery_sensor
from tests.deliveries import person, write_delivery


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
        assert [(r.partition_key, r.asset_selection) for r in first] == [("2018", [dg.AssetKey(["raw", "register"])])]
        second = new_delivery_sensor(context)
        assert isinstance(second, dg.SkipReason) and "2030 is not in city.yml" in second.skip_message

        write_delivery(tmp_path, "register", 2018, [person("p2", "01.01.1990", "001")])  # a corrected delivery
        third = new_delivery_sensor(context)
        assert [r.partition_key for r in third] == ["2018"]
