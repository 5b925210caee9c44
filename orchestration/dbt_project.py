"""The dbt project as Dagster sees it. dagster-dbt prepares the manifest (``dbt parse``); it is never
committed."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from social_monitor.settings import DBT_PROJECT_DIR, dbt_vars_json, load_settings

# dbt runs from this environment even when its bin folder is not on PATH (a bare `.venv/bin/dagster …`).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
SETTINGS = load_settings()
# dbt's profile reads the warehouse path from this variable; point it at the same file the assets use.
os.environ.setdefault("SOCIAL_MONITOR_WAREHOUSE", str(SETTINGS.warehouse_path))
# dbt's artefacts (the manifest, the partial-parse state, each run's target folder) belong to the data folder
# they were parsed for, not to the shared source tree: two cities or two test runs never parse over each other.
TARGET = Path(os.environ.setdefault("DBT_TARGET_PATH", str(SETTINGS.data_dir / "dbt_target")))

# The manifest is parsed with the profile and the vars of the run (dbt_models passes the same --vars), so the
# run's `dbt build` parses only what changed (dagster-dbt copies target/partial_parse.msgpack into each run's
# target folder); with other vars or another profile dbt re-parses the whole project on every run.
PARSE_ARGS = ["parse", "--quiet", "--vars", dbt_vars_json(SETTINGS)]
# the variables profiles.yml reads (``env_var('…')``), read from the profile itself rather than listed again
PROFILE_ENV = tuple(sorted(set(re.findall(r"env_var\(\s*['\"]([A-Za-z0-9_]+)['\"]",
                                          (DBT_PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8")))))
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=TARGET,
                         prepare_project_cli_args=PARSE_ARGS)


# What the manifest was parsed with (the vars and the profile's variables): another city or warehouse means the
# manifest and dbt's partial-parse state are of other settings, so they are prepared again.
PARSED_WITH = TARGET / "parsed_with.json"


def _parsed_with() -> str:
    return json.dumps({"args": PARSE_ARGS, "env": {name: os.environ.get(name) for name in PROFILE_ENV}}, sort_keys=True)


def _manifest_is_stale() -> bool:
    """No manifest yet, a model, test, seed, macro or the project file changed after it was written, or it was
    parsed with other vars or another profile."""
    if not dbt_project.manifest_path.exists() or not PARSED_WITH.exists():
        return True
    if PARSED_WITH.read_text(encoding="utf-8") != _parsed_with():
        return True
    written = dbt_project.manifest_path.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml", *[
        path for folder in ("models", "tests", "seeds", "macros") for path in (DBT_PROJECT_DIR / folder).rglob("*")
        if path.is_file()]]
    return any(path.stat().st_mtime > written for path in sources)


def prepare() -> None:
    """Parse the project now (``make prepare``, or on import when the manifest is stale)."""
    dbt_project.preparer.prepare(dbt_project)
    PARSED_WITH.write_text(_parsed_with(), encoding="utf-8")


if _manifest_is_stale():
    # Outside `dagster dev` (tests, `dagster asset materialize`) nothing else prepares the manifest.
    prepare()
else:
    dbt_project.prepare_if_dev()
