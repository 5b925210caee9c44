"""The dbt project as Dagster sees it. dagster-dbt prepares the manifest (``dbt parse``); it is never
committed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from social_monitor.settings import DBT_PROJECT_DIR, load_settings

# dbt runs from this environment even when its bin folder is not on PATH (a bare `.venv/bin/dagster …`).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
# dbt's profile reads the warehouse path from this variable; point it at the same file the assets use.
os.environ.setdefault("SOCIAL_MONITOR_WAREHOUSE", str(load_settings().warehouse_path))

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _manifest_is_stale() -> bool:
    """No manifest yet, or a model, test, seed, macro or the project file changed after it was written."""
    if not dbt_project.manifest_path.exists():
        return True
    written = dbt_project.manifest_path.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", *[
        path for folder in ("models", "tests", "seeds", "macros") for path in (DBT_PROJECT_DIR / folder).rglob("*")
        if path.is_file()]]
    return any(path.stat().st_mtime > written for path in sources)


if _manifest_is_stale():
    # Outside `dagster dev` (tests, `dagster asset materialize`) nothing else prepares the manifest.
    dbt_project.preparer.prepare(dbt_project)
else:
    dbt_project.prepare_if_dev()
