"""``social-monitor``: the project's command line, one subcommand per module.

Each subcommand's module defines ``add_arguments(parser)`` (its options) and ``run(args)`` (returns the
exit code); this program only wires them into subparsers, and handles for all of them:

- errors: a user error (a missing file, a wrong option value, an unknown method, a refused delivery, a file
  DuckDB cannot open …) ends the command with ONE line on stderr, ``social-monitor <command>: error: <what
  is wrong>``, and a pointer to the details (``--debug`` for the traceback), exit code 2 for a wrong option
  value (``UsageError``, ``MethodError``; argparse's own usage errors too), 1 for any other failure. The
  line is the exception's own message (our messages name files, options and lines, never personal data),
  only its first line; a bug (any other exception) keeps its traceback.
- progress: long steps call ``progress(args, message)``, a flushed line on stderr, silenced by ``--quiet``;
  stdout stays for the results a command prints.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

import duckdb

from social_monitor import (
    action_areas_report,
    bad_lines,
    catalogue,
    exports,
    manifest_cli,
    mss_compare,
    published_docs,
    rekey,
)
from social_monitor.classification import cli as classify_cli
from social_monitor.classification.methods import MethodError
from social_monitor.report import cli as report_cli
from social_monitor.sample_city import cli as sample_city_cli
from social_monitor.sample_city import geometry as boundaries_cli
from social_monitor.storage import storage_problem

PROG = "social-monitor"
# subcommand -> (module with add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[ModuleType, str]] = {
    "generate": (sample_city_cli, "write the sample city's raw extracts and manifests"),
    "boundaries": (boundaries_cli, "write the sample city's synthetic boundaries into its city folder"),
    "action-areas": (action_areas_report, "print the action areas per report cycle from the published file"),
    "classify": (classify_cli, "classify any indicator table by a method (Berlin MSS, Hamburg RISE, Dortmund, custom)"),
    "catalogue-docs": (catalogue, "write docs/indicators.md from the indicator catalogue"),
    "report": (report_cli, "write the report (Bericht zur sozialen Lage) per report cycle as self-contained HTML"),
    "export": (exports, "write Parquet files and an Excel workbook per report cycle from the published file"),
    "published-docs": (published_docs, "write the dbt sources YAML that documents the published file"),
    "rekey": (rekey, "empty the raw tables for a full reload under a new pseudonym key (make rekey)"),
    "show-bad-lines": (bad_lines, "print the raw lines of a refused or quarantined delivery (terminal only)"),
    "write-manifest": (manifest_cli, "write the manifest of a delivered file, checked against the city's layout"),
    "mss-compare": (mss_compare, "compare a Berlin run's MSS classes with Berlin's published ones (docs/)"),
}
EPILOG = (
    f"Run `{PROG} COMMAND --help` for a command's options. Progress goes to stderr (--quiet silences it), "
    "results to stdout. An error is one line on stderr; exit code 2 for a wrong option, 1 for any other "
    "failure; --debug adds the traceback."
)


class UsageError(ValueError):
    """The value of an option is wrong (exit code 2, like argparse's own usage errors)."""


# user errors: one line, no traceback. Our own error types are ValueErrors (DeliveryError, ManifestError,
# MethodError, TableError, GeometryError, RuleError); OSError covers missing and unreadable files.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, duckdb.Error)
USAGE_ERRORS: tuple[type[BaseException], ...] = (UsageError, MethodError)


def progress(args: argparse.Namespace, message: str) -> None:
    """One progress line on stderr, flushed at once; nothing with ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"{getattr(args, '_prog', PROG)}: {message}", file=sys.stderr, flush=True)


def error_line(error: BaseException, args: argparse.Namespace | None = None) -> str:
    """What is wrong, in one line: the first line of the exception's message (an OSError as ``file: reason``;
    a DuckDB error prefixed with the ``--published`` file it came from, unless it names it already; a file
    locked by another process or a full disk as social_monitor.storage says it)."""
    written = [getattr(args, name) for name in ("out", "output") if getattr(args, name, None) is not None]
    storage = storage_problem(error, written)
    if storage is not None:
        return storage
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    published = getattr(args, "published", None)
    if isinstance(error, duckdb.Error) and published is not None and str(published) not in text:
        text = f"{published}: {text}"
    return text


def _add_global_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="on an error, print the traceback as well as the one-line message")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="print no progress lines on stderr (results and errors are still printed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Municipal social monitoring: indicators and action areas per report cycle.",
        epilog=EPILOG,
    )
    _add_global_options(parser, False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       help="one of the commands below")
    for name, (module, help_text) in SUBCOMMANDS.items():
        description = getattr(module, "DESCRIPTION", help_text)
        sub = subparsers.add_parser(name, help=help_text, description=description)
        module.add_arguments(sub)
        # also accepted after the command; SUPPRESS keeps a value given before it
        _add_global_options(sub.add_argument_group("global options"), argparse.SUPPRESS)
        sub.set_defaults(_run=module.run, _prog=f"{PROG} {name}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = args._prog
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as error:
        # a full disk as a library reports it (polars: a ComputeError) is a user error too
        if not isinstance(error, USER_ERRORS) and storage_problem(error) is None:
            raise
        if args.debug:
            traceback.print_exc()
            pointer = "the traceback is above"
        else:
            pointer = f"run `{PROG} --debug {args.command} …` for the traceback"
        print(f"{prog}: error: {error_line(error, args)} ({pointer})", file=sys.stderr, flush=True)
        return 2 if isinstance(error, USAGE_ERRORS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
