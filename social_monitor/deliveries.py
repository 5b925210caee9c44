"""The raw sources a statistics office receives, how their files are named, and their manifests.

A delivery is one file of one source for one reference date (31 December of a report cycle), named as the
city's delivery layout says (``social_monitor.layouts``), with a manifest beside it (``<file
stem>.manifest.json``) that states what the sender meant to deliver: source, reference date, format,
encoding, separator, row count and SHA-256 checksum.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.raw import (
    AsylblgRecipients,
    RawDelivery,
    RegisterPersons,
    Sgb2Recipients,
    Sgb12Recipients,
    UnemployedPersons,
)

if TYPE_CHECKING:
    from social_monitor.layouts import Layouts, SourceLayout

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Source:
    """A source: its canonical contract and its warehouse table. How a city delivers it (file name, format,
    headers, codes) is the city's layout (``social_monitor.layouts``)."""

    name: str
    contract: type[RawDelivery]
    table_name: str | None = None  # the raw table, when not the source's name (raw.aggregates)

    @property
    def table(self) -> str:
        """The warehouse table in the ``raw`` schema that holds this source."""
        return self.table_name or self.name

    @property
    def is_aggregate(self) -> bool:
        """An aggregate delivery of a partner office (``schemas.aggregates``), stored in ``raw.aggregates``."""
        return self.table_name is not None


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("register", RegisterPersons),
        Source("sgb2", Sgb2Recipients),
        Source("sgb12", Sgb12Recipients),
        Source("asylblg", AsylblgRecipients),
        Source("unemployment", UnemployedPersons),
    )
}

def reference_date_of(report_cycle: int) -> dt.date:
    """The register's reference date of a report cycle: 31 December of that year."""
    return dt.date(int(report_cycle), 12, 31)


@dataclass(frozen=True)
class Manifest:
    source: str
    reference_date: dt.date
    file: str
    file_format: str
    encoding: str
    delimiter: str | None
    rows: int
    sha256: str
    sender: str
    path: Path  # of the manifest itself
    layout: SourceLayout | None = field(default=None, compare=False)  # the city's layout of its source

    @property
    def data_path(self) -> Path:
        return self.path.parent / self.file

    @property
    def report_cycle(self) -> int:
        return self.reference_date.year

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "reference_date": self.reference_date.isoformat(),
            "file": self.file,
            "format": self.file_format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "rows": self.rows,
            "sha256": self.sha256,
            "sender": self.sender,
        }


class ManifestError(ValueError):
    """A manifest that cannot be read or does not fit its delivery: one line naming the manifest and field."""

    def __init__(self, path: Path | str, message: str):
        super().__init__(one_line(f"{path}: {message}"))


MAX_MESSAGE = 400  # characters of a manifest message (a manifest may hold a 10 MB value)
MAX_SHOWN = 40  # characters of a value read from a manifest, in a message
MAX_MANIFEST_BYTES = 64 * 1024  # a manifest is a few hundred bytes; a bigger file is not a manifest
# Python codecs that are no character set: a delivery cannot be "in" them
NOT_CHARACTER_SETS = {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape"}
FORMATS = ("csv", "parquet")


def capped(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """A message as one line of at most ``limit`` characters (control characters escaped)."""
    return capped("".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text), limit)


def shown(value: object) -> str:
    """A value read from a manifest, for a message: its JSON type for a list or object, else its repr, cut
    to ``MAX_SHOWN`` characters."""
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    return one_line(repr(value), MAX_SHOWN)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(data_path: Path, layout: SourceLayout, reference_date: dt.date, rows: int) -> Path:
    """Write the manifest beside a delivered file, with the format details of the city's layout (used by the
    sample-city generator and ``social-monitor write-manifest``)."""
    manifest = Manifest(
        source=layout.name,
        reference_date=reference_date,
        file=data_path.name,
        file_format=layout.file_format,
        encoding=layout.encoding,
        delimiter=layout.separator if layout.file_format == "csv" else None,
        rows=rows,
        sha256=sha256_of(data_path),
        sender=layout.sender,
        path=data_path.parent / layout.manifest_name(reference_date),
    )
    manifest.path.write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest.path


def read_manifest(path: Path, layouts: Layouts, source: Source | SourceLayout | None = None,
                  report_cycle: int | None = None) -> Manifest:
    """Read and check a manifest: a regular file (not a link) of at most ``MAX_MANIFEST_BYTES``, UTF-8 (a
    byte order mark is allowed), one JSON object whose fields have the right types and values, and whose
    source and reference date agree with its own file name (by the city's ``layouts``) and, when given,
    with the ``source`` and ``report_cycle`` being loaded (``check_identity``). Any problem is a
    ``ManifestError``. The manifest carries its source's layout (``Manifest.layout``)."""
    path = Path(path)
    text = _manifest_text(path)
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise ManifestError(path, f"field {shown(exc.args[0])} is given twice") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(path, f"cannot read manifest: not JSON ({exc.msg} at line {exc.lineno}, "
                                  f"column {exc.colno})") from None
    except (ValueError, RecursionError):  # NaN/Infinity, a number of more than 4300 digits, deep nesting
        raise ManifestError(path, "cannot read manifest: not plain JSON (NaN, Infinity, a huge number or "
                                  "nesting too deep)") from None
    if not isinstance(raw, dict):
        raise ManifestError(path, f"the manifest is {_json_type(raw)}, not a JSON object of fields")
    required = ["source", "reference_date", "file", "format", "encoding", "rows", "sha256"]
    missing = [key for key in required if key not in raw]
    if missing:
        raise ManifestError(path, f"manifest lacks {', '.join(missing)}")
    for key in [*required, "delimiter", "sender"]:
        value = raw.get(key)
        if key in ("delimiter", "sender") and value is None:
            continue
        if key == "rows":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ManifestError(path, f"field rows is {_json_type(value)}, expected a whole number of data "
                                          "rows")
        elif not isinstance(value, str):
            raise ManifestError(path, f"field {key} is {_json_type(value)}, expected a string")
    known = {*SOURCES, *layouts}  # the person-level sources and the city's aggregate deliveries
    if raw["source"] not in known:
        raise ManifestError(path, f"field source: unknown source {shown(raw['source'])}; expected one of "
                                  f"{sorted(known)}")
    try:
        reference_date = dt.date.fromisoformat(raw["reference_date"])
    except ValueError:
        raise ManifestError(path, f"field reference_date {shown(raw['reference_date'])} is not YYYY-MM-DD") \
            from None
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw["reference_date"]):
        raise ManifestError(path, f"field reference_date {shown(raw['reference_date'])} is not YYYY-MM-DD")
    file_problem = _file_name_problem(raw["file"])
    if file_problem:
        raise ManifestError(path, f"field file {shown(raw['file'])} {file_problem}")
    if raw["format"] not in FORMATS:
        raise ManifestError(path, f"field format {shown(raw['format'])} is not one of {', '.join(FORMATS)}")
    encoding_problem_ = encoding_problem(raw["encoding"])
    if encoding_problem_:
        raise ManifestError(path, f"field encoding {shown(raw['encoding'])} {encoding_problem_}")
    delimiter = raw.get("delimiter")
    if delimiter is not None and delimiter_problem(delimiter):
        raise ManifestError(path, f"field delimiter {shown(delimiter)} {delimiter_problem(delimiter)}")
    rows = raw["rows"]
    if isinstance(rows, str) and re.fullmatch(r"\s*[0-9]{1,18}\s*", rows):
        rows = int(rows)
    if not isinstance(rows, int) or not 0 <= rows < 10**18:
        raise ManifestError(path, f"field rows {shown(raw['rows'])} is not a whole number of data rows")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", raw["sha256"]):
        raise ManifestError(path, "field sha256 is not 64 hexadecimal characters")
    manifest = Manifest(
        source=raw["source"],
        reference_date=reference_date,
        file=raw["file"],
        file_format=raw["format"],
        encoding=raw["encoding"],
        delimiter=delimiter,
        rows=rows,
        sha256=raw["sha256"].lower(),  # PowerShell's Get-FileHash writes upper case
        sender=one_line(raw.get("sender") or "", 200),
        path=path,
        layout=layouts.get(raw["source"]),
    )
    check_identity(manifest, layouts, source, report_cycle)
    return manifest


def check_identity(manifest: Manifest, layouts: Layouts, source: Source | SourceLayout | None = None,
                   report_cycle: int | None = None) -> None:
    """The source and reference date a manifest states must be those of its own file name (by the city's
    ``layouts``) and, when given,
    of the asset (``source``) and partition (``report_cycle``) being loaded. A ``ManifestError`` names all
    of them and which disagree (an AsylbLG manifest copied over the SGB XII one, another cycle's manifest)."""
    stated = (manifest.source, manifest.reference_date)
    from social_monitor.layouts import source_of_manifest_name

    views = [("the manifest says", stated), ("its file name says",
                                             source_of_manifest_name(layouts, manifest.path.name) or (None, None))]
    if source is not None or report_cycle is not None:
        views.append(("the partition being loaded is",
                      (source.name if source else manifest.source,
                       reference_date_of(report_cycle) if report_cycle is not None else manifest.reference_date)))
    disagree = [label for label, view in views[1:] if view != stated]
    if not disagree:
        return
    described = "; ".join(f"{label} {view[0] or '?'} {view[1].isoformat() if view[1] else '?'}"
                          for label, view in views)
    expected = layouts[manifest.source].manifest_glob if manifest.source in layouts else \
        f"<source>_<YYYY-12-31>{MANIFEST_SUFFIX}"
    raise ManifestError(manifest.path, f"source and reference date disagree: {described} (expected "
                                       f"{expected} with the same source and date inside)")


def data_file_problem(manifest: Manifest) -> str | None:
    """Why the file a manifest names cannot be the delivery, or None: it must be a regular file directly in
    the manifest's (landing) folder. A symbolic link is refused even when it points inside the folder: a
    delivery is a file the sender delivered, and a link can be pointed elsewhere between the checks and the
    read (or make one source's file stand in for another's)."""
    problem = _file_name_problem(manifest.file)
    if problem:
        return f"the manifest's file {shown(manifest.file)} {problem}"
    path = manifest.data_path
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return f"file named in manifest {manifest.path.name} does not exist in {path.parent}"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(mode):
        return (f"is a symbolic link; a delivery must be a regular file in the landing folder {path.parent} "
                "(copy the file there instead of linking it)")
    if not stat.S_ISREG(mode):
        return f"is not a regular file (a folder, pipe or device); a delivery must be a regular file in {path.parent}"
    return None


def _file_name_problem(name: str) -> str | None:
    """Why ``name`` is not a bare file name in the landing folder, or None."""
    if not name or name in (".", "..") or any(ch in name for ch in "/\\:\0") or not name.isprintable():
        return "is not a bare file name in the landing folder (no folder, no '..', no absolute path)"
    return None


def delimiter_problem(delimiter: str) -> str | None:
    """Why ``delimiter`` cannot separate the fields of a delivered text file, or None."""
    if len(delimiter) != 1 or delimiter in "\"\r\n" or not delimiter.isprintable() and delimiter != "\t":
        return "is not one character (other than a quote or a line break)"
    return None


def encoding_problem(name: str) -> str | None:
    try:
        codec = codecs.lookup(name)
    except (LookupError, ValueError):
        return "is not an encoding Python knows (e.g. utf-8, cp1252, latin-1)"
    if not codec._is_text_encoding or codec.name in NOT_CHARACTER_SETS:
        return "is not a character encoding (e.g. utf-8, cp1252, latin-1)"
    return None


def _manifest_text(path: Path) -> str:
    try:
        info = path.lstat()
    except OSError as exc:
        raise ManifestError(path, f"cannot read manifest: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise ManifestError(path, "the manifest is a symbolic link; it must be a regular file in the landing folder")
    if not stat.S_ISREG(info.st_mode):
        raise ManifestError(path, "the manifest is not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(path, f"the manifest has {info.st_size} bytes, more than the {MAX_MANIFEST_BYTES} a "
                                  "manifest may have")
    try:
        data = path.read_bytes()[: MAX_MANIFEST_BYTES + 1]
    except OSError as exc:
        raise ManifestError(path, f"cannot read manifest: {exc.strerror}") from None
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) \
            or b"\0" in data:
        raise ManifestError(path, "the manifest is in UTF-16 or UTF-32; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")  # a UTF-8 byte order mark (Windows editors, PowerShell 5) is allowed
    except UnicodeDecodeError as exc:
        raise ManifestError(path, f"the manifest is not UTF-8 (byte 0x{data[exc.start]:02x} at offset "
                                  f"{exc.start}); save it as UTF-8") from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise ValueError(name)


@dataclass(frozen=True)
class LandingScan:
    """What is in a landing folder: the readable manifests, and one line for each file that looks like a
    manifest but cannot be one (a ``ManifestError``'s message, or a name that does not follow the pattern)."""

    manifests: list[Manifest]
    problems: list[str]


def scan_manifests(landing_dir: Path, layouts: Layouts) -> LandingScan:
    """Every delivery manifest in the landing folder, sorted by reference date and source; a bad manifest is
    reported in ``problems`` and does not stop the others from being read. A manifest's name must be one of
    the city's layouts' (``SourceLayout.manifest_glob``)."""
    from social_monitor.layouts import source_of_manifest_name

    found, problems = [], []
    for path in sorted(Path(landing_dir).glob(f"*{MANIFEST_SUFFIX}")):
        if source_of_manifest_name(layouts, path.name) is None:
            patterns = ", ".join(layout.manifest_glob for layout in layouts.values())
            problems.append(one_line(f"{path}: the name does not follow the city's delivery layouts ({patterns});"
                                     " not read", 600))
            continue
        try:
            found.append(read_manifest(path, layouts))
        except ManifestError as exc:
            problems.append(str(exc))
    return LandingScan(sorted(found, key=lambda m: (m.reference_date, m.source)), problems)


def find_manifest(landing_dir: Path, layout: SourceLayout, report_cycle: int) -> Manifest | None:
    """The manifest of one source's delivery for one report cycle, named by the city's layout of the source,
    checked to state that source and cycle; None if there is none."""
    path = Path(landing_dir) / layout.manifest_name(reference_date_of(report_cycle))
    if not os.path.lexists(path):
        return None
    return read_manifest(path, {layout.name: layout}, layout, report_cycle)
