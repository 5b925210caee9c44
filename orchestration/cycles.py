"""The report cycles a run of the per-cycle outputs (report, exports) writes, and their files per cycle.

The report and the exports are not partitioned: `build_marts` (and the nightly schedule) writes every published
cycle in one unpartitioned run, as the dbt models, the classification and the publication are built over every
cycle. One cycle alone is a run config (``cycles: [2018]``); what each cycle has is in the assets' metadata and
checks (orchestration/checks.py), keyed by report cycle.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb


class CyclesConfig(dg.Config):
    """Which report cycles to write; empty: every cycle of the published file. One cycle alone (the asset's
    launchpad in the UI, or `make report-cycle CYCLE=2018`): ``cycles: [2018]``; the other cycles' files stay."""

    cycles: list[int] = []


def published_cycles_of(published: Path) -> list[int]:
    from social_monitor.exports import published_cycles  # the exports module only when a step runs

    if not published.exists():
        raise dg.Failure(description=f"{published}: no published file (materialise published/marts first)")
    with duckdb.connect(str(published), read_only=True) as con:
        return published_cycles(con)


def cycles_to_write(config: CyclesConfig, published: Path) -> list[int]:
    """The configured cycles, each of which must be published, or every published cycle."""
    available = published_cycles_of(published)
    unknown = sorted(set(config.cycles) - set(available))
    if unknown:
        raise dg.Failure(description=f"report cycle(s) {', '.join(map(str, unknown))} not in {published} "
                                     f"(published: {', '.join(map(str, available)) or 'none'})")
    return sorted(set(config.cycles)) or available


def files_per_cycle(paths: dict[int, Path], written: list[int]) -> dg.MetadataValue:
    """A table of one file or folder per report cycle: when it was written and whether by this run."""
    rows = [f"| {cycle} | {path.name} | "
            f"{dt.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec='seconds')} | "
            f"{'ja' if cycle in written else 'nein'} |"
            for cycle, path in sorted(paths.items()) if path.exists()]
    return dg.MetadataValue.md("| Berichtsjahr | Datei | geschrieben | in diesem Lauf |\n|---|---|---|---|\n"
                               + "\n".join(rows))
