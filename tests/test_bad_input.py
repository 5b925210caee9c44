"""The catalogue of bad deliveries a statistics office meets, and what the loader does with each.

Every kind is one ``Case``: how to build a small delivery (3-6 rows, in tmp_path), the outcome, and what
the outcome must show. The outcomes:

- ``refused``: ``load_delivery`` raises ``DeliveryError`` even under the lenient settings (policy
  "quarantine", ``max_rejected_share=1.0``, unless the case sets a share); the message starts with the file
  name, matches ``expect`` (``{file}`` stands for the file name) and shows no personal value.
- ``row quarantined``: under policy "fail" the delivery is refused with one message line per problem
  naming file, line and column; under "quarantine" the good rows load, rows in = accepted + rejected, the
  bad lines are in raw.rejected_rows with file, line, column and check, and raw.<table> holds only the
  good lines.
- ``accepted``: the delivery loads under policy "fail" with every row; ``expect`` may hold a query on the
  loaded rows and its result.

A kind the current code does not handle carries ``gap`` and runs as a strict xfail. The catalogue is
documented, kind by kind, in docs/bad-input.md (``test_every_kind_is_documented`` keeps the two in step).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.raw import personal_columns
from social_monitor.deliveries import (
    Manifest,
    ManifestError,
    find_manifest,
    read_manifest,
    reference_date_of,
    write_manifest,
)
from social_monitor.ingest import DeliveryError, load_delivery
from tests.deliveries import LAYOUTS, person

CYCLE = 2018
REFUSED, QUARANTINED, ACCEPTED = "refused", "row quarantined", "accepted"
DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-input.md"

HEADERS = {name: list(source.file_columns) for name, source in LAYOUTS.items()}
HEADER_OF = {name: {column: header for header, column in source.file_columns.items()}
             for name, source in LAYOUTS.items()}

# The personal values of the bad rows: no message and no reason in raw.rejected_rows may show any of them
# (``bad`` adds every personal value a case puts into a row; the ISO form of a date is added as well).
KEY, BORN, MOVED, STREET, HOUSE, HOUSEHOLD = "K-9931-ZX", "17.03.1961", "01.10.1990", "04799", "88z", "BG-5521"
PERSONAL_VALUES = {KEY, BORN, "1961-03-17", MOVED, "1990-10-01", STREET, HOUSE, HOUSEHOLD}

GOOD = {
    "register": [person("p1", "01.02.1980", "001"), person("p2", "03.04.2012", "261", nationality="EU"),
                 person("p3", "05.06.1940", "341", residence="N", moved="01.01.2000")],
    "sgb2": [{"Personen_ID": "p2", "BG_Nummer": "bg1", "Alter": 6, "Unterbezirk": "261"},
             {"Personen_ID": "p5", "BG_Nummer": "bg1", "Alter": 35, "Unterbezirk": "261"},
             {"Personen_ID": "p6", "BG_Nummer": "bg2", "Alter": 58, "Unterbezirk": "001"}],
    "sgb12": [{"Personen_ID": "p3", "Leistungsart": "GSI", "Geburtsdatum": "05.06.1940", "Unterbezirk": "341"},
              {"Personen_ID": "p7", "Leistungsart": "HLU", "Geburtsdatum": "12.12.1975", "Unterbezirk": "001"},
              {"Personen_ID": "p8", "Leistungsart": "GSI", "Geburtsdatum": "30.09.1950", "Unterbezirk": "261"}],
    "asylblg": [{"Personen_ID": "p4", "Geburtsdatum": "07.08.1999", "Geschlecht": "m", "Unterbezirk": "001"},
                {"Personen_ID": "p9", "Geburtsdatum": "01.01.2016", "Geschlecht": "w", "Unterbezirk": "261"},
                {"Personen_ID": "p10", "Geburtsdatum": "15.05.1988", "Geschlecht": "d", "Unterbezirk": "341"}],
}
EXTRA_SGB12 = {"Personen_ID": "p11", "Leistungsart": "HLU", "Geburtsdatum": "02.02.1970", "Unterbezirk": "001"}

# A valid row of each source holding the personal values above; ``bad`` changes it.
BAD = {
    "register": {"Personen_ID": KEY, "Geburtsdatum": BORN, "Geschlecht": "w", "Staatsangehörigkeit": "deutsch",
                 "Wohnungsstatus": "H", "Zuzugsdatum": MOVED, "Unterbezirk": "261", "Straßenschlüssel": STREET,
                 "Hausnummer": HOUSE, "Staatsangehörigkeit_2": "", "Geburtsland": "Inland", "Haushalts_ID": HOUSEHOLD},
    "sgb2": {"Personen_ID": KEY, "BG_Nummer": HOUSEHOLD, "Alter": 57, "Unterbezirk": "261"},
    "sgb12": {"Personen_ID": KEY, "Leistungsart": "HLU", "Geburtsdatum": BORN, "Unterbezirk": "261"},
    "asylblg": {"Personen_ID": KEY, "Geburtsdatum": BORN, "Geschlecht": "w", "Unterbezirk": "261"},
}
BAD_LINE = 4  # rows() puts the bad rows after two good ones: line 4 of a text file (the header is line 1)
BAD_ROW = 3  # ... and row 3 of a Parquet file


def bad(source: str, **changes: object) -> dict[str, object]:
    """The personal row of a source with columns changed (by contract name, e.g. ``sex="x"``)."""
    personal = personal_columns(LAYOUTS[source].contract)
    row = dict(BAD[source])
    for column, value in changes.items():
        row[HEADER_OF[source][column]] = value
        if column in personal and isinstance(value, str) and len(value) >= 4:
            PERSONAL_VALUES.add(value.strip())
            german = re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{4})", value.strip())
            if german:
                PERSONAL_VALUES.add(f"{german[3]}-{german[2]}-{german[1]}")
    return row


def rows(source: str, *bad_rows: object, extra: tuple = ()) -> list:
    """Two good rows, the bad ones (dicts, or raw text lines), the third good row, then ``extra``."""
    return GOOD[source][:2] + list(bad_rows) + GOOD[source][2:] + list(extra)


def csv_text(source: str, data: list, *, columns: list[str] | None = None, header: str | None = None,
             sep: str = ";", eol: str = "\n", end: str | None = None, bom: bool = False) -> str:
    """The delivered text: a header line and one line per row (a str row is written as it is)."""
    columns = HEADERS[source] if columns is None else columns
    lines = [sep.join(columns) if header is None else header]
    lines += [row if isinstance(row, str) else sep.join(_cell(row.get(h)) for h in columns) for row in data]
    return ("\ufeff" if bom else "") + eol.join(lines) + (eol if end is None else end)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _write_parquet(path: Path, data: list[dict], columns: list[str], types: dict[str, pa.DataType]) -> None:
    arrays = {}
    for header in columns:
        kind = types.get(header, pa.int16() if header == "Alter" else pa.string())
        values = [row.get(header) for row in data]
        if kind == pa.string():
            values = [None if v is None else str(v) for v in values]
        arrays[header] = pa.array(values, type=kind)
    pq.write_table(pa.table(arrays), path)


def delivery(source: str, data: list, *, raw: bytes | str | None = None, encoding: str | None = None,
             n_rows: int | None = None, manifest: dict | Callable[[dict], dict] | None = None,
             after: Callable[[Path], object] | None = None, reference_date: dt.date | None = None,
             types: dict[str, pa.DataType] | None = None, **text_options) -> Callable[[Path], Manifest]:
    """How to build a delivery: the file (from rows, or ``raw`` text/bytes) and its manifest.

    ``manifest`` changes the written manifest (a dict of fields, or a function of it); ``after`` changes
    the file after the manifest was written; ``n_rows`` is the row count the manifest announces.
    """

    def build(folder: Path) -> Manifest:
        src = LAYOUTS[source]
        ref = reference_date or reference_date_of(CYCLE)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / src.file_name(ref)
        if raw is not None:
            path.write_bytes(raw if isinstance(raw, bytes) else raw.encode(encoding or src.encoding))
        elif src.file_format == "parquet":
            _write_parquet(path, data, text_options.get("columns") or HEADERS[source], types or {})
        else:
            path.write_bytes(csv_text(source, data, **text_options).encode(encoding or src.encoding))
        manifest_path = write_manifest(path, src, ref, len(data) if n_rows is None else n_rows)
        if manifest is not None:
            content = json.loads(manifest_path.read_text(encoding="utf-8"))
            content = manifest(content) if callable(manifest) else {**content, **manifest}
            manifest_path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        if after is not None:
            after(path)
        return read_manifest(manifest_path, LAYOUTS)

    return build


@dataclass(frozen=True)
class Rejected:
    """A problem the loader must find: line (row of a Parquet file), file column (None for a problem of the
    row as a whole), a regex on the check name, and one on the reason (default: the check's regex)."""

    line: int
    column: str | None
    check: str
    reason: str | None = None


@dataclass(frozen=True)
class Case:
    kind: str
    build: Callable[[Path], Manifest]
    outcome: str
    expect: object = None  # refused: regex; row quarantined: list of Rejected; accepted: (sql, rows) or None
    share: float = 1.0  # max_rejected_share under the quarantine policy
    gap: str | None = None  # what the current code does instead: the case runs as a strict xfail


def _replace_in_file(old: bytes, new: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(path.read_bytes().replace(old, new))


def _rename_to(name: str) -> Callable[[Path], None]:
    return lambda path: path.rename(path.with_name(name))


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _damaged_parquet() -> bytes:
    """A Parquet file whose first data page is overwritten (its footer is intact)."""
    table = pa.table({"Personen_ID": [f"{KEY}-{i}" for i in range(200)], "BG_Nummer": [HOUSEHOLD] * 200,
                      "Alter": pa.array([30] * 200, pa.int16()), "Unterbezirk": ["261"] * 200})
    content = bytearray(_parquet_bytes(table))
    content[60:90] = b"\xff" * 30
    return bytes(content)


SGB2_TABLE = {"Personen_ID": [KEY, "p2", "p3"], "BG_Nummer": [HOUSEHOLD, "bg1", "bg2"],
              "Alter": pa.array([57, 6, 35], pa.int16()), "Unterbezirk": ["261", "261", "001"]}
CP1252_REGISTER = csv_text("register", rows("register", BAD["register"])).encode("cp1252")
SGB12_HEADER = ";".join(HEADERS["sgb12"])

CASES = [
    # --- encoding -------------------------------------------------------------------------------------
    Case("UTF-8 file declared cp1252",
         delivery("register", rows("register", bad("register")), encoding="utf-8"), REFUSED,
         r"^{file}, header \(line 1\): missing column\(s\) Staatsangehörigkeit, Straßenschlüssel, "
         r"Staatsangehörigkeit_2; "
         r"unexpected column\(s\) StaatsangehÃ¶rigkeit"),
    Case("cp1252 bytes in a file declared UTF-8",
         delivery("sgb12", rows("sgb12", bad("sgb12", person_key="Kö-9931-ZX")), encoding="cp1252"), REFUSED,
         r"^{file}, line 4: Invalid unicode"),
    Case("byte undefined in cp1252 (0x81)",
         delivery("register", rows("register", BAD["register"]), raw=CP1252_REGISTER.replace(b"88z", b"8\x81z")),
         REFUSED, r"^{file}, line 4: byte 0x81 is not valid cp1252"),
    Case("UTF-16 file declared UTF-8",
         delivery("asylblg", rows("asylblg", bad("asylblg")), encoding="utf-16"), REFUSED,
         r"^{file}, line 1: the header is not valid utf-8"),
    Case("UTF-16 file without a byte order mark",
         delivery("asylblg", rows("asylblg", bad("asylblg")), encoding="utf-16-le", manifest={"encoding": "utf-16"}),
         REFUSED, r"^{file}, line 1: the file is not valid utf-16"),
    # --- header and structure -------------------------------------------------------------------------
    Case("comma instead of semicolon",
         delivery("sgb12", rows("sgb12", bad("sgb12")), sep=","), REFUSED,
         r"^{file}, line 1: no ';' in the header line"),
    Case("missing column",
         delivery("sgb12", rows("sgb12", bad("sgb12")), columns=["Personen_ID", "Leistungsart", "Unterbezirk"]),
         REFUSED, r"^{file}, header \(line 1\): missing column\(s\) Geburtsdatum; expected exactly"),
    Case("extra column",
         delivery("sgb12", rows("sgb12", bad("sgb12")), columns=HEADERS["sgb12"] + ["Bemerkung"]), REFUSED,
         r"^{file}, header \(line 1\): 1 unexpected field\(s\), not shown [^\n]*; expected exactly"),
    Case("renamed column",
         delivery("asylblg", rows("asylblg", bad("asylblg")),
                  header="Personen_ID;Geburtsdatum;Geschl.;Unterbezirk"), REFUSED,
         r"^{file}, header \(line 1\): missing column\(s\) Geschlecht; unexpected column\(s\) Geschl\.;"),
    Case("header in lower case",
         delivery("sgb12", rows("sgb12", bad("sgb12")), header=SGB12_HEADER.lower()), REFUSED,
         r"^{file}, header \(line 1\): missing column\(s\) Personen_ID, Leistungsart, Geburtsdatum"),
    Case("columns in a different order",
         delivery("register", rows("register", bad("register")),
                  columns=[HEADERS["register"][i] for i in (0, 2, 1, *range(3, 12))]), REFUSED,
         r"^{file}, header \(line 1\): columns are in the order Personen_ID;Geschlecht;Geburtsdatum;"),
    Case("duplicate header column",
         delivery("sgb12", rows("sgb12", bad("sgb12")), columns=HEADERS["sgb12"] + ["Leistungsart"]), REFUSED,
         r"^{file}, header \(line 1\): columns are in the order [^\n]*;Unterbezirk;Leistungsart;"),
    Case("separator at the end of every line",
         delivery("asylblg", rows("asylblg", bad("asylblg")), columns=HEADERS["asylblg"] + [""]), REFUSED,
         r"^{file}, header \(line 1\): 1 column\(s\) with an empty name \(a separator at the end of the line\?\); "
         r"expected exactly"),
    Case("file without its header line",
         delivery("sgb12", rows("sgb12", bad("sgb12")), header=f"{KEY};HLU;{BORN};261", n_rows=4), REFUSED,
         r"^{file}, header \(line 1\): missing column\(s\) Personen_ID, Leistungsart, Geburtsdatum, Unterbezirk; "
         r"4 unexpected field\(s\), not shown [^\n]*\(is the header line missing\?\)"),
    Case("header line longer than 64 KiB",
         delivery("sgb12", rows("sgb12", bad("sgb12")), header=SGB12_HEADER + ";" + KEY * 10_000), REFUSED,
         r"^{file}, line 1: longer than 65536 bytes, so not a header line"),
    Case("Parquet column name with spaces or a byte order mark around it",
         delivery("sgb2", [], raw=_parquet_bytes(pa.table({"\ufeffPersonen_ID": SGB2_TABLE["Personen_ID"],
                                                           "BG_Nummer": SGB2_TABLE["BG_Nummer"],
                                                           "Alter ": SGB2_TABLE["Alter"],
                                                           "Unterbezirk": SGB2_TABLE["Unterbezirk"]})),
                  n_rows=3), ACCEPTED,
         ("select age from raw.sgb2 order by source_line", [(57,), (6,), (35,)])),
    Case("Parquet column of nested values (struct or list)",
         delivery("sgb2", [], raw=_parquet_bytes(pa.table({**SGB2_TABLE, "BG_Nummer": [{KEY: HOUSEHOLD}] * 3})),
                  n_rows=3), REFUSED, r"^{file}, column BG_Nummer: holds nested values \(STRUCT\)"),
    Case("Parquet file with a damaged data page",
         delivery("sgb2", [], raw=_damaged_parquet(), n_rows=200), REFUSED,
         r"^{file}: the Parquet file cannot be read \(damaged or cut off in transfer\?\)"),
    Case("Parquet file without a column",
         delivery("sgb2", rows("sgb2", bad("sgb2")), columns=["Personen_ID", "Alter", "Unterbezirk"]), REFUSED,
         r"^{file}, column list: missing column\(s\) BG_Nummer;"),
    Case("not a Parquet file (corrupt or truncated)",
         delivery("sgb2", rows("sgb2", bad("sgb2")), raw=b"PAR1 cut off in transfer " + KEY.encode()), REFUSED,
         r"^{file}: "),
    # --- the file's lines -----------------------------------------------------------------------------
    Case("empty file (0 bytes)",
         delivery("sgb12", rows("sgb12", bad("sgb12")), raw=b""), REFUSED, r"^{file}: the file is empty"),
    Case("empty first line instead of the header",
         delivery("sgb12", rows("sgb12", bad("sgb12")), header=""), REFUSED,
         r"^{file}, line 1: the header line is empty"),
    Case("header only, no data rows",
         delivery("sgb12", []), REFUSED, r"^{file}: the file holds a header but no data rows"),
    Case("truncated last line (fewer fields)",
         delivery("sgb12", GOOD["sgb12"] + ["K-9931-ZX;HLU;17.03"], end=""), REFUSED,
         r"^{file}, line 5: Expected Number of Columns: 4 Found: 3"),
    Case("line with too many fields",
         delivery("sgb12", rows("sgb12", f"{KEY};HLU;{BORN};261;GSI")), REFUSED,
         r"^{file}, line 4: Expected Number of Columns: 4 Found: 5"),
    Case("CR-only line endings",
         delivery("sgb12", rows("sgb12", bad("sgb12")), eol="\r"), REFUSED,
         r"^{file}, line 1: a carriage return \(CR\) inside the header line"),
    Case("carriage return inside a line (mixed line endings)",
         delivery("sgb12", rows("sgb12", f"{KEY};HLU\r{BORN};261")), REFUSED,
         r"^{file}, line 4: a carriage return \(CR\) without a line feed inside the line"),
    Case("unterminated quote",
         delivery("sgb12", rows("sgb12", f'{KEY};"HLU;{BORN};261')), REFUSED,
         r"^{file}, line 4: Value with unterminated quote"),
    # --- manifest -------------------------------------------------------------------------------------
    Case("manifest row count disagrees",
         delivery("sgb12", rows("sgb12", bad("sgb12")), n_rows=5), REFUSED,
         r"^{file}: the file holds 4 data rows but its manifest sgb12_2018-12-31\.manifest\.json announces 5"),
    Case("file changed after the manifest (checksum)",
         delivery("sgb12", rows("sgb12", bad("sgb12")), after=_replace_in_file(b"GSI", b"HLU")), REFUSED,
         r"^{file}: SHA-256 checksum [0-9a-f]{12}… does not match the manifest's [0-9a-f]{12}…"),
    Case("checksum in upper case (PowerShell Get-FileHash)",
         delivery("sgb12", rows("sgb12", bad("sgb12")), manifest=lambda m: {**m, "sha256": m["sha256"].upper()}),
         ACCEPTED),
    Case("manifest names a file that does not exist",
         delivery("sgb12", rows("sgb12", bad("sgb12")), after=Path.unlink), REFUSED,
         r"^{file}: file named in manifest sgb12_2018-12-31\.manifest\.json does not exist"),
    Case("manifest format disagrees with the layout",
         delivery("sgb12", rows("sgb12", bad("sgb12")), manifest={"format": "parquet"}), REFUSED,
         r"^{file}: manifest says format 'parquet', the delivery layout of sgb12 expects 'csv'"),
    Case("file named for another reference date",
         delivery("sgb12", rows("sgb12", bad("sgb12")), manifest={"file": "sgb12_2017-12-31.csv"},
                  after=_rename_to("sgb12_2017-12-31.csv")), REFUSED,
         r"^{file}: expected the file of sgb12 for 2018-12-31 to be named sgb12_2018-12-31\.csv"),
    Case("reference date not 31 December",
         delivery("sgb12", rows("sgb12", bad("sgb12")), reference_date=dt.date(CYCLE, 6, 30)), REFUSED,
         r"^{file}: [^\n]*31 December"),
    # --- values that do not parse ---------------------------------------------------------------------
    Case("letters in an integer column (SGB II age)",
         delivery("sgb2", rows("sgb2", bad("sgb2", age="sechs")), types={"Alter": pa.string()}), QUARANTINED,
         [Rejected(BAD_ROW, "Alter", "parse", "value is not a whole number")]),
    Case("fractional age (6.5)",
         delivery("sgb2", rows("sgb2", bad("sgb2", age=6.5)), types={"Alter": pa.float64()}), QUARANTINED,
         [Rejected(BAD_ROW, "Alter", "parse", "value is not a whole number")]),
    Case("age beyond the integer type (40000)",
         delivery("sgb2", rows("sgb2", bad("sgb2", age=40000)), types={"Alter": pa.int32()}), QUARANTINED,
         [Rejected(BAD_ROW, "Alter", "parse", "value is not a whole number")]),
    Case("unparseable date",
         delivery("sgb12", rows("sgb12", bad("sgb12", birth_date="k. A."))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsdatum", "parse", r"value is not a date DD\.MM\.YYYY")]),
    Case("impossible date (31.02.)",
         delivery("sgb12", rows("sgb12", bad("sgb12", birth_date="31.02.1961"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsdatum", "parse", r"value is not a date DD\.MM\.YYYY")]),
    Case("ISO date instead of DD.MM.YYYY",
         delivery("register", rows("register", bad("register", birth_date="1961-03-17"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsdatum", "parse", r"value is not a date DD\.MM\.YYYY")]),
    Case("date with a time (spreadsheet export)",
         delivery("asylblg", rows("asylblg", bad("asylblg", birth_date="17.03.1961 00:00:00"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsdatum", "parse", r"value is not a date DD\.MM\.YYYY")]),
    Case("birth date in the year 0",
         delivery("sgb12", rows("sgb12", bad("sgb12", birth_date="01.01.0000"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsdatum", "parse", r"value is not a date DD\.MM\.YYYY")]),
    # --- dates that parse but cannot be right ---------------------------------------------------------
    Case("two-digit year",
         delivery("sgb12", rows("sgb12", bad("sgb12", birth_date="17.03.61"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsdatum", "birth_date must lie on or before the reference date")]),
    Case("born after the reference date",
         delivery("register", rows("register", bad("register", birth_date="01.06.2019", move_in_date=None))),
         QUARANTINED, [Rejected(BAD_LINE, "Geburtsdatum", "birth_date must lie on or before the reference date")]),
    Case("age over 120",
         delivery("asylblg", rows("asylblg", bad("asylblg", birth_date="17.03.1890"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsdatum", "at most 120 years before")]),
    Case("move-in date before birth",
         delivery("register", rows("register", bad("register", move_in_date="01.01.1950"))), QUARANTINED,
         [Rejected(BAD_LINE, "Zuzugsdatum", "move_in_date must lie between birth_date and the reference date")]),
    Case("move-in date after the reference date",
         delivery("register", rows("register", bad("register", move_in_date="02.01.2019"))), QUARANTINED,
         [Rejected(BAD_LINE, "Zuzugsdatum", "move_in_date must lie between birth_date and the reference date")]),
    # --- codes ----------------------------------------------------------------------------------------
    Case("unknown Unterbezirk code",
         delivery("asylblg", rows("asylblg", bad("asylblg", unterbezirk_id="999"))), QUARANTINED,
         [Rejected(BAD_LINE, "Unterbezirk", "isin", r"^value fails isin\(one of the \d+ codes of the reference\)$")]),
    Case("Unterbezirk code without leading zeros",
         delivery("sgb12", rows("sgb12", bad("sgb12", unterbezirk_id="1"))), QUARANTINED,
         [Rejected(BAD_LINE, "Unterbezirk", "isin", r"it is the code '001' without its leading zeros")]),
    Case("unknown sex code",
         delivery("register", rows("register", bad("register", sex="x"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geschlecht", "isin", r"^value fails isin\(\['m', 'w', 'd', 'o'\]\)$")]),
    Case("sex code in upper case",
         delivery("asylblg", rows("asylblg", bad("asylblg", sex="W"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geschlecht", "isin", r"it differs from the code 'w' in case or white space")]),
    Case("unknown nationality group",
         delivery("register", rows("register", bad("register", nationality_group="Deutschland"))), QUARANTINED,
         [Rejected(BAD_LINE, "Staatsangehörigkeit", "isin", r"^value fails isin")]),
    Case("unknown country of birth code",
         delivery("register", rows("register", bad("register", birth_country="DE"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsland", "isin", r"^value fails isin")]),
    Case("unknown second nationality group",
         delivery("register", rows("register", bad("register", second_nationality_group="Drittland"))), QUARANTINED,
         [Rejected(BAD_LINE, "Staatsangehörigkeit_2", "isin", r"^value fails isin")]),
    Case("empty country of birth",
         delivery("register", rows("register", bad("register", birth_country=""))), QUARANTINED,
         [Rejected(BAD_LINE, "Geburtsland", "not_nullable")]),
    Case("unknown residence type",
         delivery("register", rows("register", bad("register", residence_type="Q"))), QUARANTINED,
         [Rejected(BAD_LINE, "Wohnungsstatus", "isin", r"^value fails isin\(\['H', 'N'\]\)$")]),
    Case("unknown SGB XII benefit kind",
         delivery("sgb12", rows("sgb12", bad("sgb12", benefit_kind="HzP"))), QUARANTINED,
         [Rejected(BAD_LINE, "Leistungsart", "isin", r"^value fails isin\(\['HLU', 'GSI'\]\)$")]),
    Case("tab after a code",
         delivery("sgb12", rows("sgb12", bad("sgb12", benefit_kind="GSI\t"))), QUARANTINED,
         [Rejected(BAD_LINE, "Leistungsart", "isin", r"it differs from the code 'GSI' in case or white space")]),
    Case("fields shifted in a row",
         delivery("sgb12", rows("sgb12", f"HLU;{BORN};261;{KEY}")), QUARANTINED,
         [Rejected(BAD_LINE, "Leistungsart", "isin", r"^value fails isin\(\['HLU', 'GSI'\]\)$"),
          Rejected(BAD_LINE, "Geburtsdatum", "parse", r"value is not a date DD\.MM\.YYYY"),
          Rejected(BAD_LINE, "Unterbezirk", "isin", r"^value fails isin\(one of the \d+ codes of the reference\)$")]),
    Case("a code of another column (fields shifted)",
         delivery("asylblg", rows("asylblg", bad("asylblg", sex="HLU"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geschlecht", "isin",
                   r"^value 'HLU' fails isin\(\['m', 'w', 'd', 'o'\]\): it is a code of Leistungsart")]),
    Case("empty required code",
         delivery("asylblg", rows("asylblg", bad("asylblg", sex=""))), QUARANTINED,
         [Rejected(BAD_LINE, "Geschlecht", "not_nullable")]),
    # --- personal columns (the message names the check, never the value) ------------------------------
    Case("street key not 5 digits",
         delivery("register", rows("register", bad("register", street_key="4799"))), QUARANTINED,
         [Rejected(BAD_LINE, "Straßenschlüssel", "str_matches", r"value fails str_matches")]),
    Case("house number too long",
         delivery("register", rows("register", bad("register", house_number="123456789a"))), QUARANTINED,
         [Rejected(BAD_LINE, "Hausnummer", "str_length", r"value fails str_length\(1, 8\)")]),
    Case("empty person key",
         delivery("asylblg", rows("asylblg", bad("asylblg", person_key=""))), QUARANTINED,
         [Rejected(BAD_LINE, "Personen_ID", "not_nullable")]),
    Case("person key longer than 64 characters",
         delivery("sgb12", rows("sgb12", bad("sgb12", person_key="K" * 65))), QUARANTINED,
         [Rejected(BAD_LINE, "Personen_ID", "str_length", r"value fails str_length\(1, 64\)")]),
    Case("empty household key (Parquet null)",
         delivery("sgb2", rows("sgb2", bad("sgb2", household_key=None))), QUARANTINED,
         [Rejected(BAD_ROW, "BG_Nummer", "not_nullable")]),
    Case("empty register household key",
         delivery("register", rows("register", bad("register", household_key=""))), QUARANTINED,
         [Rejected(BAD_LINE, "Haushalts_ID", "not_nullable")]),
    Case("register household key longer than 64 characters",
         delivery("register", rows("register", bad("register", household_key="H" * 65))), QUARANTINED,
         [Rejected(BAD_LINE, "Haushalts_ID", "str_length", r"value fails str_length\(1, 64\)")]),
    Case("duplicate person keys",
         delivery("register", rows("register", bad("register"), bad("register", birth_date="17.03.1962"))),
         QUARANTINED, [Rejected(4, "Personen_ID", "uniqueness", "duplicate key Personen_ID"),
                       Rejected(5, "Personen_ID", "uniqueness", "duplicate key Personen_ID")]),
    # --- ranges ---------------------------------------------------------------------------------------
    Case("SGB II age above 67",
         delivery("sgb2", rows("sgb2", bad("sgb2", age=68))), QUARANTINED,
         [Rejected(BAD_ROW, "Alter", "in_range", r"^value above the maximum 67, fails in_range\(0, 67\)$")]),
    Case("SGB II negative age",
         delivery("sgb2", rows("sgb2", bad("sgb2", age=-1))), QUARANTINED,
         [Rejected(BAD_ROW, "Alter", "in_range", r"^value below the minimum 0, fails in_range\(0, 67\)$")]),
    # --- several problems -----------------------------------------------------------------------------
    Case("two problems in one row",
         delivery("register", rows("register", bad("register", sex="x", residence_type="Q"))), QUARANTINED,
         [Rejected(BAD_LINE, "Geschlecht", "isin"), Rejected(BAD_LINE, "Wohnungsstatus", "isin")]),
    Case("row of empty fields",
         delivery("sgb12", rows("sgb12", ";;;")), QUARANTINED,
         [Rejected(BAD_LINE, header, "not_nullable") for header in HEADERS["sgb12"]]),
    Case("quarantine share exactly at the threshold",
         delivery("sgb12", rows("sgb12", bad("sgb12", benefit_kind="XX"), extra=(EXTRA_SGB12,))), QUARANTINED,
         [Rejected(BAD_LINE, "Leistungsart", "isin")], share=0.2),
    Case("quarantine share above the threshold",
         delivery("sgb12", rows("sgb12", bad("sgb12", benefit_kind="XX"),
                                extra=(bad("sgb12", person_key="K-9931-ZY", benefit_kind="XX"),))), REFUSED,
         r"^{file}: delivery refused, 2 of 5 rows \(40\.0%\) would be quarantined, more than the threshold of "
         r"20\.0% \(quarantine_max_share in city\.yml\); the problems are in raw\.rejected_rows\.\n"
         r"(?s:.*)^  - {file}, line 4, column Leistungsart: value fails isin", share=0.2),
    # --- line numbers ---------------------------------------------------------------------------------
    Case("blank line between rows",
         delivery("sgb12", GOOD["sgb12"][:2] + ["", bad("sgb12", unterbezirk_id="999")] + GOOD["sgb12"][2:],
                  n_rows=4), QUARANTINED,
         [Rejected(5, "Unterbezirk", "isin")],
         gap="DuckDB skips the blank line and the row number counts records, so the problem is reported at "
             "line 4 instead of line 5 (every later line is off by one)"),
    Case("line break inside a quoted value",
         delivery("register", [GOOD["register"][0], csv_text("register", [GOOD["register"][1]]).splitlines()[1]
                               .replace(";12a", ';"12\na"'), bad("register", sex="x"), GOOD["register"][2]]),
         QUARANTINED, [Rejected(5, "Geschlecht", "isin")],
         gap="a quoted line break makes one record span two lines; the row number counts records, so the "
             "problem is reported at line 4 instead of line 5"),
    # --- accepted -------------------------------------------------------------------------------------
    Case("CRLF line endings",
         delivery("register", rows("register", bad("register")), eol="\r\n"), ACCEPTED,
         ("select street_key, house_number from raw.register where source_line = 4", [(STREET, HOUSE)])),
    Case("UTF-8 byte order mark",
         delivery("sgb12", rows("sgb12", bad("sgb12")), bom=True), ACCEPTED,
         ("select benefit_kind from raw.sgb12 where source_line = 2", [("GSI",)])),
    Case("spaces around values (trimmed)",
         delivery("sgb12", rows("sgb12", f" {KEY} ;  HLU ; {BORN} ; 261 ")), ACCEPTED,
         ("select benefit_kind, birth_date, unterbezirk_id from raw.sgb12 where source_line = 4",
          [("HLU", dt.date(1961, 3, 17), "261")])),
    Case("no-break space after a code (trimmed)",
         delivery("sgb12", rows("sgb12", bad("sgb12", benefit_kind="GSI\xa0"))), ACCEPTED,
         ("select benefit_kind from raw.sgb12 where source_line = 4", [("GSI",)])),
    Case("spaces around header names",
         delivery("sgb12", rows("sgb12", bad("sgb12")), header=" Personen_ID ; Leistungsart;Geburtsdatum ;Unterbezirk"),
         ACCEPTED),
    Case("values in double quotes, separator inside quotes",
         delivery("register", rows("register", '"K-9931-ZX";"17.03.1961";"w";"deutsch";"H";"01.10.1990";'
                                               '"261";"04799";"12;a";"";"Inland";"HH;1"')), ACCEPTED,
         ("select sex, house_number from raw.register where source_line = 4", [("w", "12;a")])),
    Case("blank lines at the end of the file",
         delivery("asylblg", rows("asylblg", bad("asylblg")), end="\n\n\n"), ACCEPTED),
    Case("empty optional move-in date",
         delivery("register", rows("register", bad("register", move_in_date=None))), ACCEPTED,
         ("select move_in_date from raw.register where source_line = 4", [(None,)])),
    Case("day and month without leading zero",
         delivery("sgb12", rows("sgb12", bad("sgb12", birth_date="7.3.1961"))), ACCEPTED,
         ("select birth_date from raw.sgb12 where source_line = 4", [(dt.date(1961, 3, 7),)])),
    Case("comma-separated, declared in the manifest",
         delivery("asylblg", rows("asylblg", bad("asylblg")), sep=",", manifest={"delimiter": ","}), ACCEPTED,
         ("select sex, unterbezirk_id from raw.asylblg where source_line = 4", [("w", "261")])),
]


def _params(cases: list[Case]) -> list:
    return [pytest.param(case, id=case.kind,
                         marks=pytest.mark.xfail(strict=True, reason=case.gap) if case.gap else ())
            for case in cases]


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def _assert_nothing_personal(text: str) -> None:
    shown = sorted(value for value in PERSONAL_VALUES if value in text)
    assert not shown, f"personal values shown: {shown}"


def _count(con, table: str) -> int:
    schema, name = table.split(".")
    exists = con.execute("select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
                         [schema, name]).fetchone()[0]
    return con.execute(f"select count(*) from {table}").fetchone()[0] if exists else 0


def _assert_nothing_loaded(con, source: str) -> None:
    assert _count(con, f"raw.{LAYOUTS[source].table}") == 0
    assert _count(con, "raw.deliveries") == 0


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_delivery(tmp_path, con, case: Case):
    manifest = case.build(tmp_path / "landing")
    name, source = manifest.data_path.name, manifest.source
    table = LAYOUTS[source].table

    if case.outcome == REFUSED:
        with pytest.raises(DeliveryError) as refused:
            load_delivery(con, manifest, policy="quarantine", max_rejected_share=case.share)
        message = str(refused.value)
        assert message.startswith(name)
        assert re.search(case.expect.replace("{file}", re.escape(name)), message, re.M), message
        _assert_nothing_personal(message)
        _assert_nothing_loaded(con, source)

    elif case.outcome == QUARANTINED:
        with pytest.raises(DeliveryError) as refused:  # policy "fail": one problem refuses the delivery
            load_delivery(con, manifest)
        message = str(refused.value)
        for problem in case.expect:
            where = f", column {problem.column}" if problem.column else ""
            reason = problem.reason or problem.check  # "^…": the reason starts with it
            reason = reason[1:] if reason.startswith("^") else rf"[^\n]*(?:{reason})"
            assert re.search(rf"^  - {re.escape(name)}, line {problem.line}{re.escape(where)}: {reason}",
                             message, re.M), message
        _assert_nothing_personal(message)
        _assert_nothing_loaded(con, source)

        result = load_delivery(con, manifest, policy="quarantine", max_rejected_share=case.share)
        bad_lines = {problem.line for problem in case.expect}
        assert result.rows_in == manifest.rows == result.rows_accepted + result.rows_rejected
        assert result.rows_rejected == len(bad_lines)
        rejected = con.execute("select source_file, source_line, column_name, check_name, reason "
                               "from raw.rejected_rows where source = ? and report_cycle = ?",
                               [source, CYCLE]).fetchall()
        assert {row[1] for row in rejected} == bad_lines
        for problem in case.expect:
            assert any(row[0] == name and row[1] == problem.line and row[2] == problem.column
                       and re.search(problem.check, row[3]) and re.search(problem.reason or problem.check, row[4])
                       for row in rejected), rejected
        _assert_nothing_personal("\n".join(row[4] for row in rejected))
        first = 1 if LAYOUTS[source].file_format == "parquet" else 2
        loaded = {r[0] for r in con.execute(f"select source_line from raw.{table}").fetchall()}
        assert loaded == set(range(first, first + result.rows_in)) - bad_lines
        recorded = con.execute("select rows_in, rows_accepted, rows_rejected, policy from raw.deliveries "
                               "where source = ? and report_cycle = ?", [source, CYCLE]).fetchall()
        assert recorded == [(result.rows_in, result.rows_accepted, result.rows_rejected, "quarantine")]

    else:
        result = load_delivery(con, manifest)
        assert (result.rows_in, result.rows_accepted, result.rows_rejected) == (manifest.rows, manifest.rows, 0)
        assert _count(con, f"raw.{table}") == manifest.rows
        if case.expect:
            sql, expected = case.expect
            assert con.execute(sql).fetchall() == expected


# --- kinds of a different shape -----------------------------------------------------------------------


def _load(con, folder: Path, source: str, cycle: int = CYCLE, **options):
    return load_delivery(con, find_manifest(folder, LAYOUTS[source], cycle), **options)


def _state(con, source: str) -> tuple:
    table = LAYOUTS[source].table
    return (con.execute(f"select report_cycle, source_line, source_file from raw.{table} order by all").fetchall(),
            con.execute("select report_cycle, sha256, rows_in, rows_accepted, rows_rejected from raw.deliveries "
                        "where source = ? order by all", [source]).fetchall(),
            con.execute("select * from raw.rejected_rows where source = ? order by all", [source]).fetchall())


def test_repeated_delivery_gives_the_same_tables(tmp_path, con):
    """The same delivery loaded twice: the same rows, one record in raw.deliveries, no duplicate rejections."""
    folder = tmp_path / "landing"
    delivery("register", rows("register", bad("register", sex="x")))(folder)
    _load(con, folder, "register", policy="quarantine")
    first = _state(con, "register")
    _load(con, folder, "register", policy="quarantine")
    assert _state(con, "register") == first
    assert (len(first[0]), len(first[1]), len(first[2])) == (3, 1, 1)


def test_corrected_delivery_replaces_the_cycle(tmp_path, con):
    """A corrected delivery for a cycle replaces that cycle's rows, record and rejections; other cycles stay."""
    folder = tmp_path / "landing"
    delivery("sgb12", rows("sgb12", bad("sgb12", benefit_kind="XX")))(folder)
    _load(con, folder, "sgb12", policy="quarantine")
    delivery("sgb12", GOOD["sgb12"], reference_date=reference_date_of(2012))(folder)
    _load(con, folder, "sgb12", cycle=2012)
    other_cycle = [r for r in _state(con, "sgb12")[0] if r[0] == 2012]

    delivery("sgb12", rows("sgb12", bad("sgb12")))(folder)  # the corrected file, same name, new manifest
    result = _load(con, folder, "sgb12", policy="quarantine")
    loaded, deliveries, rejected = _state(con, "sgb12")
    assert (result.rows_accepted, result.rows_rejected) == (4, 0)
    assert [r for r in loaded if r[0] == CYCLE] == [(CYCLE, line, "sgb12_2018-12-31.csv") for line in range(2, 6)]
    assert [r for r in loaded if r[0] == 2012] == other_cycle
    assert [r[2:] for r in deliveries if r[0] == CYCLE] == [(4, 4, 0)]
    assert len(deliveries) == 2 and rejected == []


def test_refused_correction_keeps_the_loaded_delivery(tmp_path, con):
    """A correction that is refused leaves the cycle as it was loaded before (rows and record)."""
    folder = tmp_path / "landing"
    delivery("asylblg", rows("asylblg", bad("asylblg")))(folder)
    _load(con, folder, "asylblg")
    loaded, deliveries, _ = _state(con, "asylblg")
    delivery("asylblg", rows("asylblg", bad("asylblg", sex="X")))(folder)
    with pytest.raises(DeliveryError, match=r"^asylblg_2018-12-31\.csv: delivery refused"):
        _load(con, folder, "asylblg")
    assert _state(con, "asylblg")[:2] == (loaded, deliveries)
    # the refused file's problems are recorded as such, beside (not instead of) the loaded delivery's
    outcomes = con.execute("select delivery_outcome, column_name from raw.rejected_rows "
                           "where source = 'asylblg'").fetchall()
    assert outcomes == [("refused", "Geschlecht")]


def test_previous_cycles_file_delivered_again_is_refused(tmp_path, con):
    folder = tmp_path / "landing"
    delivery("register", rows("register", bad("register")), reference_date=reference_date_of(2012))(folder)
    _load(con, folder, "register", cycle=2012)
    old = folder / LAYOUTS["register"].file_name(reference_date_of(2012))
    again = folder / LAYOUTS["register"].file_name(reference_date_of(CYCLE))
    again.write_bytes(old.read_bytes())
    write_manifest(again, LAYOUTS["register"], reference_date_of(CYCLE), 4)
    with pytest.raises(DeliveryError, match=r"^bevoelkerung_2018-12-31\.csv: .*bevoelkerung_2012-12-31\.csv"):
        _load(con, folder, "register")


def test_row_problems_across_columns_name_the_file_column(tmp_path, con):
    delivery("register", rows("register", bad("register", birth_date="01.06.2019", move_in_date=None),
                              bad("register", person_key="K-9931-ZY", move_in_date="01.01.1950"),
                              bad("register", person_key="p1")))(tmp_path)
    _load(con, tmp_path, "register", policy="quarantine")
    columns = con.execute("select source_line, column_name from raw.rejected_rows order by all").fetchall()
    assert (4, "Geburtsdatum") in columns and (5, "Zuzugsdatum") in columns and (6, "Personen_ID") in columns


MANIFEST_FIELDS = {"source": "sgb12", "reference_date": "2018-12-31", "file": "sgb12_2018-12-31.csv",
                   "format": "csv", "encoding": "utf-8", "delimiter": ";", "rows": 4, "sha256": "0" * 64}


@pytest.mark.parametrize(("content", "says"), [
    pytest.param("{not json", "cannot read manifest", id="manifest is not JSON"),
    pytest.param({k: v for k, v in MANIFEST_FIELDS.items() if k != "sha256"}, "manifest lacks sha256",
                 id="manifest lacks a field"),
    pytest.param({**MANIFEST_FIELDS, "source": "wohngeld"}, "unknown source 'wohngeld'",
                 id="manifest names an unknown source"),
    pytest.param({**MANIFEST_FIELDS, "reference_date": "31.12.2018"}, "reference_date '31.12.2018' is not YYYY-MM-DD",
                 id="manifest reference date in German format"),
    pytest.param({**MANIFEST_FIELDS, "rows": "vier"}, "rows",
                 id="manifest row count not a number"),
    pytest.param({**MANIFEST_FIELDS, "encoding": "ANSI"}, "field encoding 'ANSI' is not an encoding",
                 id="unknown encoding in the manifest (ANSI)"),
])
def test_unreadable_manifest_is_refused(tmp_path, content, says):
    path = tmp_path / "sgb12_2018-12-31.manifest.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(ManifestError, match=rf"^{re.escape(str(path))}: .*{re.escape(says)}"):
        find_manifest(tmp_path, LAYOUTS["sgb12"], CYCLE)


STANDALONE_KINDS = ["repeated delivery", "corrected delivery", "refused correction",
                    "previous cycle's file delivered again", "cross-column problems",
                    "manifest is not JSON", "manifest lacks a field", "manifest names an unknown source",
                    "manifest reference date in German format", "manifest row count not a number",
                    "unknown encoding in the manifest (ANSI)",
                    "person in SGB II and AsylbLG at once", "missing source for a cycle"]


def test_every_kind_is_documented():
    documented = DOC.read_text(encoding="utf-8")
    missing = [kind for kind in [case.kind for case in CASES] + STANDALONE_KINDS if f"| {kind} |" not in documented]
    assert not missing, f"not in the table of {DOC.name}: {missing}"
    assert len(CASES) == len({case.kind for case in CASES})
