"""The indicator catalogue (dbt_project/seeds/catalogue/indicator_catalogue.csv) and its documentation.

``social-monitor catalogue-docs`` writes docs/indicators.md from the catalogue; a test keeps the two in step.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from schemas.published import TOPICS
from social_monitor.settings import DBT_PROJECT_DIR, PROJECT_DIR

CATALOGUE_PATH = DBT_PROJECT_DIR / "seeds" / "catalogue" / "indicator_catalogue.csv"
DOCS_PATH = PROJECT_DIR / "docs" / "indicators.md"
DESCRIPTION = "Write the indicator documentation (Markdown, German) from the indicator catalogue."
DIRECTION_DE = {"higher_is_worse": "höher ist ungünstiger", "higher_is_better": "höher ist günstiger",
                "neutral": "neutral"}


def read_catalogue(path: Path = CATALOGUE_PATH) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return sorted(csv.DictReader(handle), key=lambda row: int(row["sort_order"]))


def catalogue_measures(path: Path = CATALOGUE_PATH) -> frozenset[str]:
    """Every measure the catalogue names (numerator, denominator, their parts): the measures a city's aggregate
    delivery may deliver (``social_monitor.layouts``)."""
    measures = set()
    for row in read_catalogue(path):
        measures |= {row["numerator_measure"], row["denominator_measure"]}
        for column in ("numerator_sum_of", "denominator_sum_of"):
            measures |= set((row.get(column) or "").split())
    return frozenset(m for m in measures if m)


def render_markdown(rows: list[dict[str, str]]) -> str:
    lines = [
        "# Indikatorenkatalog",
        "",
        "Generated from `dbt_project/seeds/catalogue/indicator_catalogue.csv` by `make docs`; do not edit by hand.",
        "Every value in the published table `area_indicators` is `scale × numerator / denominator` (or the count",
        "itself where there is no denominator), computed from counts per area of the base level (the level deliveries",
        "carry) added up to each level. A change of an indicator (Zähler: Veränderung von …) is the indicator minus",
        "its value in the previous report cycle, in points of its unit (Prozentpunkte), on the cycle's geography",
        "version.",
        "Counts delivered per area by partner offices (Lieferung ... je Gebiet) are",
        "added up from the level delivered, so those indicators exist at that level and above only.",
        "",
    ]
    unknown = sorted({row["topic_field"] for row in rows} - set(TOPICS))
    if unknown:
        raise ValueError(f"{CATALOGUE_PATH}: topic_field {unknown[0]!r} is not one of {', '.join(TOPICS)}")
    for topic in (t for t in TOPICS if any(row["topic_field"] == t for row in rows)):
        lines += [f"## {topic}", "",
                  "| id | Indikator | Definition | Zähler | Nenner | Einheit | Richtung | Zielgruppe |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in (r for r in rows if r["topic_field"] == topic):
            denominator = f"`{row['denominator_measure']}`" if row["denominator_measure"] else "–"
            numerator = (f"Veränderung von `{row['change_of_indicator']}`" if row.get("change_of_indicator")
                         else f"`{row['numerator_measure']}`")
            lines.append(
                f"| `{row['indicator_id']}` | {row['name_de']} | {row['description_de']} | "
                f"{numerator} | {denominator} | "
                f"{row['unit']} | {DIRECTION_DE.get(row['direction'], row['direction'])} | "
                f"{row.get('target_group') or '–'} |"
            )
        lines.append("")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DOCS_PATH, help=f"target file (default: {DOCS_PATH})")


def run(args: argparse.Namespace) -> int:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_markdown(read_catalogue()), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
