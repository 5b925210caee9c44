"""A new pseudonym key: the first step of the full reload it needs (``social-monitor rekey``, ``make rekey``).

Every person key in the warehouse is a pseudonym under one key (social_monitor.pseudonyms), and the loader
refuses a delivery under any other key. To change the key, every cycle of every source must be loaded
again under the new one. ``make rekey`` does it in two steps:

1. this command: it checks that the landing folder holds a readable manifest and a regular data file for
   every source of every configured report cycle (so the reload can bring every cycle back), and that the
   warehouse holds no cycle outside the configuration; if not, it stops and changes nothing. Then it empties
   the raw person tables, ``raw.deliveries`` and ``raw.rejected_rows`` in ONE transaction.
2. ``dagster asset materialize --select '*' --partition-range <first>...<last>``: the normal materialisation
   reloads every cycle under the key in the environment and rebuilds everything downstream.

The warehouse never holds two keys: the clearing is one transaction, and every load compares its key with
the fingerprints in ``raw.deliveries``, so after the clearing the first load sets the key and a load under
any other key (the old one, from a process started before the change) is refused. If the reload stops
half-way, the warehouse holds some cycles under the new key and none under the old; running ``make rekey``
(or ``make materialize``) again completes it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import duckdb

from schemas.aggregates import AGGREGATE_TABLE
from social_monitor.deliveries import SOURCES, ManifestError, data_file_problem, find_manifest, reference_date_of
from social_monitor.ingest import ensure_raw_schema
from social_monitor.layouts import Layouts, load_layouts
from social_monitor.pseudonyms import KEY_ENV, PseudonymKey
from social_monitor.settings import load_settings

DESCRIPTION = (
    "First step of a full reload under a new pseudonym key (`make rekey` runs it, then reloads every cycle "
    "through Dagster): checks that every configured cycle's deliveries are in the landing folder, then empties "
    "the raw person tables, raw.deliveries and raw.rejected_rows of the warehouse in one transaction. Changes "
    "nothing if a delivery is missing."
)
MAX_LISTED = 10


class RekeyError(ValueError):
    """The warehouse cannot be cleared for a reload: the reload could not bring every cycle back."""


@dataclass(frozen=True)
class Cleared:
    deliveries: int  # records removed from raw.deliveries
    fingerprints: list[str | None]  # the keys they were loaded under (None: before fingerprints were recorded)


def reload_problems(con: duckdb.DuckDBPyConnection, landing_dir: Path, report_cycles: tuple[int, ...],
                    layouts: Layouts) -> list[str]:
    """Why a reload from ``landing_dir`` could not bring back every cycle; empty if it can (deliveries named
    by the city's ``layouts``)."""
    problems = []
    # an aggregate delivery need not exist for every cycle: it must be there again only where one was loaded
    loaded = set(con.execute("select source, report_cycle from raw.deliveries").fetchall())
    for cycle in report_cycles:
        for source in layouts.values():
            try:
                manifest = find_manifest(landing_dir, source, cycle)
            except ManifestError as exc:
                problems.append(str(exc))
                continue
            if manifest is None and source.is_aggregate and (source.name, cycle) not in loaded:
                continue
            if manifest is None:
                problems.append(f"no {source.manifest_name(reference_date_of(cycle))} in {landing_dir}")
                continue
            problem = data_file_problem(manifest)
            if problem:
                problems.append(f"{manifest.file}: {problem}")
    outside = con.execute("select distinct source, report_cycle from raw.deliveries where report_cycle not in "
                          f"({', '.join(str(int(c)) for c in report_cycles)}) order by all").fetchall()
    problems += [f"raw.deliveries holds {source} {cycle}, a report cycle not in the configuration; it would be "
                 "lost (add it to report_cycles first)" for source, cycle in outside]
    return problems


def clear_for_new_key(con: duckdb.DuckDBPyConnection, landing_dir: Path, report_cycles: tuple[int, ...],
                      layouts: Layouts) -> Cleared:
    """Empty the raw person tables, raw.deliveries and raw.rejected_rows in one transaction, after checking
    that the landing folder can reload every configured cycle (``RekeyError`` otherwise, nothing changed)."""
    ensure_raw_schema(con)
    problems = reload_problems(con, Path(landing_dir), report_cycles, layouts)
    if problems:
        more = f" … and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise RekeyError(f"{landing_dir}: cannot reload every cycle, nothing was cleared: "
                         + "; ".join(problems[:MAX_LISTED]) + more)
    fingerprints = [row[0] for row in con.execute(
        "select distinct key_fingerprint from raw.deliveries order by all").fetchall()]
    con.execute("begin transaction")
    try:
        deliveries = con.execute("select count(*) from raw.deliveries").fetchone()[0]
        for source in SOURCES.values():
            con.execute(f"delete from raw.{source.table}")
        con.execute(f"delete from raw.{AGGREGATE_TABLE}")
        con.execute("delete from raw.deliveries")
        con.execute("delete from raw.rejected_rows")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return Cleared(deliveries, fingerprints)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true",
                        help="really empty the raw tables (make rekey passes it; then reload every cycle)")


def run(args: argparse.Namespace) -> int:
    from social_monitor.cli import UsageError, progress

    settings = load_settings()
    if not args.yes:
        raise UsageError(f"this empties the raw tables of {settings.warehouse_path} for a full reload; run "
                         "`make rekey` (or pass --yes and reload every cycle yourself)")
    key = PseudonymKey.from_env()
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        cleared = clear_for_new_key(con, settings.landing_dir, settings.config().report_cycles,
                                    load_layouts(settings.city_dir))
    before = ", ".join(f[:12] if f else "unknown (before fingerprints)" for f in cleared.fingerprints) or "none"
    progress(args, f"{settings.warehouse_path}: {cleared.deliveries} deliveries cleared (key fingerprint(s) "
                   f"{before}); the reload uses the {key.description}, fingerprint {key.fingerprint[:12]}")
    if key.is_development:
        progress(args, f"warning: {KEY_ENV} is not set; the reload uses the development key")
    print(f"cleared {cleared.deliveries} deliveries; reload every cycle now (make rekey does)")
    return 0
