"""Resources: the warehouse connection and the dbt CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import dbt_project
from social_monitor.settings import load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The private DuckDB warehouse (person-level rows). One writer at a time; never opened by BI tools."""

    path: str

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path)
        try:
            yield con
        finally:
            con.close()


class PipelineSettings(dg.ConfigurableResource):
    """Where deliveries land, where the published file goes, and the city configuration."""

    landing_dir: str
    published_path: str
    config_path: str


def build_resources() -> dict[str, object]:
    settings = load_settings()
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
        "pipeline": PipelineSettings(
            landing_dir=str(settings.landing_dir),
            published_path=str(settings.published_path),
            config_path=str(settings.config_path),
        ),
        "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(dbt_project.project_dir)),
    }

