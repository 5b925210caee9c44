"""A sample city materialised end to end in a temporary folder, as `make run` does it: the real generator,
real Dagster runs (CLI, in-process executor, a temporary DAGSTER_HOME), real dbt builds into a real DuckDB
file, and the published file. Shared by the end-to-end and the fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from social_monitor.settings import FOLLOW_THE_DATA_DIR, PROJECT_DIR
from tests.waiting import CEILING_SECONDS

BIN = Path(sys.executable).parent
SCALE = "0.1"
DAGSTER = [str(BIN / "dagster")]
INGEST = [*DAGSTER, "asset", "materialize", "-m", "orchestration.definitions", "--select", "group:raw"]
BUILD_MARTS = [*DAGSTER, "job", "execute", "-m", "orchestration.definitions", "-j", "build_marts"]


def environment(root: Path) -> dict[str, str]:
    env = {**os.environ, "SOCIAL_MONITOR_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "dagster_home")}
    for variable in FOLLOW_THE_DATA_DIR:
        env.pop(variable, None)
    (root / "dagster_home").mkdir(exist_ok=True)
    # no PDFs of the sample's reports (chromium takes 15-30 s per cycle): tests/test_report.py prints and checks them
    env.setdefault("SOCIAL_MONITOR_REPORT_PDF", "no")
    return env


def sh(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(args, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=CEILING_SECONDS)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def build(root: Path) -> dict[str, object]:
    env = environment(root)
    sh(env, str(BIN / "social-monitor"), "generate", "--out", str(root / "data" / "landing"), "--scale", SCALE)
    logs = sh(env, *INGEST, "--partition-range", "2007...2025")
    logs += sh(env, *BUILD_MARTS)
    printed = sh(env, str(BIN / "social-monitor"), "action-areas")
    return {"root": root, "env": env, "logs": logs, "printed": printed,
            "published": root / "data" / "published" / "marts.duckdb",
            "warehouse": root / "data" / "warehouse" / "warehouse.duckdb"}
