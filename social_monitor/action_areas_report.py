"""``social-monitor action-areas``: the action areas per report cycle, read from the published file."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from social_monitor.labels import ACTION_AREA_CHANGE_DE
from social_monitor.settings import load_settings

DESCRIPTION = (
    "Print the Aktionsräume (action areas) of every report cycle from the published marts file, with their "
    "change since the previous cycle and the Quartiere still worse than the city. Opens the file read-only."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--published", type=Path, default=None,
                        help="published DuckDB file "
                        "(default: $SOCIAL_MONITOR_PUBLISHED or data/<city>/published/marts.duckdb)")


def run(args: argparse.Namespace) -> int:
    path = args.published = args.published or load_settings().published_path  # resolved: errors name it
    if not Path(path).exists():  # reported by social_monitor.cli.main as one line
        raise FileNotFoundError(f"{path}: no published file yet; run `make run` first")
    print(format_action_areas(Path(path)))
    return 0


def format_action_areas(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            """
            select a.report_cycle, a.area_name, a.is_action_area, a.change_since_previous,
                   count(q.base_area_id) as quartiere,
                   count(q.base_area_id) filter (where q.is_worse_than_city) as quartiere_worse,
                   string_agg(q.base_area_name, ', ' order by q.base_area_id)
                       filter (where q.is_worse_than_city) as names_worse
            from action_areas a
            left join action_area_quartiere q using (report_cycle, area_id)
            where a.is_action_area or a.change_since_previous = 'released'
            group by all
            order by a.report_cycle, a.area_name
            """
        ).fetchall()
    lines = []
    for cycle in sorted({row[0] for row in rows}):
        current = [r for r in rows if r[0] == cycle and r[2]]
        lines.append(f"Berichtsjahr {cycle}: {len(current)} Aktionsräume")
        for _, name, is_action_area, change, quartiere, worse, names in (r for r in rows if r[0] == cycle):
            if not is_action_area:
                lines.append(f"  {name:<36} entlassen")
                continue
            detail = f"Quartiere über dem Stadtwert: {worse} von {quartiere}"
            if worse < quartiere:
                detail += f" ({names or '–'})"
            lines.append(f"  {name:<36} {ACTION_AREA_CHANGE_DE.get(change, change):<20} {detail}")
    return "\n".join(lines)
