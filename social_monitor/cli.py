"""``social-monitor``: the project's command line, one subcommand per module.

Each subcommand's module defines ``add_arguments(parser)`` (its options) and ``run(args)`` (returns the
exit code); this program only wires them into subparsers.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from types import ModuleType

from social_monitor import action_areas_report, catalogue, exports, published_docs
from social_monitor.classification import cli as classify_cli
from social_monitor.report import cli as report_cli
from social_monitor.sample_city import cli as sample_city_cli

# subcommand -> (module with add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[ModuleType, str]] = {
    "generate": (sample_city_cli, "write the sample city's raw extracts and manifests"),
    "action-areas": (action_areas_report, "print the action areas per report cycle from the published file"),
    "classify": (classify_cli, "classify any indicator table by a method (Berlin MSS, Hamburg RISE, Dortmund, custom)"),
    "catalogue-docs": (catalogue, "write docs/indicators.md from the indicator catalogue"),
    "report": (report_cli, "write the report (Bericht zur sozialen Lage) per report cycle as self-contained HTML"),
    "export": (exports, "write Parquet files and an Excel workbook per report cycle from the published file"),
    "published-docs": (published_docs, "write the dbt sources YAML that documents the published file"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="social-monitor", description="Municipal social monitoring: indicators and action areas per report cycle."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        description = getattr(module, "DESCRIPTION", help_text)
        sub = subparsers.add_parser(name, help=help_text, description=description)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
