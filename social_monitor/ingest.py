"""Load one raw delivery into the warehouse's ``raw`` schema, parsed and validated against its contract.

The path of a delivery:

1. The manifest is checked against the file (it exists, its SHA-256 checksum matches).
2. DuckDB reads the file as text (every column VARCHAR, with its line number), after checking the header
   against the contract (``schemas/raw.py``). A cp1252 (or latin-1) file is read by DuckDB as latin-1 when
   it holds no byte 0x80–0x9F, the only bytes in which the two differ; a byte undefined in cp1252 refuses
   it; a file with such bytes (€, „, –, …) or in another encoding is transcoded to UTF-8 first.
3. DuckDB parses the text into typed columns (German dates DD.MM.YYYY, integers) in one pass and stores
   them in a scratch database (compressed, in a temporary folder, deleted after the load), with the
   headers of the values that did not parse (``_unparsed``). Each is a row-level problem named by file,
   line and column.
4. Key uniqueness (the contract's ``Config.unique``) spans the whole delivery: DuckDB checks it in SQL.
   Pandera (polars backend, data checks on) validates every typed row in batches of ``ROWS_PER_BATCH``
   (streamed as Arrow record batches, so memory does not grow with the delivery): allowed codes, ranges,
   date plausibility. Failures are mapped back to file lines.
5. Person and household keys are replaced by keyed-hash pseudonyms (HMAC-SHA256), and the accepted rows
   replace the delivery's report cycle in ``raw.<source>`` in one transaction, and the
   delivery is recorded in ``raw.deliveries``; rejected rows go to ``raw.rejected_rows`` with the reason.

Whether a problem refuses the whole delivery or quarantines the rows is the ``policy``: ``"fail"``
(default) refuses the delivery on any problem; ``"quarantine"`` loads the valid rows and counts the rest,
unless the rejected share exceeds ``max_rejected_share``. Problems with the file as a whole (checksum,
header, row count, reference date, no data rows) always refuse it. The catalogue of every kind of bad
delivery and what happens to it: docs/bad-input.md.
Rows in = rows accepted + rows rejected, always. No message ever shows the value of a personal column.

DuckDB works within ``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT`` (default 2GB) during a load and spills to disk
beyond it.
"""

from __future__ import annotations

import codecs
import copy
import functools
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandera.polars as pa
import polars as pl
import pyarrow
from pandera.config import ValidationDepth, config_context

from schemas.raw import RawDelivery, check_column, file_columns, personal_columns, pseudonymised_columns
from social_monitor.deliveries import (
    SOURCES,
    Manifest,
    Source,
    check_identity,
    data_file_problem,
    one_line,
    sha256_of,
)
from social_monitor.pseudonyms import KEY_ENV, REKEY_REMEDY, PseudonymKey

POLICIES = ("fail", "quarantine")
MAX_LISTED_PROBLEMS = 10
ROWS_PER_BATCH = 1_000_000  # rows Pandera validates at a time: bounds the loader's memory at any delivery size
MEMORY_LIMIT_ENV = "SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"
CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"  # the bytes of 0x80–0x9F that cp1252 leaves undefined

RAW_DDL = """
create schema if not exists raw;
create table if not exists raw.deliveries (
    source varchar not null,
    report_cycle integer not null,
    reference_date date not null,
    source_file varchar not null,
    sha256 varchar not null,
    rows_in bigint not null,
    rows_accepted bigint not null,
    rows_rejected bigint not null,
    policy varchar not null,
    loaded_at timestamp not null,
    primary key (source, report_cycle)
);
create table if not exists raw.rejected_rows (
    source varchar not null,
    report_cycle integer not null,
    source_file varchar not null,
    source_line bigint,
    column_name varchar,
    check_name varchar not null,
    reason varchar not null
);
-- 'quarantined' (rows held back from a loaded delivery) or 'refused' (problems of a refused delivery; the
-- cycle keeps its earlier load and that load's quarantined rows)
alter table raw.rejected_rows add column if not exists delivery_outcome varchar;
-- the pseudonym key's fingerprint (social_monitor.pseudonyms) a delivery was loaded under; NULL for a load
-- made before fingerprints were recorded (key unknown)
alter table raw.deliveries add column if not exists key_fingerprint varchar;
"""


class DeliveryError(ValueError):
    """A delivery that was refused. The message names the file, and where known the line and column."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a delivery; ``line`` is None for a problem with the file as a whole."""

    file: str
    line: int | None
    column: str | None
    check: str
    reason: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.reason}"


@dataclass
class LoadResult:
    source: str
    report_cycle: int
    source_file: str
    rows_in: int
    rows_accepted: int
    rows_rejected: int
    seconds: float
    problems: list[Problem] = field(default_factory=list)

    def as_metadata(self) -> dict[str, object]:
        """Counts only: safe for Dagster metadata and logs."""
        return {
            "source_file": self.source_file,
            "rows_in": self.rows_in,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "seconds": round(self.seconds, 2),
        }


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RAW_DDL)
    for source in SOURCES.values():
        con.execute(f"create table if not exists raw.{source.table} ({_table_columns_sql(source.contract)})")


def load_delivery(
    con: duckdb.DuckDBPyConnection, manifest: Manifest, *, policy: str = "fail", max_rejected_share: float = 1.0,
    key: PseudonymKey | None = None,
) -> LoadResult:
    """Load the delivery a manifest describes into ``raw.<source>``, replacing its report cycle.

    Under the quarantine policy a delivery whose rejected rows exceed ``max_rejected_share`` of its rows is
    refused as a whole: so many bad rows mean a broken extract, not a few bad records. Person and household
    keys are validated as delivered and stored as keyed-hash pseudonyms (``social_monitor.pseudonyms``;
    ``key`` defaults to the one from the environment).
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, not {policy!r}")
    key = key or PseudonymKey.from_env()
    if not 0 <= max_rejected_share <= 1:
        raise ValueError(f"max_rejected_share must lie between 0 and 1, not {max_rejected_share!r}")
    started = time.perf_counter()
    source = SOURCES[manifest.source]
    contract = source.contract
    path = manifest.data_path
    name = path.name
    ensure_raw_schema(con)
    _check_file(manifest, source)
    _check_key(con, key, name)  # early, before the file is read; again in the transaction that loads it
    _check_not_another_cycles_file(con, manifest, source)

    with _memory_limit(con), tempfile.TemporaryDirectory(prefix="social-monitor-") as tmp, \
            _scratch_database(con, Path(tmp)) as scratch:
        stored = f"{scratch}._typed"
        with _text_view(con, source, manifest, Path(tmp)) as text_view:
            try:
                con.execute(f"create table {stored} as {_typed_select(contract, text_view)}")
            except duckdb.Error as exc:
                if not _is_csv_error(exc):
                    raise
                raise DeliveryError(_csv_error_message(name, exc)) from None
            finally:
                con.execute("drop view if exists _text")  # a view of the delivered file: not kept in the session
        # The rows are stored in file order (DuckDB preserves insertion order and reads in parallel, which
        # numbering the rows as they are read would prevent): a row's line is its rowid + the first data line.
        first_line = 1 if source.file_format == "parquet" else 2
        typed = f"(select rowid + {first_line} as source_line, * from {stored})"
        rows_in = con.execute(f"select count(*) from {stored}").fetchone()[0]
        if rows_in != manifest.rows:
            raise DeliveryError(
                f"{name}: the file holds {rows_in} data rows but its manifest "
                f"{manifest.path.name} announces {manifest.rows}; the delivery is incomplete or not the "
                "one announced"
            )
        if rows_in == 0:
            raise DeliveryError(f"{name}: the file holds a header but no data rows; a delivery for report cycle "
                                f"{manifest.report_cycle} cannot be empty")
        unparsed = _parse_problems(con, contract, typed, name)
        reported = {(p.line, p.column) for p in unparsed}
        problems = (unparsed + _duplicate_key_problems(con, contract, typed, name, reported)
                    + _contract_problems(con, contract, typed, manifest, reported))
        problems.sort(key=lambda p: (p.line is not None, p.line or 0))  # in file order, whatever the batches
        rejected_lines = sorted({p.line for p in problems if p.line is not None})
        whole_file = [p for p in problems if p.line is None]
        if whole_file or (problems and policy == "fail"):
            _record_rejections(con, source, manifest, problems, "refused")
            raise DeliveryError(_refusal_message(name, problems, len(rejected_lines), rows_in), problems)
        if len(rejected_lines) > max_rejected_share * rows_in:
            _record_rejections(con, source, manifest, problems, "refused")
            raise DeliveryError(
                f"{name}: delivery refused, {len(rejected_lines)} of {rows_in} rows "
                f"({len(rejected_lines) / rows_in:.1%}) would be quarantined, more than the threshold of "
                f"{max_rejected_share:.1%} (quarantine_max_share in config/city.yml); the problems are in "
                "raw.rejected_rows.\n" + _refusal_message(name, problems, len(rejected_lines), rows_in), problems)

        pseudonymised = {column: key.sql(column) for column in pseudonymised_columns(source)}
        rows = f"select {_row_select(contract, manifest, pseudonymised)} from {typed}"
        con.execute("begin transaction")
        try:
            if rejected_lines:
                con.execute("create or replace temp table _rejected_lines (source_line bigint)")
                _insert_arrow(con, "_rejected_lines",
                              pyarrow.table({"source_line": pyarrow.array(rejected_lines, pyarrow.int64())}))
                rows += " where source_line not in (select source_line from _rejected_lines)"
            _record_rejections(con, source, manifest, problems, "quarantined")
            _check_key(con, key, name)
            con.execute(f"delete from raw.{source.table} where report_cycle = ?", [manifest.report_cycle])
            con.execute(f"insert into raw.{source.table} {rows}")
            accepted = rows_in - len(rejected_lines)
            con.execute(
                "insert or replace into raw.deliveries (source, report_cycle, reference_date, source_file, sha256, "
                "rows_in, rows_accepted, rows_rejected, policy, loaded_at, key_fingerprint) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp, ?)",
                [source.name, manifest.report_cycle, manifest.reference_date, name, manifest.sha256,
                 rows_in, accepted, len(rejected_lines), policy, key.fingerprint],
            )
            con.execute("commit")
        except Exception:
            try:
                con.execute("rollback")
            except duckdb.Error:  # a failed commit (a full disk) leaves none: the error raised is the cause
                pass
            raise
        finally:
            con.execute("drop table if exists _rejected_lines")

    return LoadResult(
        source=source.name,
        report_cycle=manifest.report_cycle,
        source_file=name,
        rows_in=rows_in,
        rows_accepted=rows_in - len(rejected_lines),
        rows_rejected=len(rejected_lines),
        seconds=time.perf_counter() - started,
        problems=problems,
    )


@contextmanager
def _memory_limit(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's memory limit for the load (``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT``, default 2GB): beyond it
    DuckDB spills to its temp directory instead of growing. A lower limit set on the connection is kept;
    the connection's setting is restored afterwards (it holds for the whole database)."""
    wanted = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    before = con.execute("select current_setting('memory_limit')").fetchone()[0]
    wanted_bytes, before_bytes = _size_in_bytes(wanted), _size_in_bytes(before)
    if wanted_bytes is not None and before_bytes is not None and wanted_bytes >= before_bytes:
        yield
        return
    try:
        con.execute(f"set memory_limit = {_sql_str(wanted)}")
    except duckdb.Error as exc:
        raise ValueError(f"{MEMORY_LIMIT_ENV}={wanted!r} is not a DuckDB memory limit (e.g. 2GB): {exc}") from None
    try:
        yield
    finally:
        if before == _default_memory_limit():
            con.execute("reset memory_limit")
        else:  # as DuckDB shows it (to 0.1 of its unit: the closest there is)
            con.execute(f"set memory_limit = {_sql_str(before)}")


@functools.cache
def _default_memory_limit() -> str:
    with duckdb.connect() as fresh:
        return fresh.execute("select current_setting('memory_limit')").fetchone()[0]


def _size_in_bytes(text: str) -> float | None:
    """'2GB', '1.8 GiB', '512 MiB', '1000000' in bytes; None if it is not such a size."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?i?b|bytes)?\s*", text, re.I)
    if not match:
        return None
    unit = (match.group(2) or "b").lower()
    power = " kmgt".index(unit[0]) if unit[0] in "kmgt" else 0
    return float(match.group(1)) * (1024 if "i" in unit else 1000) ** power


@contextmanager
def _scratch_database(con: duckdb.DuckDBPyConnection, folder: Path) -> Iterator[str]:
    """A DuckDB database file in ``folder`` for the typed rows of one load, attached under a fresh name.

    Its tables are stored compressed (a temp table would hold every row uncompressed, about 150 bytes a
    register row, and spill that to disk at scale); the file holds delivered identifiers, so it lives only
    in the load's temporary folder, never in the warehouse."""
    alias = f"_load_{uuid.uuid4().hex[:12]}"
    con.execute(f"attach {_sql_str(folder / 'scratch.duckdb')} as {alias}")
    try:
        yield alias
    finally:
        # dropped first: detaching would checkpoint the tables, rewriting them (seconds at scale) for nothing
        for (table,) in con.execute("select table_name from duckdb_tables() where database_name = ?",
                                    [alias]).fetchall():
            con.execute(f"drop table {alias}.{_quote(table)}")
        con.execute(f"detach {alias}")


# --- the file as a whole -----------------------------------------------------------------------------


def _check_file(manifest: Manifest, source: Source) -> None:
    path, name = manifest.data_path, manifest.data_path.name
    check_identity(manifest)  # source and date as the manifest's own name says (read_manifest checks it too)
    problem = data_file_problem(manifest)  # a regular file in the landing folder: no link, no path out of it
    if problem:
        raise DeliveryError(one_line(f"{name}: {problem}"))
    expected_name = source.file_name(manifest.reference_date)
    if name != expected_name:
        raise DeliveryError(f"{name}: expected the file of {source.name} for {manifest.reference_date} to be "
                            f"named {expected_name}")
    if (manifest.reference_date.month, manifest.reference_date.day) != (12, 31):
        raise DeliveryError(f"{name}: reference date {manifest.reference_date} in manifest {manifest.path.name} is "
                            "not 31 December; a report cycle's deliveries are taken on 31.12.")
    if manifest.file_format != source.file_format:
        raise DeliveryError(f"{name}: manifest says format {manifest.file_format!r}, the contract of "
                            f"{source.name} expects {source.file_format!r}")
    actual = sha256_of(path)
    if actual != manifest.sha256:
        raise DeliveryError(f"{name}: SHA-256 checksum {actual[:12]}… does not match the manifest's "
                            f"{manifest.sha256[:12]}…; the file changed after it was announced")
    if path.stat().st_size == 0:
        raise DeliveryError(f"{name}: the file is empty (expected at least a header line)")


def _check_key(con: duckdb.DuckDBPyConnection, key: PseudonymKey, name: str) -> None:
    """Refuse a load under a pseudonym key other than the one every delivery in the warehouse was loaded
    under: its pseudonyms would not match the other sources' and cycles' (persons counted twice, the SGB II /
    AsylbLG overlap check blind). The remedy is a full reload under the new key (``make rekey``)."""
    others = con.execute("select key_fingerprint, count(*) from raw.deliveries where key_fingerprint is distinct "
                         "from ? group by all order by all", [key.fingerprint]).fetchall()
    if not others:
        return
    loaded = "; ".join(f"{count} under fingerprint {fingerprint[:12]}" if fingerprint else
                       f"{count} loaded before key fingerprints were recorded (key unknown)"
                       for fingerprint, count in others)
    raise DeliveryError(
        f"{name}: refused: the pseudonym key ({key.description}, fingerprint {key.fingerprint[:12]}) is not the "
        f"key the warehouse's deliveries were loaded under ({loaded}); its pseudonyms would not match theirs. "
        f"Set {KEY_ENV} back to the warehouse's key, or change the key with a full reload of every cycle: "
        f"{REKEY_REMEDY}")


def _check_not_another_cycles_file(con: duckdb.DuckDBPyConnection, manifest: Manifest, source: Source) -> None:
    """The very file of another report cycle, sent again under this cycle's name, is refused."""
    other = con.execute(
        "select report_cycle, source_file from raw.deliveries where source = ? and sha256 = ? and report_cycle <> ?",
        [source.name, manifest.sha256, manifest.report_cycle]).fetchone()
    if other:
        raise DeliveryError(f"{manifest.data_path.name}: the file is byte for byte the delivery of report cycle "
                            f"{other[0]} ({other[1]}); a new cycle needs its own extract")


@contextmanager
def _text_view(con: duckdb.DuckDBPyConnection, source: Source, manifest: Manifest, tmp: Path) -> Iterator[str]:
    """A temp view of the file with every contract column as text, in file order."""
    columns = file_columns(source.contract)
    path, name = manifest.data_path, manifest.data_path.name
    if source.file_format == "parquet":
        try:
            present = [row[0] for row in con.execute("select name from parquet_schema(?) where name <> 'schema'",
                                                     [str(path)]).fetchall()]
        except duckdb.Error:
            raise DeliveryError(f"{name}: not a readable Parquet file (damaged or cut off in transfer?)") from None
        _check_header(name, present, list(columns), line_word="column list")
        selected = ", ".join(f'cast("{h}" as varchar) as "{h}"' for h in columns)
        con.execute(f"create or replace temp view _text as select {selected} from read_parquet({_sql_str(path)})")
        yield "_text"
        return

    encoding = manifest.encoding.lower().replace("_", "-")
    delimiter = manifest.delimiter or ";"
    csv_path, csv_encoding = _readable_by_duckdb(path, encoding, tmp)
    with open(csv_path, "rb") as handle:
        raw_header = handle.readline().rstrip(b"\r\n")
    try:  # a file read as latin-1 has no byte 0x80–0x9F: its header decodes the same in its own encoding
        header_line = raw_header.decode("utf-8" if csv_encoding == "utf-8" else encoding)
    except (UnicodeDecodeError, LookupError):
        raise DeliveryError(f"{name}, line 1: the header is not valid {encoding}; the file is not in the "
                            "encoding its manifest states") from None
    if not header_line:
        raise DeliveryError(f"{name}, line 1: the header line is empty")
    if delimiter not in header_line and len(columns) > 1:
        raise DeliveryError(f"{name}, line 1: no {delimiter!r} in the header line; the file is not separated "
                            f"by {delimiter!r} as its manifest says")
    _check_header(name, header_line.split(delimiter), list(columns), line_word="header (line 1)")
    spec = "{" + ", ".join(f"{_sql_str(h)}: 'VARCHAR'" for h in columns) + "}"
    con.execute(
        f"create or replace temp view _text as select * from read_csv({_sql_str(csv_path)}, "
        f"delim = {_sql_str(delimiter)}, header = true, columns = {spec}, auto_detect = false, quote = '\"', "
        f"escape = '\"', encoding = {_sql_str(csv_encoding)})"
    )
    yield "_text"


def _readable_by_duckdb(path: Path, encoding: str, tmp: Path) -> tuple[Path, str]:
    """The file and the encoding DuckDB reads it in: the file itself if DuckDB reads its encoding, else a
    UTF-8 copy made in ``tmp``.

    DuckDB reads UTF-8 and latin-1. cp1252 is latin-1 but for the bytes 0x80–0x9F, which latin-1 maps to
    control characters (DuckDB refuses them) and cp1252 to € ‚ ƒ „ … and others, five of them undefined. A
    cp1252 or latin-1 file without any of those bytes (the usual register: umlauts and ß are above 0x9F) is
    read as latin-1 directly, with the same text as the transcoding gives; one with such bytes is transcoded.
    """
    if encoding in ("utf-8", "utf8", "ascii"):
        return path, "utf-8"
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DeliveryError(f"{path.name}: unknown encoding {encoding!r} in the manifest") from None
    if codec in ("cp1252", "iso8859-1"):
        undefined = CP1252_UNDEFINED if codec == "cp1252" else b""
        if not _has_bytes_80_to_9f(path, encoding, undefined):
            return path, "latin-1"
    return _as_utf8(path, encoding, tmp), "utf-8"


def _has_bytes_80_to_9f(path: Path, encoding: str, undefined: bytes) -> bool:
    """Whether the file holds any byte 0x80–0x9F; the first one of ``undefined`` refuses the file, as the
    decoder would."""
    found = False
    offset = 0
    undefined_codes = np.frombuffer(undefined, np.uint8)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            codes = np.frombuffer(block, np.uint8)
            in_range = (codes - np.uint8(0x80)) < np.uint8(0x20)  # 0x80–0x9F, in one pass (uint8 wraps)
            if in_range.any():
                found = True
                if undefined_codes.size:
                    where = np.flatnonzero(in_range)
                    bad = where[np.isin(codes[where], undefined_codes)]
                    if bad.size:
                        _refuse_undefined_byte(path, encoding, offset + int(bad[0]))
            offset += len(block)
    return found


def _refuse_undefined_byte(path: Path, encoding: str, position: int) -> None:
    line = 1
    with open(path, "rb") as handle:
        while handle.tell() < position:
            line += handle.read(min(1 << 22, position - handle.tell())).count(b"\n")
        byte = handle.read(1)[0]
    raise DeliveryError(f"{path.name}, line {line}: byte 0x{byte:02x} is not valid {encoding}; the file is not in "
                        "the encoding its manifest states")


def _as_utf8(path: Path, encoding: str, tmp: Path) -> Path:
    """A UTF-8 copy of the file in ``tmp``."""
    target = tmp / path.name
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
        line = 1
        for block in iter(lambda: src.read(1 << 22), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                bad_line = line + block[: exc.start].count(b"\n")
                raise DeliveryError(f"{path.name}, line {bad_line}: byte 0x{block[exc.start]:02x} is not valid "
                                    f"{encoding}; the file is not in the encoding its manifest states") from None
            line += block.count(b"\n")
            dst.write(text)
        dst.write(decoder.decode(b"", final=True))
    return target


def _check_header(name: str, present: list[str], expected: list[str], *, line_word: str) -> None:
    present = [p.strip().lstrip("\ufeff") for p in present]
    missing = [h for h in expected if h not in present]
    extra = [h for h in present if h not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing column(s) " + ", ".join(missing))
        if extra:
            parts.append("unexpected column(s) " + ", ".join(extra))
        raise DeliveryError(f"{name}, {line_word}: " + "; ".join(parts) + f"; expected exactly {';'.join(expected)}")
    if present != expected:
        raise DeliveryError(f"{name}, {line_word}: columns are in the order {';'.join(present)}; expected "
                            f"{';'.join(expected)}")


def _is_csv_error(exc: duckdb.Error) -> bool:
    return bool(re.search(r"CSV Error|Invalid unicode|unterminated quote", str(exc)))


def _csv_error_message(name: str, exc: duckdb.Error) -> str:
    """DuckDB's CSV error, reduced to line and cause: it quotes the offending line, which may be personal."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    cause = re.search(r"(Expected Number of Columns: \d+ Found: \d+|Value with unterminated quote[^\n]*|"
                      r"Invalid unicode[^\n]*)", text)
    where = f", line {line.group(1)}" if line else ""
    what = cause.group(1) if cause else "the file cannot be read as semicolon-separated text"
    return f"{name}{where}: {what}"


# --- rows -------------------------------------------------------------------------------------------


def _typed_select(contract: type[RawDelivery], text_view: str) -> str:
    """The contract's file columns parsed into their types, and ``_unparsed``: the headers whose non-empty
    text did not parse (NULL when every value parsed), found in the same pass.

    The lineage columns (line, file, report cycle, reference date) are added when the rows are read."""
    columns = file_columns(contract)
    schema = contract.to_schema()
    trimmed = [f"nullif(trim({_quote(header)}), '') as _v{i}" for i, header in enumerate(columns)]
    parsed, failed = [], []
    for i, (header, column) in enumerate(columns.items()):
        dtype = schema.columns[column].dtype
        parsed.append(f"{_parse_expr(dtype, f'_v{i}')} as {column}")
        if _parse_expectation(dtype):
            parsed.append(f"_v{i}")
            failed.append((f"{column} is null and _v{i} is not null", header))
    if failed:
        any_failed = " or ".join(f"({condition})" for condition, _ in failed)
        listed = ", ".join(f"case when {condition} then {_sql_str(header)} end" for condition, header in failed)
        unparsed = f"case when {any_failed} then list_filter([{listed}], h -> h is not null) end"
    else:
        unparsed = "cast(null as varchar[])"
    return (f"select {', '.join(columns.values())}, {unparsed} as _unparsed "
            f"from (select {', '.join(parsed)} from (select {', '.join(trimmed)} from {text_view}))")


def _parse_expr(dtype: object, value: str) -> str:
    """The typed value of a trimmed text (NULL for an empty one)."""
    kind = str(dtype)
    if kind == "Date":
        return f"cast(try_strptime({value}, '%d.%m.%Y') as date)"
    if kind.startswith("Int"):  # "6.5" is not a whole number (a plain cast would round it to 7)
        return (f"case when regexp_full_match({value}, '[+-]?[0-9]+([.]0+)?') "
                f"then try_cast(try_cast({value} as double) as {_duckdb_type(dtype)}) end")
    return value


def _parse_expectation(dtype: object) -> str | None:
    """What a value of a type that is parsed from text must be, for the message; None for text."""
    kind = str(dtype)
    if kind == "Date":
        return "a date DD.MM.YYYY"
    if kind.startswith("Int"):
        return "a whole number"
    return None


def _row_select(contract: type[RawDelivery], manifest: Manifest, replace: dict[str, str] | None = None) -> str:
    """The select list of a typed row with every contract column in order, lineage columns included."""
    constants = {"source_file": _sql_str(manifest.data_path.name),
                 "report_cycle": f"cast({manifest.report_cycle} as integer)",
                 "reference_date": f"date '{manifest.reference_date.isoformat()}'"}
    replace = {**constants, **(replace or {})}
    return ", ".join(f"{replace[column]} as {column}" if column in replace else column
                     for column in contract.to_schema().columns)


def _parse_problems(
    con: duckdb.DuckDBPyConnection, contract: type[RawDelivery], typed: str, name: str
) -> list[Problem]:
    """Values present in the file that did not parse into the contract's type."""
    schema = contract.to_schema()
    expected = {header: _parse_expectation(schema.columns[column].dtype)
                for header, column in file_columns(contract).items()}
    rows = con.execute(f"select source_line, _unparsed from {typed} where _unparsed is not null "
                       "order by source_line").fetchall()
    return [Problem(name, line, header, "parse", f"value is not {expected[header]}")
            for line, headers in rows for header in headers]


def _duplicate_key_problems(
    con: duckdb.DuckDBPyConnection, contract: type[RawDelivery], typed: str, name: str,
    already_reported: set[tuple[int | None, str | None]],
) -> list[Problem]:
    """Every row of a key that occurs more than once in the delivery, as Pandera reports the contract's
    ``Config.unique`` (and a column's ``unique=True``): a check across the whole delivery, so it is done
    here in SQL, not per batch. NULL keys count as equal, as in Pandera."""
    schema = contract.to_schema()
    headers = {column: header for header, column in file_columns(contract).items()}
    keys = []
    if schema.unique:
        unique = schema.unique
        for key in [unique] if all(isinstance(c, str) for c in unique) else unique:
            keys.append((list(key), "multiple_fields_uniqueness"))
    keys += [([name_], "field_uniqueness") for name_, col in schema.columns.items() if col.unique]
    problems = []
    for key, check in keys:
        key_sql = ", ".join(key)
        same = " and ".join(f"t.{c} is not distinct from d.{c}" for c in key)
        lines = con.execute(
            f"select t.source_line from {typed} t semi join "
            f"(select {key_sql} from {typed} group by {key_sql} having count(*) > 1) d on {same} "
            "order by t.source_line").fetchall()
        column = check_column(check) if check_column(check) in key else key[0]
        reason = "duplicate key " + ", ".join(headers.get(c, c) for c in key)
        problems += [Problem(name, line, headers.get(column), check, reason)
                     for (line,) in lines if (line, headers.get(column)) not in already_reported]
    return problems


@functools.cache
def _batch_schema(contract: type[RawDelivery]) -> pa.DataFrameSchema:
    """The contract without its uniqueness checks, which span the whole delivery (see above)."""
    schema = copy.deepcopy(contract.to_schema())  # to_schema() is cached: never change it in place
    schema.unique = None
    for col in schema.columns.values():
        col.unique = False
    return schema


def _contract_problems(
    con: duckdb.DuckDBPyConnection, contract: type[RawDelivery], typed: str, manifest: Manifest,
    already_reported: set[tuple[int | None, str | None]],
) -> list[Problem]:
    """Pandera's verdict on the typed rows, batch by batch (polars backend: no pandas copy; the rows stream
    from DuckDB as Arrow record batches of ``ROWS_PER_BATCH``), mapped to file lines."""
    name = manifest.data_path.name
    schema = _batch_schema(contract)
    headers = {column: header for header, column in file_columns(contract).items()}
    personal = personal_columns(contract)
    problems: list[Problem] = []
    whole_file: set[tuple[str | None, str, str]] = set()  # reported once, not once per batch
    result = con.execute(f"select {_row_select(contract, manifest)} from {typed}")
    reader = result.to_arrow_reader(ROWS_PER_BATCH) if hasattr(result, "to_arrow_reader") \
        else result.fetch_record_batch(ROWS_PER_BATCH)
    for batch in reader:
        frame = pl.from_arrow(batch)
        try:
            with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
                schema.validate(frame, lazy=True)
            continue
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases
        lines = frame.get_column("source_line")
        for problem in _failure_problems(cases, lines, name, headers, personal):
            if (problem.line, problem.column) in already_reported:
                continue  # a value that did not parse is null here; it is reported once, as unparseable
            if problem.line is None:
                if (problem.column, problem.check, problem.reason) in whole_file:
                    continue
                whole_file.add((problem.column, problem.check, problem.reason))
            problems.append(problem)
    return problems


def _failure_problems(
    cases: pl.DataFrame, lines: pl.Series, name: str, headers: dict[str, str], personal: set[str]
) -> Iterator[Problem]:
    """Pandera's failure cases of one batch as problems; ``index`` is the row in the batch."""
    for case in cases.iter_rows(named=True):
        check = _short_check(str(case["check"]))
        column = case["column"] if case["column"] in headers else None
        if column is None and check_column(check) in headers:
            column = check_column(check)
        index = case["index"]
        line = int(lines[index]) if index is not None else None
        if column is None:
            reason = f"fails {check}"
        elif check_column(check):
            reason = f"fails {check}"
        elif column in personal or case["failure_case"] is None:
            reason = f"value fails {check}"
        else:
            reason = f"value {case['failure_case']!r} fails {check}"
        if line is None and case["schema_context"] != "DataFrameSchema":
            reason = f"column fails {check}"
        yield Problem(name, line, headers.get(column) if column else None, check, reason)


def _short_check(check: str) -> str:
    """Pandera's check name, with long lists of allowed values cut short."""
    match = re.match(r"^(isin|notin)\(\[?\(?(.*?)\]?\)?\)$", check)
    if match and len(check) > 80:
        count = match.group(2).count(",") + 1
        return f"{match.group(1)}(one of the {count} codes of the reference)"
    return check


def _record_rejections(
    con: duckdb.DuckDBPyConnection, source: Source, manifest: Manifest, problems: list[Problem], outcome: str
) -> None:
    """Record a delivery's problems: a loaded delivery replaces every record of its cycle; a refused one only
    the records of earlier refusals, so the quarantined rows of the load that stays are kept."""
    only_refused = "and delivery_outcome = 'refused'" if outcome == "refused" else ""
    con.execute(f"delete from raw.rejected_rows where source = ? and report_cycle = ? {only_refused}",
                [source.name, manifest.report_cycle])
    if problems:
        count = len(problems)
        _insert_arrow(con, "raw.rejected_rows", pyarrow.table({
            "source": pyarrow.array([source.name] * count, pyarrow.string()),
            "report_cycle": pyarrow.array([manifest.report_cycle] * count, pyarrow.int32()),
            "source_file": pyarrow.array([p.file for p in problems], pyarrow.string()),
            "source_line": pyarrow.array([p.line for p in problems], pyarrow.int64()),
            "column_name": pyarrow.array([p.column for p in problems], pyarrow.string()),
            "check_name": pyarrow.array([p.check for p in problems], pyarrow.string()),
            "reason": pyarrow.array([p.reason for p in problems], pyarrow.string()),
            "delivery_outcome": pyarrow.array([outcome] * count, pyarrow.string()),
        }))


def _insert_arrow(con: duckdb.DuckDBPyConnection, table: str, rows: pyarrow.Table) -> None:
    """Insert an Arrow table's rows (in the table's column order): one statement, however many rows."""
    view = f"_rows_{uuid.uuid4().hex[:12]}"
    con.register(view, rows)
    try:
        con.execute(f"insert into {table} select * from {view}")
    finally:
        con.unregister(view)


def _refusal_message(name: str, problems: list[Problem], bad_rows: int, rows_in: int) -> str:
    listed = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    tail = f"\n  … and {more} more (all in raw.rejected_rows)" if more > 0 else ""
    return (f"{name}: delivery refused, {len(problems)} problem(s) in {bad_rows} of {rows_in} rows:\n"
            f"{listed}{tail}")


# --- SQL helpers -------------------------------------------------------------------------------------


def _table_columns_sql(contract: type[RawDelivery]) -> str:
    schema = contract.to_schema()
    return ", ".join(f"{name} {_duckdb_type(col.dtype)}" for name, col in schema.columns.items())


def _duckdb_type(dtype: object) -> str:
    kind = str(dtype)
    return {"Date": "DATE", "Int16": "SMALLINT", "Int32": "INTEGER", "Int64": "BIGINT"}.get(kind, "VARCHAR")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_str(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"

