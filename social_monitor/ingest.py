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
4. Key uniqueness (the contract's ``Config.unique``) spans the whole delivery: DuckDB checks it in SQL, on
   the delivered key. The contract's row checks (allowed codes, ranges, date plausibility) are compiled into
   one SQL condition (``contract_sql``: Pandera's built-in checks read from the contract, the checks across
   columns by the SQL form the contract declares next to their polars form), and one SQL count finds the rows
   failing it. Only if a row fails does Pandera (polars backend, data checks on) validate every typed row in
   batches of ``ROWS_PER_BATCH`` (streamed as Arrow record batches, so memory does not grow with the
   delivery), for the detailed report: failures are mapped back to file lines and columns.
5. Person and household keys are replaced by keyed-hash pseudonyms (HMAC-SHA256), and the accepted rows
   replace the delivery's report cycle in ``raw.<source>`` in one transaction, and the
   delivery is recorded in ``raw.deliveries``; rejected rows go to ``raw.rejected_rows`` with the reason.

Whether a problem refuses the whole delivery or quarantines the rows is the ``policy``: ``"fail"``
(default) refuses the delivery on any problem; ``"quarantine"`` loads the valid rows and counts the rest,
unless the rejected share exceeds ``max_rejected_share``. Problems with the file as a whole (checksum,
header, row count, reference date, no data rows) always refuse it. The catalogue of every kind of bad
delivery and what happens to it: docs/bad-input.md.
Rows in = rows accepted + rows rejected, always.

Messages are safe by construction: a message about a row names file, line, column and the failed check, and
shows a value read from the file only if it is one of the contract's published codes (``code_lists``); a
header name only if it is short and close to a header of the contract. DuckDB's and Pandera's own error
texts quote file content, so they are never passed on. Every message is capped (``MAX_MESSAGE_CHARS``,
``MAX_REASON_CHARS``). The lines themselves are for the data steward's terminal only:
``social-monitor show-bad-lines`` (``social_monitor.bad_lines``).

DuckDB works within ``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT`` (default 2GB) during a load and spills to disk
beyond it.
"""

from __future__ import annotations

import codecs
import copy
import difflib
import functools
import os
import re
import tempfile
import time
import uuid
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandera.polars as pa
import polars as pl
import pyarrow
from pandera.config import ValidationDepth, config_context
from polars.exceptions import PanicException

from schemas.aggregates import AGGREGATE_TABLE, AggregateCounts
from schemas.raw import (
    SQL_FORMS,
    RawDelivery,
    check_column,
    check_texts,
    code_lists,
    pseudonymised_columns,
    value_ranges,
    with_area_keys,
)
from social_monitor.deliveries import (
    SOURCES,
    Manifest,
    capped,
    check_identity,
    data_file_problem,
    one_line,
    sha256_of,
)
from social_monitor.geography import load_geography
from social_monitor.layouts import SourceLayout
from social_monitor.pseudonyms import KEY_ENV, REKEY_REMEDY, PseudonymKey
from social_monitor.settings import load_settings

POLICIES = ("fail", "quarantine")
MAX_LISTED_PROBLEMS = 10
ROWS_PER_BATCH = 1_000_000  # rows Pandera validates at a time: bounds the loader's memory at any delivery size
MEMORY_LIMIT_ENV = "SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"
CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"  # the bytes of 0x80–0x9F that cp1252 leaves undefined
MAX_MESSAGE_CHARS = 4000  # a DeliveryError's message (it becomes Dagster's failure description)
MAX_REASON_CHARS = 300  # a problem's reason (raw.rejected_rows.reason)
MAX_HEADER_BYTES = 64 * 1024  # a header line longer than this is not a header
MAX_SHOWN_HEADER_CHARS = 40  # an unexpected header name is shown only if this short ...
HEADER_LIKENESS = 0.8  # ... and at least this close (difflib ratio, ignoring case) to a header of the contract

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
    """A delivery that was refused. The message names the file, and where known the line and column; it
    is cut to ``MAX_MESSAGE_CHARS``. ``line`` is the line of a problem with the file as a whole (the header
    is line 1), for ``social-monitor show-bad-lines``."""

    def __init__(self, message: str, problems: list[Problem] | None = None, *, line: int | None = None):
        super().__init__(capped(message, MAX_MESSAGE_CHARS))
        self.problems = problems or []
        self.line = line


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a delivery; ``line`` is None for a problem with the file as a whole."""

    file: str
    line: int | None
    column: str | None
    check: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", capped(self.reason, MAX_REASON_CHARS))
        object.__setattr__(self, "check", capped(self.check, MAX_REASON_CHARS))

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
    # every aggregate delivery of the city (counts per area of partner offices), by its id in column delivery
    con.execute(f"create table if not exists raw.{AGGREGATE_TABLE} ({_table_columns_sql(AggregateCounts)})")


def load_delivery(
    con: duckdb.DuckDBPyConnection, manifest: Manifest, *, policy: str = "fail", max_rejected_share: float = 1.0,
    key: PseudonymKey | None = None, area_keys: Collection[str] | None = None,
) -> LoadResult:
    """Load the delivery a manifest describes into ``raw.<source>``, replacing its report cycle.

    Under the quarantine policy a delivery whose rejected rows exceed ``max_rejected_share`` of its rows is
    refused as a whole: so many bad rows mean a broken extract, not a few bad records. Person and household
    keys are validated as delivered and stored as keyed-hash pseudonyms (``social_monitor.pseudonyms``;
    ``key`` defaults to the one from the environment). The area key must be one of ``area_keys``: the base
    keys of the city's geography valid in the delivery's report cycle (default: those of the selected city,
    ``SOCIAL_MONITOR_CITY``, read when called).
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, not {policy!r}")
    key = key or PseudonymKey.from_env()
    if area_keys is None:
        area_keys = selected_city_area_keys(manifest.report_cycle, manifest.layout)
    area_keys = tuple(sorted(area_keys))
    if not 0 <= max_rejected_share <= 1:
        raise ValueError(f"max_rejected_share must lie between 0 and 1, not {max_rejected_share!r}")
    started = time.perf_counter()
    source = manifest.layout  # the city's layout of the source: headers, codes, date format
    if source is None:
        raise ValueError(f"{manifest.path}: read the manifest with the city's delivery layouts (read_manifest)")
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
                with _strings_not_compressed(con):  # the rows are read once more, then dropped
                    con.execute(f"create table {stored} as {_typed_select(source, text_view)}")
            except duckdb.Error as exc:
                raise _read_error(name, source, manifest, exc) from None
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
        unparsed = _parse_problems(con, source, typed, name)
        reported = {(p.line, p.column) for p in unparsed}
        problems = (unparsed + _duplicate_key_problems(con, source, typed, name, reported)
                    + _contract_problems(con, source, typed, manifest, reported, area_keys)
                    + _coverage_problems(con, source, typed, manifest, area_keys))
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
                f"{max_rejected_share:.1%} (quarantine_max_share in city.yml); the problems are in "
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
            if source.is_aggregate:  # raw.aggregates holds every aggregate delivery: replace only this one's
                con.execute(f"delete from raw.{source.table} where report_cycle = ? and delivery = ?",
                            [manifest.report_cycle, source.name])
            else:
                con.execute(f"delete from raw.{source.table} where report_cycle = ?", [manifest.report_cycle])
            with _insertion_order_not_kept(con):  # every row carries its source_line
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
def _setting_for_statement(con: duckdb.DuckDBPyConnection, name: str, value: bool | str) -> Iterator[None]:
    """DuckDB's setting ``name`` at ``value`` for the statements inside, then as it was, also after an error. A
    setting holds for the whole database: only for a statement during which nothing else writes."""
    before = con.execute(f"select current_setting({_sql_str(name)})").fetchone()[0]
    con.execute(f"set {name} = {_sql_literal(value)}")
    try:
        yield
    finally:
        con.execute(f"reset {name}")
        if con.execute(f"select current_setting({_sql_str(name)})").fetchone()[0] != before:
            con.execute(f"set {name} = {_sql_literal(before)}")


def _insertion_order_not_kept(con: duckdb.DuckDBPyConnection) -> AbstractContextManager[None]:
    """An insert whose row order does not matter: DuckDB then fills whole row groups in parallel. Kept in
    order, the insert left partly filled row groups that the next checkpoints rewrote (measured at W3, issue 14:
    about 30 s of a 135 s run). Only for this statement: the scratch table's rowid is the file's line order."""
    return _setting_for_statement(con, "preserve_insertion_order", False)


def _strings_not_compressed(con: duckdb.DuckDBPyConnection) -> AbstractContextManager[None]:
    """Writes that store text without dictionary or FSST compression: for the scratch table of one load, which
    lives for minutes and is read once more. Analysing every text column for those two took about a quarter of
    writing it (W3's register: 23.2 s compressed, 17.7 s without them, 6.3 s to parse alone; issue 14)."""
    return _setting_for_statement(con, "disabled_compression_methods", "dictionary,fsst")


def duckdb_memory_limit() -> str:
    """The memory limit DuckDB works within, in loads and in dbt: ``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT`` or 2GB."""
    return os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT


@contextmanager
def _memory_limit(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's memory limit for the load (``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT``, default 2GB): beyond it
    DuckDB spills to its temp directory instead of growing. A lower limit set on the connection is kept;
    the connection's setting is restored afterwards (it holds for the whole database)."""
    wanted = duckdb_memory_limit()
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


def _check_file(manifest: Manifest, source: SourceLayout) -> None:
    path, name = manifest.data_path, manifest.data_path.name
    # source and date as the manifest's own name says (read_manifest checks it too)
    check_identity(manifest, {source.name: source})
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
        raise DeliveryError(f"{name}: manifest says format {manifest.file_format!r}, the delivery layout of "
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


def _check_not_another_cycles_file(con: duckdb.DuckDBPyConnection, manifest: Manifest, source: SourceLayout) -> None:
    """The very file of another report cycle, sent again under this cycle's name, is refused."""
    other = con.execute(
        "select report_cycle, source_file from raw.deliveries where source = ? and sha256 = ? and report_cycle <> ?",
        [source.name, manifest.sha256, manifest.report_cycle]).fetchone()
    if other:
        raise DeliveryError(f"{manifest.data_path.name}: the file is byte for byte the delivery of report cycle "
                            f"{other[0]} ({other[1]}); a new cycle needs its own extract")


@contextmanager
def _text_view(con: duckdb.DuckDBPyConnection, source: SourceLayout, manifest: Manifest, tmp: Path) -> Iterator[str]:
    """A temp view of the file with every column of the layout as text (under the city's headers), in file
    order."""
    columns = source.file_columns
    path, name = manifest.data_path, manifest.data_path.name
    if source.file_format == "parquet":
        try:  # the top-level columns and their types (parquet_schema would list the fields of nested ones too)
            described = con.execute(f"describe select * from read_parquet({_sql_str(path)})").fetchall()
        except duckdb.Error:
            raise DeliveryError(f"{name}: not a readable Parquet file (damaged or cut off in transfer?)") from None
        present = {_header_name(row[0]): (row[0], str(row[1])) for row in described}
        _check_header(name, [_header_name(row[0]) for row in described], list(columns), line_word="column list")
        for header in columns:
            kind = present[header][1]
            if _is_nested(kind):
                raise DeliveryError(f"{name}, column {header}: holds nested values ({_type_family(kind)}); "
                                    "expected text or numbers")
        # by the name in the file: a header with spaces or a byte order mark around it is the contract's header
        selected = ", ".join(f"cast({_quote(present[h][0])} as varchar) as {_quote(h)}" for h in columns)
        con.execute(f"create or replace temp view _text as select {selected} from read_parquet({_sql_str(path)})")
        yield "_text"
        return

    if not isinstance(manifest.encoding, str) or not manifest.encoding.strip():
        raise DeliveryError(f"{name}: the manifest {manifest.path.name} names no encoding")
    encoding = manifest.encoding.strip().lower().replace("_", "-")
    delimiter = manifest.delimiter or ";"
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise DeliveryError(f"{name}: the separator {capped(repr(delimiter), 20)} in the manifest "
                            f"{manifest.path.name} is not one character (other than a quote or a line break)")
    csv_path, csv_encoding = _readable_by_duckdb(path, encoding, tmp)
    with open(csv_path, "rb") as handle:
        raw_header = handle.readline(MAX_HEADER_BYTES + 1)
    if len(raw_header) > MAX_HEADER_BYTES:
        raise DeliveryError(f"{name}, line 1: longer than {MAX_HEADER_BYTES} bytes, so not a header line "
                            "(no line breaks, or the header line is missing?)", line=1)
    raw_header = raw_header.rstrip(b"\r\n")
    if b"\r" in raw_header:
        raise DeliveryError(f"{name}, line 1: a carriage return (CR) inside the header line; lines must end in "
                            "LF or CR LF (a file with CR-only line endings?)", line=1)
    try:  # a file read as latin-1 has no byte 0x80–0x9F: its header decodes the same in its own encoding
        header_line = raw_header.decode("utf-8" if csv_encoding == "utf-8" else encoding)
    except (UnicodeDecodeError, LookupError):
        raise DeliveryError(f"{name}, line 1: the header is not valid {encoding}; the file is not in the "
                            "encoding its manifest states", line=1) from None
    if not header_line:
        raise DeliveryError(f"{name}, line 1: the header line is empty", line=1)
    if delimiter not in header_line and len(columns) > 1:
        raise DeliveryError(f"{name}, line 1: no {delimiter!r} in the header line; the file is not separated "
                            f"by {delimiter!r} as its manifest says", line=1)
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
    try:  # str.encode accepts only text encodings (not rot13, base64, zlib …)
        codec = codecs.lookup(encoding).name
        "a".encode(codec)
    except (LookupError, UnicodeError):
        raise DeliveryError(f"{path.name}: unknown encoding {capped(repr(encoding), 60)} in the manifest") from None
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
                        "the encoding its manifest states", line=line)


def _as_utf8(path: Path, encoding: str, tmp: Path) -> Path:
    """A UTF-8 copy of the file in ``tmp``."""
    target = tmp / path.name
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
        line = 1
        for block in iter(lambda: src.read(1 << 22), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:  # exc.start counts from bytes held back from the block before
                start = min(exc.start, len(block) - 1)
                bad_line = line + block[:start].count(b"\n")
                raise DeliveryError(f"{path.name}, line {bad_line}: byte 0x{block[start]:02x} is not valid "
                                    f"{encoding}; the file is not in the encoding its manifest states",
                                    line=bad_line) from None
            except UnicodeError:  # e.g. UTF-16 without a byte order mark
                raise DeliveryError(f"{path.name}, line {line}: the file is not valid {encoding}; the file is "
                                    "not in the encoding its manifest states", line=line) from None
            line += block.count(b"\n")
            dst.write(text)
        try:
            dst.write(decoder.decode(b"", final=True))
        except UnicodeError:
            raise DeliveryError(f"{path.name}, line {line}: the file ends inside a {encoding} character (cut off "
                                "in transfer?)", line=line) from None
    return target


def _header_name(text: str) -> str:
    """A header as the contract names it: without spaces and byte order marks around it."""
    return text.strip().lstrip("\ufeff").strip()


def _check_header(name: str, present: list[str], expected: list[str], *, line_word: str) -> None:
    """The header must be the contract's, in order. A name that is not the contract's is shown only if it
    looks like a header name (``_looks_like_header``); any other field is counted, never shown: a file
    without its header line has data in its first line."""
    present = [_header_name(p) for p in present]
    missing = [h for h in expected if h not in present]
    extra = [h for h in present if h not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing column(s) " + ", ".join(missing))
        shown = [h for h in extra if h and _looks_like_header(h, expected)]
        empty = sum(1 for h in extra if not h)
        hidden = len(extra) - len(shown) - empty
        if shown:
            parts.append("unexpected column(s) " + ", ".join(shown))
        if empty:
            parts.append(f"{empty} column(s) with an empty name (a separator at the end of the line?)")
        if hidden:
            parts.append(f"{hidden} unexpected field(s), not shown as they are not like a column name of the "
                         "contract (is the header line missing?)")
        raise DeliveryError(f"{name}, {line_word}: " + "; ".join(parts) + f"; expected exactly {';'.join(expected)}",
                            line=1)
    if present != expected:  # every name present is one of the contract's
        raise DeliveryError(f"{name}, {line_word}: columns are in the order {';'.join(present)}; expected "
                            f"{';'.join(expected)}", line=1)


def _looks_like_header(text: str, expected: list[str]) -> bool:
    """Short, printable, and at least ``HEADER_LIKENESS`` alike (ignoring case) to a header of the contract:
    a renamed, abbreviated (its first four letters or more) or garbled header, shown so the mistake is plain.
    Anything else may be data."""
    if len(text) > MAX_SHOWN_HEADER_CHARS or not text.isprintable():
        return False
    folded = text.casefold()
    abbreviation = folded.rstrip(".")  # "Geschl." for "Geschlecht"
    return any(difflib.SequenceMatcher(None, folded, header.casefold()).ratio() >= HEADER_LIKENESS
               or (len(abbreviation) >= 4 and header.casefold().startswith(abbreviation))
               for header in expected)


def _is_nested(duckdb_type: str) -> bool:
    return duckdb_type.startswith(("STRUCT", "MAP", "UNION")) or duckdb_type.endswith("]")


def _type_family(duckdb_type: str) -> str:
    """A DuckDB type's family without its parts (a STRUCT's field names come from the file)."""
    if duckdb_type.endswith("]"):
        return "LIST"
    match = re.match(r"[A-Z]+", duckdb_type)
    return match.group(0) if match else "unknown type"


# DuckDB's CSV errors, by a cause that quotes nothing of the file -> what the message says
CSV_CAUSES = {
    r"Expected Number of Columns: (\d+) Found: (\d+)": "Expected Number of Columns: {0} Found: {1}",
    r"Value with unterminated quote": "Value with unterminated quote",
    r"Invalid unicode": "Invalid unicode (not valid UTF-8)",
    r"Maximum line size of \d+ bytes exceeded": "line too long",
}


def _read_error(name: str, source: SourceLayout, manifest: Manifest, exc: duckdb.Error) -> BaseException:
    """What an error while DuckDB reads the delivery means, in a message that quotes nothing of the file
    (DuckDB's own text quotes the offending line). Memory and disk errors are the machine's, not the file's:
    they are passed on."""
    text = str(exc)
    if isinstance(exc, duckdb.OutOfMemoryException) or "No space left on device" in text:
        return exc
    if source.file_format == "parquet":
        return DeliveryError(f"{name}: the Parquet file cannot be read (damaged or cut off in transfer?)")
    line = re.search(r"CSV Error on Line: (\d+)", text)
    where = f", line {line.group(1)}" if line else ""
    what = f"the file cannot be read as {manifest.delimiter or ';'}-separated text in {manifest.encoding}"
    for pattern, cause in CSV_CAUSES.items():
        found = re.search(pattern, text)
        if found:
            what = cause.format(*found.groups())
            break
    else:  # DuckDB names no line: a carriage return inside a line is the usual cause
        lone_cr = _lone_cr_line(manifest.data_path, str(manifest.encoding))
        if lone_cr is not None:
            return DeliveryError(f"{name}, line {lone_cr}: a carriage return (CR) without a line feed inside the "
                                 "line; lines must end in LF or CR LF (mixed line endings?)", line=lone_cr)
    return DeliveryError(f"{name}{where}: {what}", line=int(line.group(1)) if line else None)


def _lone_cr_line(path: Path, encoding: str) -> int | None:
    """The line (counted by LF) of the first CR not followed by LF, in a file of an ASCII-based encoding."""
    if encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        return None
    line, pending = 1, b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 22)
            data = pending + block
            pending = b""
            if block and data.endswith(b"\r"):  # its LF may start the next block
                data, pending = data[:-1], b"\r"
            found = re.search(rb"\r(?!\n)", data)
            if found:
                return line + data[: found.start()].count(b"\n")
            if not block:
                return None
            line += data.count(b"\n")


# --- rows -------------------------------------------------------------------------------------------


def _typed_select(layout: SourceLayout, text_view: str) -> str:
    """The file's columns (by the city's headers) parsed into the contract's columns and types, the city's
    codes mapped to the contract's, and ``_unparsed``: the headers whose non-empty text did not parse or is no
    code of the layout (NULL when every value parsed), found in the same pass; ``_code_<column>``: the text of
    a coded column whose value is no code of the layout (NULL otherwise), for the message.

    The lineage columns (line, file, report cycle, reference date) are added when the rows are read."""
    columns = layout.file_columns
    schema = layout.contract.to_schema()
    trimmed = [f"nullif(trim({_quote(header)}), '') as _v{i}" for i, header in enumerate(columns)]
    parsed, failed, unmapped = [], [], []
    for i, (header, column) in enumerate(columns.items()):
        dtype = schema.columns[column].dtype
        if column in layout.codes:
            cases = " ".join(f"when {_sql_str(city)} then {_sql_str(code)}"
                             for city, code in layout.codes[column].items())
            parsed.append(f"case _v{i} {cases} end as {column}")
        else:
            parsed.append(f"{_parse_expr(dtype, f'_v{i}', layout.date_format)} as {column}")
        if column in layout.codes or _parse_expectation(dtype, layout):
            parsed.append(f"_v{i}")
            failed.append((f"{column} is null and _v{i} is not null", header))
        if column in layout.codes:
            unmapped.append(f"case when {column} is null then _v{i} end as _code_{column}")
    if failed:
        any_failed = " or ".join(f"({condition})" for condition, _ in failed)
        listed = ", ".join(f"case when {condition} then {_sql_str(header)} end" for condition, header in failed)
        unparsed = f"case when {any_failed} then list_filter([{listed}], h -> h is not null) end"
    else:
        unparsed = "cast(null as varchar[])"
    return (f"select {', '.join([*columns.values(), *unmapped])}, {unparsed} as _unparsed "
            f"from (select {', '.join(parsed)} from (select {', '.join(trimmed)} from {text_view}))")


def _parse_expr(dtype: object, value: str, date_format: str) -> str:
    """The typed value of a trimmed text (NULL for an empty one); dates in the layout's ``date_format``."""
    kind = str(dtype)
    if kind == "Date":  # year 1 to 9999: the dates Python and polars can hold (year 0 made Pandera panic)
        parsed = f"cast(try_strptime({value}, {_sql_str(date_format)}) as date)"
        return f"case when year({parsed}) between 1 and 9999 then {parsed} end"
    if kind.startswith("Int"):  # "6.5" is not a whole number (a plain cast would round it to 7)
        return (f"case when regexp_full_match({value}, '[+-]?[0-9]+([.]0+)?') "
                f"then try_cast(try_cast({value} as double) as {_duckdb_type(dtype)}) end")
    return value


def _parse_expectation(dtype: object, layout: SourceLayout) -> str | None:
    """What a value of a type that is parsed from text must be, for the message; None for text."""
    kind = str(dtype)
    if kind == "Date":
        return f"a date {layout.date_expectation}"
    if kind.startswith("Int"):
        return "a whole number"
    return None


def _row_select(contract: type[RawDelivery], manifest: Manifest, replace: dict[str, str] | None = None) -> str:
    """The select list of a typed row with every contract column in order, lineage columns included."""
    constants = {"source_file": _sql_str(manifest.data_path.name),
                 "report_cycle": f"cast({manifest.report_cycle} as integer)",
                 "reference_date": f"date '{manifest.reference_date.isoformat()}'",
                 **(manifest.layout.row_constants() if manifest.layout is not None else {})}
    replace = {**constants, **(replace or {})}
    return ", ".join(f"{replace[column]} as {column}" if column in replace else column
                     for column in contract.to_schema().columns)


def _parse_problems(con: duckdb.DuckDBPyConnection, layout: SourceLayout, typed: str, name: str) -> list[Problem]:
    """Values present in the file that did not parse into the contract's type, or that are no code of the
    city's layout (reported as the failed code list, ``isin([...the city's codes])``)."""
    schema = layout.contract.to_schema()
    columns = layout.file_columns
    expected = {header: _parse_expectation(schema.columns[column].dtype, layout) for header, column in columns.items()}
    coded = list(layout.codes)
    explain = _Explainer(layout)
    rows = con.execute(f"select source_line, _unparsed, {', '.join(['null', *(f'_code_{c}' for c in coded)])} "
                       f"from {typed} where _unparsed is not null order by source_line").fetchall()
    problems = []
    for line, headers, _, *values in rows:
        for header in headers:
            column = columns[header]
            if column in layout.codes:
                check = explain.check_of(column)
                problems.append(Problem(name, line, header, check, explain.value(column, values[coded.index(column)],
                                                                                 check)))
            else:
                problems.append(Problem(name, line, header, "parse", f"value is not {expected[header]}"))
    return problems


def _duplicate_key_problems(
    con: duckdb.DuckDBPyConnection, layout: SourceLayout, typed: str, name: str,
    already_reported: set[tuple[int | None, str | None]],
) -> list[Problem]:
    """Every row of a key that occurs more than once in the delivery, as Pandera reports the contract's
    ``Config.unique`` (and a column's ``unique=True``): a check across the whole delivery, so it is done
    here in SQL, not per batch. NULL keys count as equal, as in Pandera."""
    schema = layout.contract.to_schema()
    headers = dict(layout.headers)
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
def _batch_schema(contract: type[RawDelivery], area_keys: tuple[str, ...] | None = None) -> pa.DataFrameSchema:
    """The contract without its uniqueness checks, which span the whole delivery (see above), and with the area
    keys of the delivery's cycle (``schemas.raw.with_area_keys``; None: the area key is not checked)."""
    schema = copy.deepcopy(contract.to_schema())  # to_schema() is cached: never change it in place
    if area_keys is not None:
        schema = with_area_keys(schema, area_keys)
    schema.unique = None
    for col in schema.columns.values():
        col.unique = False
    return schema


def selected_city_area_keys(cycle: int, layout: SourceLayout | None = None) -> tuple[str, ...]:
    """The area keys a delivery of ``cycle`` may carry by the selected city's geography (read now, not at import):
    the base keys valid in the cycle, or for an aggregate delivery the keys of its level (``layout.area_keys``)."""
    geography = load_geography(load_settings().city_dir)
    return layout.area_keys(geography, cycle) if layout is not None else geography.base_keys(cycle)


MAX_LISTED_AREAS = 12  # missing areas named in one coverage problem


def _coverage_problems(con: duckdb.DuckDBPyConnection, layout: SourceLayout, typed: str, manifest: Manifest,
                       area_keys: tuple[str, ...]) -> list[Problem]:
    """An aggregate delivery must hold a row for every area of its level valid in the cycle (``area_keys``) and
    every measure of its layout, except the areas the layout declares gaps: a missing row is a problem with the
    file as a whole (it has no line), which refuses it. Area keys and measure codes are published codes."""
    if not layout.is_aggregate:
        return []
    name = manifest.data_path.name
    delivered = set(con.execute(f"select distinct area_id, measure from {typed} where area_id is not null "
                                "and measure is not null").fetchall())
    expected = [key for key in area_keys if key not in layout.gaps]
    city_code = layout.city_code_of("measure")
    problems = []
    for measure in layout.measures:
        missing = [key for key in expected if (key, measure) not in delivered]
        if missing:
            listed = ", ".join(missing[:MAX_LISTED_AREAS]) + (" …" if len(missing) > MAX_LISTED_AREAS else "")
            problems.append(Problem(
                name, None, layout.headers["area_id"], "coverage",
                f"no row of measure {city_code[measure]} ({measure}) for {len(missing)} area(s) of level "
                f"{layout.level} valid in {manifest.report_cycle}: {listed}; deliver them or declare them in the "
                f"layout's gaps ({manifest.layout.path.name if manifest.layout.path else 'deliveries.yml'}, "
                f"aggregates.{layout.name}.gaps)"))
    return problems


def _contract_problems(
    con: duckdb.DuckDBPyConnection, layout: SourceLayout, typed: str, manifest: Manifest,
    already_reported: set[tuple[int | None, str | None]], area_keys: tuple[str, ...],
) -> list[Problem]:
    """The contract's row checks: one SQL count of the rows that fail any of them (compiled from the contract,
    ``contract_sql``); only if a row fails (or a check has no SQL form) Pandera's detailed verdict."""
    if _failing_rows(con, layout.contract, typed, manifest, area_keys) == 0:
        return []  # Pandera would find nothing (tests/test_contract_sql.py, tests/test_hostile_deliveries.py)
    return _pandera_problems(con, layout, typed, manifest, already_reported, area_keys)


def _failing_rows(con: duckdb.DuckDBPyConnection, contract: type[RawDelivery], typed: str, manifest: Manifest,
                  area_keys: tuple[str, ...]) -> int | None:
    """How many typed rows fail a row check of the contract, in one SQL pass; None if a check has no SQL form
    or DuckDB could not evaluate one (then Pandera decides; a lack of memory or disk is the machine's: raised)."""
    passes = contract_sql(_batch_schema(contract, area_keys))
    if passes is None:
        return None
    try:
        return con.execute(f"select count(*) from (select {_row_select(contract, manifest)} from {typed}) "
                           f"where not ({passes})").fetchone()[0]
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.OutOfMemoryException) or "No space left on device" in str(exc):
            raise
        return None


def contract_sql(schema: pa.DataFrameSchema) -> str | None:
    """A DuckDB condition that a row passes every row check of ``schema`` (``contract_conditions``), or None."""
    conditions = contract_conditions(schema)
    if conditions is None:
        return None
    return " and ".join(sql for _, _, sql in conditions) or "true"


def contract_conditions(schema: pa.DataFrameSchema) -> list[tuple[str | None, int | None, str]] | None:
    """The row checks of ``schema`` as DuckDB conditions a row passes as Pandera's polars backend decides it:
    ``(column, check number, condition)`` for not null where a column is not nullable (check number None),
    every column check (column, its place in the column's checks) and every dataframe check (None, its place
    in the schema's checks; its SQL form is declared in the contract, ``schemas.raw.SQL_FORMS``). A check
    whose result is NULL passes (Pandera's ``ignore_na``). The types are not checked: the typed rows have the
    contract's types by construction (``_typed_select``). None if a check cannot be compiled (the caller then
    asks Pandera). Uniqueness is no row check (``_batch_schema``)."""
    conditions: list[tuple[str | None, int | None, str]] = []
    for name, col in schema.columns.items():
        column = _quote(name)
        if not col.nullable:
            conditions.append((name, None, f"{column} is not null"))
        for number, check in enumerate(col.checks):
            try:
                condition = _column_check_sql(check, column)
            except (TypeError, KeyError):  # a value or statistic without an SQL form: Pandera decides
                return None
            if condition is None or not check.ignore_na or check.element_wise or check.groupby is not None:
                return None
            conditions.append((name, number, f"({condition}) is not false"))
    for number, check in enumerate(schema.checks):
        if check.name not in SQL_FORMS or not check.ignore_na or check.element_wise or check.groupby is not None:
            return None
        conditions.append((None, number, f"({SQL_FORMS[check.name]}) is not false"))
    return conditions


COMPARISONS = {"equal_to": ("=", "value"), "not_equal_to": ("<>", "value"),
               "greater_than": (">", "min_value"), "greater_than_or_equal_to": (">=", "min_value"),
               "less_than": ("<", "max_value"), "less_than_or_equal_to": ("<=", "max_value")}


def _column_check_sql(check: pa.Check, column: str) -> str | None:
    """The SQL form of one of Pandera's built-in column checks (their polars forms:
    pandera/backends/polars/builtin_checks.py), or None."""
    stats = check.statistics or {}
    name = check.name
    if name in COMPARISONS:
        operator, key = COMPARISONS[name]
        return f"{column} {operator} {_sql_literal(stats[key])}"
    if name == "in_range":
        low = ">=" if stats.get("include_min", True) else ">"
        high = "<=" if stats.get("include_max", True) else "<"
        return (f"{column} {low} {_sql_literal(stats['min_value'])} and "
                f"{column} {high} {_sql_literal(stats['max_value'])}")
    if name in ("isin", "notin"):
        values = stats["allowed_values" if name == "isin" else "forbidden_values"]
        if isinstance(values, str):  # Pandera's sets of characters: not used by the contracts
            return None
        listed = ", ".join(_sql_literal(v) for v in values) or "null"
        return f"{column} {'in' if name == 'isin' else 'not in'} ({listed})"
    if name == "str_length":  # characters (code points), as polars' len_chars
        if stats.get("exact_value") is not None:
            return f"length({column}) = {int(stats['exact_value'])}"
        bounds = [f"length({column}) >= {int(stats['min_value'])}"] if stats.get("min_value") is not None else []
        bounds += [f"length({column}) <= {int(stats['max_value'])}"] if stats.get("max_value") is not None else []
        return " and ".join(bounds) or None
    if name in ("str_matches", "str_contains"):
        pattern = stats["pattern"]
        pattern = pattern.pattern if isinstance(pattern, re.Pattern) else str(pattern)
        if name == "str_matches" and not pattern.startswith("^"):
            pattern = "^" + pattern
        regex = _re2_of_rust_regex(pattern)
        return None if regex is None else f"regexp_matches({column}, {_sql_str(regex)})"
    if name == "str_startswith":
        return f"starts_with({column}, {_sql_str(stats['string'])})"
    if name == "str_endswith":
        return f"ends_with({column}, {_sql_str(stats['string'])})"
    return None


def _re2_of_rust_regex(pattern: str) -> str | None:
    r"""A regular expression of polars (Rust's regex crate, whose ``\d`` is any Unicode digit) for DuckDB (RE2,
    whose ``\d`` is ASCII only): ``\d`` becomes ``\p{Nd}``. None for a pattern with another escape or a
    construct whose meaning the two engines may not share (none of the contracts has one)."""
    if re.search(r"\\[^d^$.()\[\]{}|*+?-]|\[:|\(\?", pattern):
        return None
    return pattern.replace("\\d", "\\p{Nd}")


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and np.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return _sql_str(value)
    raise TypeError(f"no SQL literal for a check's value of type {type(value).__name__}")


def _pandera_problems(
    con: duckdb.DuckDBPyConnection, layout: SourceLayout, typed: str, manifest: Manifest,
    already_reported: set[tuple[int | None, str | None]], area_keys: tuple[str, ...],
) -> list[Problem]:
    """Pandera's verdict on the typed rows, batch by batch (polars backend: no pandas copy; the rows stream
    from DuckDB as Arrow record batches of ``ROWS_PER_BATCH``), mapped to file lines."""
    name = manifest.data_path.name
    contract = layout.contract
    schema = _batch_schema(contract, area_keys)
    explain = _Explainer(layout, area_keys)
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
        except (Exception, PanicException) as exc:  # a bug of ours or of a library: its text may quote values
            raise DeliveryError(f"{name}: the rows could not be validated (internal error {type(exc).__name__} "
                                "in the loader; please report it with the file's structure, not its content)"
                                ) from None
        lines = frame.get_column("source_line")
        for problem in _failure_problems(cases, lines, name, explain):
            if (problem.line, problem.column) in already_reported:
                continue  # a value that did not parse is null here; it is reported once, as unparseable
            if problem.line is None:
                if (problem.column, problem.check, problem.reason) in whole_file:
                    continue
                whole_file.add((problem.column, problem.check, problem.reason))
            problems.append(problem)
    return problems


def _failure_problems(cases: pl.DataFrame, lines: pl.Series, name: str, explain: _Explainer) -> Iterator[Problem]:
    """Pandera's failure cases of one batch as problems; ``index`` is the row in the batch."""
    headers = explain.headers
    for case in cases.iter_rows(named=True):
        check = explain.check(str(case["check"]))
        column = case["column"] if case["column"] in headers else None
        if column is None and check_column(check) in headers:
            column = check_column(check)
        index = case["index"]
        line = int(lines[index]) if index is not None else None
        if column is None or check_column(check):
            reason = f"fails {check}"
        else:
            reason = explain.value(column, case["failure_case"], check)
        if line is None and case["schema_context"] != "DataFrameSchema":
            reason = f"column fails {check}"
        yield Problem(name, line, headers.get(column) if column else None, check, reason)


class _Explainer:
    """What a failed check says about a value, safe by construction: a value read from the file is shown only
    if it is one of the published codes of the city's layouts or of the contracts (``SourceLayout.city_codes``):
    a value of a column with a code list that is no code of it is described by the code it resembles (in
    case, white space or leading zeros) or the code list it belongs to; a number by the bound it crosses;
    anything else not at all. Check names are the contract's own (anything else is "a contract check"), or
    for a coded column the city's code list. Columns are named by the city's headers."""

    def __init__(self, layout: SourceLayout, area_keys: Collection[str] = ()):
        contract = layout.contract
        self.headers = dict(layout.headers)
        # a coded column's codes as the city writes them; the area keys the geography's (valid in the cycle)
        self.contract_codes = code_lists(contract, area_keys)
        self.codes = {**self.contract_codes, **{column: list(codes) for column, codes in layout.codes.items()}}
        self.columns = {header: column for column, header in self.headers.items()}
        self.ranges = value_ranges(contract)
        self.known_checks = check_texts(contract, area_keys) | {
            "not_nullable", "field_uniqueness", "multiple_fields_uniqueness", "column_in_dataframe", "column_in_schema"}
        self.code_columns = layout.city_codes  # code -> the file columns (of any source) it is a code of

    def check_of(self, column: str) -> str:
        """The check a value of a coded column that is no code of the city's layout fails."""
        return _short_check(f"isin({self.codes[column]!r})")

    def check(self, text: str) -> str:
        if text in self.known_checks or re.fullmatch(r"dtype\('[A-Za-z0-9_ ,()\[\]]{1,40}'\)", text):
            return _short_check(text)
        return "a contract check"

    def value(self, column: str, value: object, check: str) -> str:
        if value is None:
            return f"value fails {check}"
        if column in self.codes:
            return self._code(str(value), self.codes[column], check, self.headers.get(column))
        if column in self.ranges and re.fullmatch(r"[+-]?[0-9]+(?:[.][0-9]+)?", str(value)):
            value, (low, high) = float(str(value)), self.ranges[column]  # Pandera's failure cases are text
            if value < low:
                return f"value below the minimum {low}, fails {check}"
            if value > high:
                return f"value above the maximum {high}, fails {check}"
        return f"value fails {check}"

    def _code(self, value: str, codes: list[str], check: str, header: str | None) -> str:
        if value in self.contract_codes.get(self.columns.get(header), ()):  # published in the contract
            return f"value {value!r} fails {check}: it is the contract's code, not one of the city's layout"
        if value in self.code_columns:  # a published code, of another column (fields shifted?)
            where = ", ".join(self.code_columns[value])
            return f"value {value!r} fails {check}: it is a code of {where} (fields shifted?)"
        folded = value.strip().casefold()
        for code in codes:
            if code.casefold() == folded:
                return f"value fails {check}: it differs from the code {code!r} in case or white space"
        if value.strip().isdigit():
            for code in codes:
                if code.isdigit() and code.lstrip("0") == value.strip().lstrip("0"):
                    return f"value fails {check}: it is the code {code!r} without its leading zeros"
        return f"value fails {check}"


def _short_check(check: str) -> str:
    """Pandera's check name, with long lists of allowed values cut short."""
    match = re.match(r"^(isin|notin)\(\[?\(?(.*?)\]?\)?\)$", check)
    if match and len(check) > 80:
        count = match.group(2).count(",") + 1
        return f"{match.group(1)}(one of the {count} codes of the reference)"
    return check


def _record_rejections(
    con: duckdb.DuckDBPyConnection, source: SourceLayout, manifest: Manifest, problems: list[Problem], outcome: str
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
    return {"Date": "DATE", "Int16": "SMALLINT", "Int32": "INTEGER", "Int64": "BIGINT",
            "Boolean": "BOOLEAN"}.get(kind, "VARCHAR")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_str(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"



def count_delivered_rows(manifest: Manifest) -> int:
    """The data rows of the file a (new) manifest describes, after checking the file against the city's layout
    as the loader does: its header (a missing or unknown column is named, a field that may be data is only
    counted), encoding and separator. Nothing is loaded; the messages quote no value of the file."""
    layout = manifest.layout
    if layout is None:
        raise ValueError(f"{manifest.path}: the manifest needs the city's layout of its source")
    name = manifest.data_path.name
    problem = data_file_problem(manifest)
    if problem:
        raise DeliveryError(one_line(f"{name}: {problem}"))
    if manifest.data_path.stat().st_size == 0:
        raise DeliveryError(f"{name}: the file is empty (expected at least a header line)")
    with duckdb.connect(":memory:") as con, tempfile.TemporaryDirectory(prefix="social-monitor-") as tmp:
        with _text_view(con, layout, manifest, Path(tmp)) as text_view:
            try:
                return con.execute(f"select count(*) from {text_view}").fetchone()[0]
            except duckdb.Error as exc:
                raise _read_error(name, layout, manifest, exc) from None
