"""Resources: the warehouse connection (and its run lock) and the dbt CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import dbt_project
from social_monitor.settings import DEFAULT_RUN_LOCK_WAIT_SECONDS, load_settings
from social_monitor.storage import RunLock, RunLockBusy, storage_problem


@contextmanager
def storage_failures(written: Sequence[Path | str] = ()) -> Iterator[None]:
    """A locked DuckDB file or a full disk raised inside becomes a ``dg.Failure`` whose description is one
    line naming the file and its holder, or the full file system (social_monitor.storage; ``written``: where
    the work writes, for an error that names no file); the original error stays its cause. Any other error
    passes unchanged."""
    try:
        yield
    except Exception as error:
        line = storage_problem(error, written)
        if line is None or isinstance(error, dg.Failure):
            raise
        raise dg.Failure(description=line) from error


class WarehouseResource(dg.ConfigurableResource):
    """The private DuckDB warehouse (person-level rows). One writer at a time; never opened by BI tools.

    Every run that uses it holds the warehouse's run lock (``<warehouse>.lock``) from its start to its end:
    Dagster's run queue (``concurrency: runs: max_concurrent_runs: 1`` in config/dagster.yaml) serialises
    the runs the daemon launches (sensor, schedule, UI), and the lock serialises those with the runs of
    `dagster asset materialize` / `dagster job execute`, which do not pass the queue. A run that finds the
    lock taken waits up to ``lock_wait_seconds`` and then fails with one line naming the run that holds it."""

    path: str
    lock_wait_seconds: float = DEFAULT_RUN_LOCK_WAIT_SECONDS

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseResource]:
        run_id = context.run.run_id if context.run is not None else ""
        on_wait = context.log.warning if context.log is not None else None
        try:
            with RunLock(self.path).held(run_id, wait_seconds=self.lock_wait_seconds, on_wait=on_wait):
                yield self
        except RunLockBusy as busy:  # raised only on entering: the run never started writing
            raise dg.Failure(description=str(busy)) from None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with storage_failures([self.path]):
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
    # the city folder (its geography/ and the rest); empty: the folder of config_path
    city_dir: str = ""

    def city_folder(self) -> Path:
        return Path(self.city_dir) if self.city_dir else Path(self.config_path).parent


def build_resources() -> dict[str, object]:
    settings = load_settings()
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path),
                                       lock_wait_seconds=settings.run_lock_wait_seconds),
        "pipeline": PipelineSettings(
            landing_dir=str(settings.landing_dir),
            published_path=str(settings.published_path),
            config_path=str(settings.config_path),
            city_dir=str(settings.city_dir),
        ),
        # dbt's own command line, except that dagster-dbt's `--version` question per run costs no dbt import and no
        # PyPI request (orchestration/dbt_cli.py); installed beside this interpreter by the project's scripts
        "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(dbt_project.project_dir),
                              dbt_executable=str(Path(sys.executable).parent / "social-monitor-dbt")),
    }
