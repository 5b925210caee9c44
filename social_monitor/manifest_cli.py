"""``social-monitor write-manifest``: the manifest of a real delivery, for an office that sends one.

The file is checked against the city's delivery layout of its source (``config/<city>/deliveries.yml``): its
name, its header (every column under the city's header, in order), its encoding and separator, as the loader
checks them; a file that does not match is refused with a message naming the missing or unknown header,
never a value of the file. The manifest (``social_monitor.deliveries``: rows, SHA-256 checksum, source,
reference date, format, encoding, separator, sender) is written beside the file and read back with the
loader's own manifest check. The rows themselves are validated when the delivery is loaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from social_monitor.deliveries import Manifest, read_manifest, sha256_of, write_manifest
from social_monitor.layouts import load_layouts
from social_monitor.settings import load_settings

DESCRIPTION = (
    "Write the manifest (<file stem>.manifest.json) beside a delivered file: rows, SHA-256 checksum, source, "
    "reference date and the format details of the city's delivery layout (deliveries.yml in the city folder "
    "SOCIAL_MONITOR_CITY selects). A file whose name, header, encoding or separator do not match the layout "
    "is refused; no value of the file is ever printed."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the delivered data file (in the landing folder)")
    parser.add_argument("--source", required=True, help="the source: register, sgb2, sgb12, asylblg or the id of an "
                        "aggregate delivery of the city's layout")
    parser.add_argument("--date", required=True, metavar="YYYY-12-31",
                        help="the reference date of the extract (31 December of the report cycle)")


def run(args: argparse.Namespace) -> int:
    from social_monitor.cli import UsageError, progress
    from social_monitor.ingest import count_delivered_rows

    layouts = load_layouts(load_settings().city_dir)
    if args.source not in layouts:
        raise UsageError(f"--source {args.source!r}: not a source; the sources are {', '.join(layouts)}")
    layout = layouts[args.source]
    try:
        reference_date = dt.date.fromisoformat(args.date)
    except ValueError:
        raise UsageError(f"--date {args.date!r}: not a date YYYY-MM-DD") from None
    if (reference_date.month, reference_date.day) != (12, 31):
        raise UsageError(f"--date {args.date}: a report cycle's deliveries are taken on 31 December")
    path = Path(args.file)
    expected = layout.file_name(reference_date)
    if path.name != expected:
        raise ValueError(f"{path}: the delivery layout of {layout.name} ({layout.path}) names the file of "
                         f"{reference_date} {expected}; rename the file or correct --source/--date")
    # the manifest as it will be, but for the rows: the file is counted under the encoding and separator it states
    draft = Manifest(source=layout.name, reference_date=reference_date, file=path.name,
                     file_format=layout.file_format, encoding=layout.encoding,
                     delimiter=layout.separator if layout.file_format == "csv" else None, rows=0,
                     sha256=sha256_of(path), sender=layout.sender,
                     path=path.parent / layout.manifest_name(reference_date), layout=layout)
    progress(args, f"checking {path.name} against the layout of {layout.name} …")
    rows = count_delivered_rows(draft)
    written = write_manifest(path, layout, reference_date, rows)
    manifest = read_manifest(written, layouts, layout, reference_date.year)  # the loader's own check
    print(f"{manifest.path}: {manifest.rows} rows, sha256 {manifest.sha256[:12]}…, {manifest.source} "
          f"{manifest.reference_date}")
    return 0
