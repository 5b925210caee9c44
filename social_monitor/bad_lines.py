"""``social-monitor show-bad-lines``: the data steward's view of the raw lines of a bad delivery.

The loader's messages, ``raw.rejected_rows``, Dagster and the logs name a bad line by file, line, column and
check, never by its content (``social_monitor.ingest``). To see what is wrong, a steward runs this command
on the delivery (its manifest or its data file): it checks the file again with the real loader, in a
DuckDB database in memory (nothing is written to the warehouse, the landing folder or Dagster), and prints
the offending lines as they are in the file, with the header line and each line's problems, to the
terminal. It refuses to write them anywhere else (a pipe or a file) unless ``--allow-pipe`` is given, since
they hold personal data.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from social_monitor.deliveries import MANIFEST_SUFFIX, Manifest, read_manifest
from social_monitor.ingest import DeliveryError, Problem, load_delivery
from social_monitor.layouts import load_layouts
from social_monitor.pseudonyms import KEY_ENV, PseudonymKey
from social_monitor.settings import load_settings

DESCRIPTION = (
    "Print the raw lines of a refused or quarantined delivery (PATH: its manifest or its data file) to the "
    "terminal, with the header line and each line's problems. The file is checked again by the loader in "
    "memory; nothing is written to the warehouse or Dagster. The lines hold personal data: the command "
    "prints only to a terminal unless --allow-pipe is given."
)
DEFAULT_WIDTH = 1000  # characters of a line printed
MAX_LINES = 50  # lines printed unless --lines names others


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the delivery: its manifest (*.manifest.json) or its data file")
    parser.add_argument("--lines", default=None,
                        help="the lines to print (a Parquet file: rows), e.g. 4,7-9; default: the lines the "
                             f"loader finds bad (the first {MAX_LINES})")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH,
                        help=f"characters of a line to print (default {DEFAULT_WIDTH})")
    parser.add_argument("--allow-pipe", action="store_true",
                        help="print even if stdout is not a terminal (the lines hold personal data)")


def run(args: argparse.Namespace) -> int:
    prog = getattr(args, "_prog", "social-monitor show-bad-lines")
    if not args.allow_pipe and not sys.stdout.isatty():
        print(f"{prog}: error: stdout is not a terminal; the lines hold personal data, so they are printed to a "
              "terminal only (--allow-pipe prints them anyway)", file=sys.stderr, flush=True)
        return 2
    settings = load_settings()
    config = settings.config()
    manifest = read_manifest(manifest_path(args.path), load_layouts(settings.city_dir))
    verdict, problems = recheck(manifest, config.ingest_policy, config.quarantine_max_share)
    print(verdict)
    wanted = parse_lines(args.lines) if args.lines else None
    by_line: dict[int, list[Problem]] = {}
    for problem in problems:
        by_line.setdefault(problem.line, []).append(problem)
    lines = wanted if wanted is not None else sorted(by_line)[:MAX_LINES]
    if not lines:
        print("no line to show")
        return 0
    if manifest.file_format == "parquet":
        print_parquet_rows(manifest.data_path, lines, by_line, args.width)
    else:
        print_text_lines(manifest, lines, by_line, args.width)
    if wanted is None and len(by_line) > MAX_LINES:
        print(f"… and {len(by_line) - MAX_LINES} more bad lines (--lines shows others)")
    return 0


def manifest_path(path: Path) -> Path:
    """The manifest of a delivery given by its manifest or its data file (the manifest beside it)."""
    if path.name.endswith(MANIFEST_SUFFIX):
        return path
    return path.with_name(path.name[: -len(path.suffix)] + MANIFEST_SUFFIX if path.suffix else
                          path.name + MANIFEST_SUFFIX)


def recheck(manifest: Manifest, policy: str = "quarantine", max_share: float = 1.0) -> tuple[str, list[Problem]]:
    """The loader's verdict (its first line) and problems, from a load into a database in memory under the
    quarantine policy (every bad row is found) with a throwaway pseudonym key (nothing is kept). The verdict
    says what the city's ``ingest_policy`` (city.yml) would do with the bad rows: refuse the delivery under
    ``fail`` or above ``quarantine_max_share``, else quarantine them."""
    key = PseudonymKey.from_env({KEY_ENV: secrets.token_hex(16)})
    with duckdb.connect(":memory:") as con:
        try:
            result = load_delivery(con, manifest, policy="quarantine", max_rejected_share=1.0, key=key)
        except DeliveryError as refused:
            problems = list(refused.problems)
            if refused.line is not None and not any(p.line == refused.line for p in problems):
                problems.insert(0, Problem(manifest.data_path.name, refused.line, None, "file",
                                           str(refused).splitlines()[0]))
            return f"refused: {str(refused).splitlines()[0]}", problems
    verdict = f"{result.source_file}: {result.rows_in - result.rows_rejected} of {result.rows_in} rows are good, "
    if not result.rows_rejected:
        verdict += "0 bad: the delivery would be loaded"
    elif policy == "fail":
        verdict += (f"{result.rows_rejected} bad: the delivery would be refused (ingest_policy: fail in city.yml; "
                    "under quarantine the bad rows would be set aside)")
    elif result.rows_rejected > max_share * result.rows_in:
        verdict += (f"{result.rows_rejected} bad ({result.rows_rejected / result.rows_in:.1%}): the delivery would "
                    f"be refused, more than quarantine_max_share {max_share:.1%} (city.yml)")
    else:
        verdict += f"{result.rows_rejected} bad: they would be quarantined (ingest_policy: quarantine in city.yml)"
    return verdict, [p for p in result.problems if p.line is not None]


def parse_lines(text: str) -> list[int]:
    """'4,7-9' -> [4, 7, 8, 9]."""
    lines: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"--lines {text!r}: expected line numbers such as 4,7-9") from None
        if low < 1 or high < low or high - low > 100_000:
            raise ValueError(f"--lines {text!r}: expected line numbers such as 4,7-9")
        lines.update(range(low, high + 1))
    return sorted(lines)


def visible(text: str, width: int) -> str:
    """A line as it is, with control characters shown as escapes (\\t, \\r, \\x00 …), cut to ``width``."""
    shown = "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text[:width])
    more = len(text) - width
    return shown + (f" … ({more} more characters)" if more > 0 else "")


def print_text_lines(manifest: Manifest, lines: list[int], by_line: dict, width: int) -> None:
    """Physical lines (split at LF; the header is line 1) of a text file, in the manifest's encoding."""
    try:
        encoding = str(manifest.encoding)
        "a".encode(encoding)
    except (LookupError, UnicodeError):
        encoding = "latin-1"  # every byte is a character: the line is shown, if garbled
    wanted = set(lines) | {1}
    number = 0
    with open(manifest.data_path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number in wanted:
                text = raw.rstrip(b"\n").decode(encoding, errors="replace")
                label = "line 1 (header)" if number == 1 else f"line {number}"
                print(f"{label}: {visible(text, width)}")
                print_problems(by_line.get(number, []))
            if number >= max(wanted):
                return
    print(f"(the file has {number} lines; no line {min(n for n in wanted if n > number)})")


def print_parquet_rows(path: Path, rows: list[int], by_line: dict, width: int) -> None:
    try:
        table = pq.read_table(path)
    except Exception:  # noqa: BLE001 - any damage: say so, the steward has the file
        print(f"{path.name}: the Parquet file cannot be read (damaged or cut off?); no row can be shown")
        return
    print(f"columns: {visible(' | '.join(table.column_names), width)}")
    for number in rows:
        if number > table.num_rows:
            print(f"(the file has {table.num_rows} rows; no row {number})")
            break
        values = table.slice(number - 1, 1).to_pylist()[0]
        print(f"row {number}: " + visible(" | ".join(f"{k}={v!r}" for k, v in values.items()), width))
        print_problems(by_line.get(number, []))


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        label = problem.column or ("(file)" if problem.check == "file" else "(row)")
        print(f"    {label}: {problem.reason}")
