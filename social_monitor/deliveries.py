"""The raw sources a statistics office receives, how their files are named, and their manifests.

A delivery is one file of one source for one reference date (31 December of a report cycle), with a
manifest beside it (``<file stem>.manifest.json``) that states what the sender meant to deliver: source,
reference date, format, encoding, separator, row count and SHA-256 checksum.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from schemas.raw import AsylblgRecipients, RawDelivery, RegisterPersons, Sgb2Recipients, Sgb12Recipients

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Source:
    name: str
    file_prefix: str
    file_format: str  # "csv" (semicolon-separated text with a header) or "parquet"
    encoding: str  # of a csv file; "utf-8" for parquet
    contract: type[RawDelivery]
    sender: str

    @property
    def extension(self) -> str:
        return "parquet" if self.file_format == "parquet" else "csv"

    def file_name(self, reference_date: dt.date) -> str:
        return f"{self.file_prefix}_{reference_date.isoformat()}.{self.extension}"

    def manifest_name(self, reference_date: dt.date) -> str:
        return f"{self.file_prefix}_{reference_date.isoformat()}{MANIFEST_SUFFIX}"

    @property
    def table(self) -> str:
        """The warehouse table in the ``raw`` schema that holds this source."""
        return self.name


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("register", "bevoelkerung", "csv", "cp1252", RegisterPersons, "Melderegister (Bürgerdienste)"),
        Source("sgb2", "sgb2", "parquet", "utf-8", Sgb2Recipients, "Bundesagentur für Arbeit, Statistik"),
        Source("sgb12", "sgb12", "csv", "utf-8", Sgb12Recipients, "Sozialamt, SGB XII"),
        Source("asylblg", "asylblg", "csv", "utf-8", AsylblgRecipients, "Sozialamt, AsylbLG"),
    )
}

_MANIFEST_NAME = re.compile(r"^(?P<prefix>[a-z0-9]+)_(?P<date>\d{4}-\d{2}-\d{2})" + re.escape(MANIFEST_SUFFIX) + "$")


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
    """A manifest that cannot be read or does not fit its delivery."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(data_path: Path, source: Source, reference_date: dt.date, rows: int) -> Path:
    """Write the manifest beside a delivered file (used by the sample-city generator)."""
    manifest = Manifest(
        source=source.name,
        reference_date=reference_date,
        file=data_path.name,
        file_format=source.file_format,
        encoding=source.encoding,
        delimiter=";" if source.file_format == "csv" else None,
        rows=rows,
        sha256=sha256_of(data_path),
        sender=source.sender,
        path=data_path.parent / source.manifest_name(reference_date),
    )
    manifest.path.write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest.path


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read manifest: {exc}") from exc
    required = ["source", "reference_date", "file", "format", "encoding", "rows", "sha256"]
    missing = [key for key in required if key not in raw]
    if missing:
        raise ManifestError(f"{path}: manifest lacks {', '.join(missing)}")
    if raw["source"] not in SOURCES:
        raise ManifestError(f"{path}: unknown source {raw['source']!r}; expected one of {sorted(SOURCES)}")
    try:
        reference_date = dt.date.fromisoformat(raw["reference_date"])
    except ValueError as exc:
        raise ManifestError(f"{path}: reference_date {raw['reference_date']!r} is not YYYY-MM-DD") from exc
    rows = raw["rows"]
    if isinstance(rows, bool) or not isinstance(rows, int | str) or not str(rows).strip().isdigit():
        raise ManifestError(f"{path}: rows {rows!r} is not a whole number of data rows")
    if not isinstance(raw["sha256"], str) or not re.fullmatch(r"[0-9a-fA-F]{64}", raw["sha256"]):
        raise ManifestError(f"{path}: sha256 must be 64 hexadecimal characters")
    return Manifest(
        source=raw["source"],
        reference_date=reference_date,
        file=raw["file"],
        file_format=raw["format"],
        encoding=raw["encoding"],
        delimiter=raw.get("delimiter"),
        rows=int(rows),
        sha256=raw["sha256"].lower(),  # PowerShell's Get-FileHash writes upper case
        sender=raw.get("sender", ""),
        path=Path(path),
    )


def find_manifests(landing_dir: Path) -> list[Manifest]:
    """Every delivery manifest in the landing folder, sorted by reference date and source."""
    found = []
    for path in sorted(Path(landing_dir).glob(f"*{MANIFEST_SUFFIX}")):
        if _MANIFEST_NAME.match(path.name):
            found.append(read_manifest(path))
    return sorted(found, key=lambda m: (m.reference_date, m.source))


def find_manifest(landing_dir: Path, source: Source, report_cycle: int) -> Manifest | None:
    path = Path(landing_dir) / source.manifest_name(reference_date_of(report_cycle))
    return read_manifest(path) if path.exists() else None
