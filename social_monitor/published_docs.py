"""dbt documentation of the published file: a dbt sources YAML generated from the data dictionary.

The published tables are not dbt models (``social_monitor/publish.py`` writes them), so dbt knows them as the
source ``published``: every table and column with its German title, header and description from
``schemas.published.data_dictionary()``. The dbt target ``docs`` (``dbt_project/profiles.yml``) attaches the
published file read-only under the name ``published``, so ``dbt docs generate --target docs`` adds their
columns and types to the catalogue. ``social-monitor published-docs`` writes the YAML; a test keeps it in step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from schemas.published import data_dictionary
from social_monitor.disclosure import DisclosureRule
from social_monitor.settings import DBT_PROJECT_DIR, load_settings

SOURCES_PATH = DBT_PROJECT_DIR / "models" / "published" / "_published__sources.yml"
DESCRIPTION = "Write the dbt sources YAML that documents the published file (German) from schemas/published.py."
SOURCE_DESCRIPTION = (
    "Die veröffentlichte Datei des Sozialmonitorings (Standard: data/<Stadt>/published/marts.duckdb): nur "
    "zusammengefasste Tabellen, keine Einzeldaten, für BI-Werkzeuge und Excel (nur lesend öffnen). Sie wird "
    "nicht von dbt gebaut, sondern nach den Modellen und der Klassifikation veröffentlicht "
    "(social_monitor/publish.py), gegen die Verträge in schemas/published.py geprüft und atomar ausgetauscht. "
    "Statistische Geheimhaltung: {small_counts}, {small_populations} und Sekundärsperrungen sind leer "
    "({protection}); die Zeile bleibt, der Grund steht in area_indicators.suppression bzw. in is_suppressed; "
    "disclosure_audit zeigt je Berichtsjahr das Ergebnis der Prüfung. Je Berichtsjahr gibt es dieselben Tabellen "
    "als Parquet-Dateien und als Excel-Arbeitsmappe (social-monitor export)."
)
HEADER = "# Generated from schemas/published.py by `social-monitor published-docs`; do not edit by hand.\n"


def render_sources(rule: DisclosureRule | None = None) -> str:
    """The sources YAML of the published file, German, from the data dictionary; the disclosure control is
    described with the numbers of ``rule`` (the configuration's ``publication``)."""
    rule = rule or DisclosureRule()
    tables = []
    for table in data_dictionary(rule).values():
        tables.append({
            "name": table.name,
            "description": f"**{table.title_de}** (Excel: Blatt „{table.sheet_de}“). {table.description_de}",
            "meta": {"title_de": table.title_de, "sheet_de": table.sheet_de},
            "columns": [{"name": column.name, "description": f"**{column.header_de}**: {column.description_de}",
                         "meta": {"header_de": column.header_de}} for column in table.columns],
        })
    document = {"version": 2, "sources": [{
        "name": "published",
        "description": rule.describe_de(SOURCE_DESCRIPTION),
        # the alias under which the dbt target `docs` attaches the published file; the file's only schema is main
        "database": "published",
        "schema": "main",
        "tables": tables,
    }]}
    return HEADER + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SOURCES_PATH, help=f"target file (default: {SOURCES_PATH})")


def run(args: argparse.Namespace) -> int:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rule = DisclosureRule.from_config(load_settings().config().publication)
    args.out.write_text(render_sources(rule), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
