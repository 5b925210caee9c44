"""Where the pipeline reads and writes, and the city's configuration.

A city is a folder (``config/<city>/``): its settings (``city.yml``) and everything else that differs
between cities. ``SOCIAL_MONITOR_CITY`` selects it, by the name of a folder in ``config/`` or by a path
(default ``dortmund``, the sample city). Every other path has a default inside the project folder and can be
moved by an environment variable:

- ``SOCIAL_MONITOR_DATA_DIR``: the data folder (default ``<project>/data/<city folder name>``, so two
  cities never share a warehouse)
- ``SOCIAL_MONITOR_LANDING_DIR``: where deliveries arrive (default ``<data>/landing``)
- ``SOCIAL_MONITOR_WAREHOUSE``: the private DuckDB warehouse (default ``<data>/warehouse/warehouse.duckdb``)
- ``SOCIAL_MONITOR_PUBLISHED``: the published file BI tools read (default ``<data>/published/marts.duckdb``)
- ``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT``: what DuckDB may hold in memory while loading a delivery and in dbt
  before it spills to disk (default ``2GB``)
- ``SOCIAL_MONITOR_SHARED_DIR``: the shared folder of published reference facts and validation data that the
  tests, the MSS comparison and the Berlin sample's builder read (default ``../shared`` beside the project,
  then this machine's ``/work/shared``; :func:`shared_candidates`)
- ``SOCIAL_MONITOR_RUN_LOCK_WAIT_SECONDS``: how long a run waits for another run that holds the warehouse
  (social_monitor/storage.py) before it gives up with a message naming that run (default 3600; 0 refuses
  at once)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
SHARED_DIR_ENV = "SOCIAL_MONITOR_SHARED_DIR"


def shared_candidates(env: Mapping[str, str] | None = None) -> list[Path]:
    """Where the shared folder may be, in order: ``$SOCIAL_MONITOR_SHARED_DIR``, ``../shared`` beside the project,
    this machine's ``/work/shared`` (for a clone elsewhere). Callers take the first that holds what they read."""
    env = os.environ if env is None else env
    given = [Path(env[SHARED_DIR_ENV])] if env.get(SHARED_DIR_ENV) else []
    return [*given, PROJECT_DIR.parent / "shared", Path("/work/shared")]


# Variables whose defaults follow the data folder (load_settings; DBT_TARGET_PATH: orchestration/dbt_project.py
# sets it for the process). An environment made for another data folder (a test, the benchmark) drops them.
FOLLOW_THE_DATA_DIR = ("SOCIAL_MONITOR_LANDING_DIR", "SOCIAL_MONITOR_WAREHOUSE", "SOCIAL_MONITOR_PUBLISHED",
                       "DBT_TARGET_PATH")
# the folder of the shipped city folders, and the city run when SOCIAL_MONITOR_CITY is not set
CITIES_DIR = PROJECT_DIR / "config"
DEFAULT_CITY = "dortmund"
CITY_FILE = "city.yml"
# how long a run waits for the run that holds the warehouse (social_monitor/storage.py) before it gives up
DEFAULT_RUN_LOCK_WAIT_SECONDS = 3600.0
# The criteria a city may combine into its migration background (city.yml ``migration_background``; their
# SQL: dbt_project/macros/migration_background.sql): a person has one when any declared criterion applies.
MIGRATION_BACKGROUND_CRITERIA = {
    "non_german": "no German nationality",
    "second_nationality": "a second nationality other than German",
    "born_abroad": "born abroad",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    landing_dir: Path
    warehouse_path: Path
    published_path: Path
    city_dir: Path
    run_lock_wait_seconds: float = DEFAULT_RUN_LOCK_WAIT_SECONDS

    @property
    def config_path(self) -> Path:
        return self.city_dir / CITY_FILE

    def config(self) -> CityConfig:
        return CityConfig.from_file(self.config_path)


# The publisher block of city.yml (``publisher:``): who publishes the report, and how. Required keys, then
# optional ones with their meaning; PUBLISHER_RESIDENTS are the two forms of the city's residents term.
PUBLISHER_KEYS = {
    "name": "Herausgeber (the office that publishes, e.g. Stadt Dortmund, Dortmunder Statistik)",
    "address": "postal address, a list of lines",
    "email": "contact e-mail address",
    "imprint": "Impressum text (responsible person or office, rights of use)",
    "sources": "the data sources named under every map and table",
    "residents": "the city's term for residents, set once: {plural: ..., dative: ...}",
}
PUBLISHER_OPTIONAL = {
    "phone": "contact telephone number",
    "synthetic": "true: the data are a synthetic sample, and every page says so",
}
PUBLISHER_RESIDENTS = ("plural", "dative")


@dataclass(frozen=True)
class Publisher:
    """Who publishes the report (city.yml ``publisher:``), checked by :meth:`from_config`."""

    name: str
    address: tuple[str, ...]
    email: str
    imprint: str
    sources: str
    residents: str  # "Einwohnerinnen und Einwohner" (nominative/accusative/genitive plural)
    residents_dative: str  # "Einwohnerinnen und Einwohnern"
    phone: str = ""
    synthetic: bool = False

    @classmethod
    def from_config(cls, path: Path, declared: object) -> Publisher:
        where = f"{path}: publisher"
        keys = "; ".join(f"{key}: {text}" for key, text in {**PUBLISHER_KEYS, **PUBLISHER_OPTIONAL}.items())
        if declared is None:
            raise ValueError(f"{where}: missing; the report names its Herausgeber, imprint, contact and sources from "
                             f"it. Keys: {keys}")
        if not isinstance(declared, Mapping):
            raise ValueError(f"{where} must be a mapping with the keys {keys}")
        unknown = sorted(str(key) for key in declared if key not in {**PUBLISHER_KEYS, **PUBLISHER_OPTIONAL})
        missing = [key for key in PUBLISHER_KEYS if key not in declared]
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {unknown}, missing keys {missing}; the keys are {keys}")
        meanings = {**PUBLISHER_KEYS, **PUBLISHER_OPTIONAL}
        for key in ("name", "email", "imprint", "sources", *(["phone"] if "phone" in declared else [])):
            if not isinstance(declared[key], str) or not declared[key].strip():
                raise ValueError(f"{where}.{key} must be a non-empty text ({meanings[key]})")
        address = declared["address"]
        if not isinstance(address, list) or not address or not all(isinstance(a, str) and a.strip() for a in address):
            raise ValueError(f"{where}.address must be a list of non-empty lines, got {address!r}")
        if "@" not in declared["email"].strip(" @"):
            raise ValueError(f"{where}.email is not an e-mail address: {declared['email']!r}")
        residents = declared["residents"]
        if (not isinstance(residents, Mapping) or set(residents) != set(PUBLISHER_RESIDENTS)
                or not all(isinstance(v, str) and v.strip() for v in residents.values())):
            raise ValueError(f"{where}.residents must give the city's residents term in both forms, e.g. "
                             "{plural: Einwohnerinnen und Einwohner, dative: Einwohnerinnen und Einwohnern}, got "
                             f"{residents!r}")
        synthetic = declared.get("synthetic", False)
        if not isinstance(synthetic, bool):
            raise ValueError(f"{where}.synthetic must be true or false, got {synthetic!r}")
        return cls(name=declared["name"].strip(), address=tuple(a.strip() for a in address),
                   email=declared["email"].strip(), imprint=declared["imprint"].strip(),
                   sources=declared["sources"].strip(), residents=residents["plural"].strip(),
                   residents_dative=residents["dative"].strip(), phone=str(declared.get("phone", "")).strip(),
                   synthetic=synthetic)


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
    # the report (social_monitor/report): map_levels, the levels drawn as maps
    report: Mapping[str, object] | None = None
    # the criteria of the migration background the city applies (MIGRATION_BACKGROUND_CRITERIA), sorted
    migration_background: tuple[str, ...] = ()
    config_dir: Path = CITIES_DIR / DEFAULT_CITY
    # who publishes (city.yml ``publisher:``), checked when present; the report needs it (publisher_or_error)
    publisher: Publisher | None = None

    @classmethod
    def from_file(cls, path: Path) -> CityConfig:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        missing = [key for key in ("report_cycles", "action_areas", "migration_background") if key not in raw]
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
            report=raw.get("report"),
            migration_background=migration_background(path, raw["migration_background"]),
            config_dir=Path(path).resolve().parent,
            publisher=Publisher.from_config(path, raw["publisher"]) if raw.get("publisher") is not None else None,
        )

    def publisher_or_error(self) -> Publisher:
        """The publisher block; its absence is an error naming city.yml and the keys to declare."""
        if self.publisher is None:
            Publisher.from_config(self.config_dir / CITY_FILE, None)
        return self.publisher

    def dbt_vars(self) -> dict[str, object]:
        """The city's settings dbt reads as vars (``dbt build --vars``), read once from city.yml."""
        return {"migration_background": list(self.migration_background)}

    def dbt_vars_json(self) -> str:
        """``dbt_vars`` as the JSON text ``dbt --vars`` takes; the same text at parse time and at run time, so
        dbt's partial parsing sees the same vars."""
        return json.dumps(self.dbt_vars(), sort_keys=True)

    def methods(self) -> list:
        """The configured classification methods, loaded and checked (paths resolved beside the config)."""
        from social_monitor.classification.methods import load_method

        methods = []
        for entry in self.classification_methods:
            if isinstance(entry, str) and (entry.endswith((".yml", ".yaml")) or "/" in entry):
                entry = self.config_dir / entry
            methods.append(load_method(entry))
        # the published tables and the workbook name each dimension in German: declared once, in the method (its
        # own name_de or the one of the method it extends)
        unnamed = [f"method {method.id}, dimension {d.get('id')}" for method in methods
                   for d in method.definition.get("dimensions", ())
                   if isinstance(d, dict) and not str(d.get("name_de") or "").strip()]
        if unnamed:
            raise ValueError(f"{self.config_dir / CITY_FILE}: classification_methods: no German name (name_de, e.g. "
                             f"name_de: Status-Index) for {'; '.join(unnamed)}")
        ids = [m.id for m in methods]
        if len(set(ids)) != len(ids):
            raise ValueError(f"classification_methods: method ids repeat: {', '.join(ids)}")
        return methods


def migration_background(path: Path, declared: object) -> tuple[str, ...]:
    """The criteria of city.yml's ``migration_background`` that apply: a mapping of every criterion of
    MIGRATION_BACKGROUND_CRITERIA to true or false, at least one true."""
    known = ", ".join(f"{name} ({text})" for name, text in MIGRATION_BACKGROUND_CRITERIA.items())
    where = f"{path}: migration_background"
    if not isinstance(declared, Mapping):
        raise ValueError(f"{where} must map each criterion to true or false: {known}")
    unknown = sorted(str(key) for key in declared if key not in MIGRATION_BACKGROUND_CRITERIA)
    missing = [key for key in MIGRATION_BACKGROUND_CRITERIA if key not in declared]
    if unknown or missing:
        raise ValueError(f"{where}: unknown criteria {unknown}, missing {missing}; the criteria are {known}")
    not_bool = sorted(str(key) for key, value in declared.items() if not isinstance(value, bool))
    if not_bool:
        raise ValueError(f"{where}: {', '.join(not_bool)} must be true or false")
    applied = tuple(sorted(key for key, value in declared.items() if value))
    if not applied:
        raise ValueError(f"{where}: at least one criterion must be true ({known})")
    return applied


def dbt_vars_json(settings: Settings | None = None) -> str:
    """The city's dbt vars as the JSON text ``dbt --vars`` takes (for a dbt call outside the pipeline)."""
    settings = load_settings() if settings is None else settings
    return settings.config().dbt_vars_json()


def city_dir(name_or_path: str | os.PathLike) -> Path:
    """The city folder: a folder name in config/ (``dortmund``) or a path to a folder holding city.yml."""
    text = str(name_or_path).strip()
    if not text:
        raise ValueError(f"SOCIAL_MONITOR_CITY is empty: give a city folder's name in {CITIES_DIR} or its path")
    is_name = "/" not in text and os.sep not in text and text not in (".", "..")
    folder = (CITIES_DIR / text if is_name else Path(text)).resolve()
    if not (folder / CITY_FILE).is_file():
        shipped = sorted(p.name for p in CITIES_DIR.iterdir() if (p / CITY_FILE).is_file())
        raise ValueError(f"SOCIAL_MONITOR_CITY={text!r}: {folder} is not a city folder (it has no {CITY_FILE}); "
                         f"the shipped cities are {', '.join(shipped)}")
    return folder


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    if "SOCIAL_MONITOR_CONFIG" in env:
        raise ValueError("SOCIAL_MONITOR_CONFIG is no longer read: a city is a folder now; set SOCIAL_MONITOR_CITY "
                         "to the folder that holds its city.yml (README: Your own city)")
    city = city_dir(env.get("SOCIAL_MONITOR_CITY") or DEFAULT_CITY)
    data_dir = Path(env.get("SOCIAL_MONITOR_DATA_DIR", PROJECT_DIR / "data" / city.name)).resolve()
    return Settings(
        data_dir=data_dir,
        landing_dir=Path(env.get("SOCIAL_MONITOR_LANDING_DIR", data_dir / "landing")).resolve(),
        warehouse_path=Path(env.get("SOCIAL_MONITOR_WAREHOUSE", data_dir / "warehouse" / "warehouse.duckdb")).resolve(),
        published_path=Path(env.get("SOCIAL_MONITOR_PUBLISHED", data_dir / "published" / "marts.duckdb")).resolve(),
        city_dir=city,
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


def copy_city(source: str | os.PathLike, target: Path, **changes: object) -> Path:
    """A copy of a city folder at ``target`` with the top-level keys of its city.yml replaced by ``changes``
    (for a benchmark or a test that runs a variant of a shipped city)."""
    import shutil

    shutil.copytree(city_dir(source), target)
    config_file = target / CITY_FILE
    if changes:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        config.update(changes)
        config_file.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target
