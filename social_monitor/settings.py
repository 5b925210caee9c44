"""Where the pipeline reads and writes, and the city's configuration.

Every path has a default inside the project folder and can be moved by an environment variable:

- ``SOCIAL_MONITOR_DATA_DIR``: the data folder (default ``<project>/data``)
- ``SOCIAL_MONITOR_LANDING_DIR``: where deliveries arrive (default ``<data>/landing``)
- ``SOCIAL_MONITOR_WAREHOUSE``: the private DuckDB warehouse (default ``<data>/warehouse/warehouse.duckdb``)
- ``SOCIAL_MONITOR_PUBLISHED``: the published file BI tools read (default ``<data>/published/marts.duckdb``)
- ``SOCIAL_MONITOR_CONFIG``: the city configuration (default ``<project>/config/city.yml``)
- ``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT``: what DuckDB may hold in memory while loading a delivery and in dbt
  before it spills to disk (default ``2GB``)
- ``SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS``: how long a run waits for another run that holds the warehouse
  (social_monitor/storage.py) before it gives up with a message naming that run (default 3600; 0 refuses
  at once)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
# how long a run waits for the run that holds the warehouse (social_monitor/storage.py) before it gives up
DEFAULT_RUN_LOCK_WAIT_SECONDS = 3600.0


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    landing_dir: Path
    warehouse_path: Path
    published_path: Path
    config_path: Path
    run_lock_wait_seconds: float = DEFAULT_RUN_LOCK_WAIT_SECONDS

    def config(self) -> CityConfig:
        return CityConfig.from_file(self.config_path)


@dataclass(frozen=True)
class CityConfig:
    city_name: str
    report_cycles: tuple[int, ...]
    ingest_policy: str
    action_areas: Mapping[str, object]
    # further classification methods run on the marts: shipped names, YAML paths (relative to the config
    # file) or inline mappings; see social_monitor/classification/methods.py
    classification_methods: tuple[object, ...] = ()
    # under the quarantine policy: the largest share of a delivery's rows that may be quarantined
    quarantine_max_share: float = 0.01
    # statistical disclosure control of the published file (social_monitor/disclosure.py)
    publication: Mapping[str, object] | None = None
    config_dir: Path = PROJECT_DIR / "config"

    @classmethod
    def from_file(cls, path: Path) -> CityConfig:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        missing = [key for key in ("report_cycles", "action_areas") if key not in raw]
        if missing:
            raise ValueError(f"{path}: missing {', '.join(missing)}")
        cycles = tuple(sorted(int(c) for c in raw["report_cycles"]))
        if len(set(cycles)) != len(cycles) or not cycles:
            raise ValueError(f"{path}: report_cycles must be distinct years, got {raw['report_cycles']}")
        return cls(
            city_name=str(raw.get("city_name", "")),
            report_cycles=cycles,
            ingest_policy=str(raw.get("ingest_policy", "fail")),
            action_areas=raw["action_areas"],
            classification_methods=tuple(raw.get("classification_methods") or ()),
            quarantine_max_share=float(raw.get("quarantine_max_share", 0.01)),
            publication=raw.get("publication"),
            config_dir=Path(path).resolve().parent,
        )

    def methods(self) -> list:
        """The configured classification methods, loaded and checked (paths resolved beside the config)."""
        from social_monitor.classification.methods import load_method

        methods = []
        for entry in self.classification_methods:
            if isinstance(entry, str) and (entry.endswith((".yml", ".yaml")) or "/" in entry):
                entry = self.config_dir / entry
            methods.append(load_method(entry))
        ids = [m.id for m in methods]
        if len(set(ids)) != len(ids):
            raise ValueError(f"classification_methods: method ids repeat: {', '.join(ids)}")
        return methods


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("SOCIAL_MONITOR_DATA_DIR", PROJECT_DIR / "data")).resolve()
    return Settings(
        data_dir=data_dir,
        landing_dir=Path(env.get("SOCIAL_MONITOR_LANDING_DIR", data_dir / "landing")).resolve(),
        warehouse_path=Path(env.get("SOCIAL_MONITOR_WAREHOUSE", data_dir / "warehouse" / "warehouse.duckdb")).resolve(),
        published_path=Path(env.get("SOCIAL_MONITOR_PUBLISHED", data_dir / "published" / "marts.duckdb")).resolve(),
        config_path=Path(env.get("SOCIAL_MONITOR_CONFIG", PROJECT_DIR / "config" / "city.yml")).resolve(),
        run_lock_wait_seconds=_seconds(env, "SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS", DEFAULT_RUN_LOCK_WAIT_SECONDS),
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{name}={text!r} is not a number of seconds (0 or more)")
    return seconds
