"""Load one raw delivery into the warehouse's ``raw`` schema, parsed and validated against its contract.

The path of a delivery:

1. The manifest is checked against the file (it exists, its SHA-256 checksum matches).
2. DuckDB reads the file as text (every column VARCHAR, with its line number), after checking the header
   against the contract (``schemas/raw.py``); a cp1252 file is transcoded to UTF-8 first.
3. DuckDB parses the text into typed columns (German dates DD.MM.YYYY, integers). A value that does not
   parse is a row-level problem named by file, line and column.
4. Pandera (polars backend, data checks on) validates the typed rows: allowed codes, ranges, key
   uniqueness, date plausibility. Failures are mapped back to file lines.
5. Person and household keys are replaced by keyed-hash pseudonyms (HMAC-SHA256), and the accepted rows
   replace the delivery's report cycle in ``raw.<source>`` in one transaction, and the
   delivery is recorded in ``raw.deliveries``; rejected rows go to ``raw.rejected_rows`` with the reason.

Whether a problem refuses the whole delivery or quarantines the rows is the ``policy``: ``"fail"``
(default) refuses the delivery on any problem; ``"quarantine"`` loads the valid rows and counts the rest,
unless the rejected share exceeds ``max_rejected_share``. Problems with the file as a whole (checksum,
header, row count, reference date, no data rows) always refuse it. The catalogue of every kind of bad
delivery and what happens to it: docs/bad-input.md.
Rows in = rows accepted + rows rejected, always. No message ever shows the value of a personal column.
"""

from __future__ import annotations

import codecs
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandera.polars as pa
from pandera.config import ValidationDepth, config_context

from schemas.raw import RawDelivery, check_column, file_columns, personal_columns, pseudonymised_columns
from social_monitor.deliveries import SOURCES, Manifest, Source, sha256_of
from social_monitor.pseudonyms import PseudonymKey

POLICIES = ("fail", "quarantine")
MAX_LISTED_PROBLEMS = 10

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
    path = manifest.data_path
    name = path.name
    ensure_raw_schema(con)
    _check_file(manifest, source)
    _check_not_another_cycles_file(con, manifest, source)

    with _text_view(con, source, manifest) as text_view:
        typed = _typed_select(source.contract, text_view, manifest)
        try:
            con.execute(f"create or replace temp table _typed as {typed}")
        finally:
            con.execute("drop view if exists _text")  # a view of the delivered file: not kept in the session
    try:
        rows_in = con.execute("select count(*) from _typed").fetchone()[0]
        if rows_in != manifest.rows:
            raise DeliveryError(
                f"{name}: the file holds {rows_in} data rows but its manifest "
                f"{manifest.path.name} announces {manifest.rows}; the delivery is incomplete or not the "
                "one announced"
            )
        if rows_in == 0:
            raise DeliveryError(f"{name}: the file holds a header but no data rows; a delivery for report cycle "
                                f"{manifest.report_cycle} cannot be empty")
        unparsed = _parse_problems(con, source.contract, name)
        for header in file_columns(source.contract):  # the text was kept only to find unparseable values
            con.execute(f"alter table _typed drop column {_quote('_text_' + header)}")
        problems = unparsed + _contract_problems(con, source.contract, name, unparsed)
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

        con.execute("begin transaction")
        try:
            con.execute("create or replace temp table _rejected_lines (source_line bigint)")
            if rejected_lines:
                con.executemany("insert into _rejected_lines values (?)", [(line,) for line in rejected_lines])
            _record_rejections(con, source, manifest, problems, "quarantined")
            con.execute(f"delete from raw.{source.table} where report_cycle = ?", [manifest.report_cycle])
            pseudonymised = ", ".join(f"{key.sql(column)} as {column}" for column in pseudonymised_columns(source))
            con.execute(
                f"insert into raw.{source.table} select * replace ({pseudonymised}) from _typed "
                "where source_line not in (select source_line from _rejected_lines)"
            )
            accepted = rows_in - len(rejected_lines)
            con.execute(
                "insert or replace into raw.deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
                [source.name, manifest.report_cycle, manifest.reference_date, name, manifest.sha256,
                 rows_in, accepted, len(rejected_lines), policy],
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        con.execute("drop table if exists _typed")
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


# --- the file as a whole -----------------------------------------------------------------------------


def _check_file(manifest: Manifest, source: Source) -> None:
    path, name = manifest.data_path, manifest.data_path.name
    if not path.exists():
        raise DeliveryError(f"{name}: file named in manifest {manifest.path.name} does not exist in {path.parent}")
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


def _check_not_another_cycles_file(con: duckdb.DuckDBPyConnection, manifest: Manifest, source: Source) -> None:
    """The very file of another report cycle, sent again under this cycle's name, is refused."""
    other = con.execute(
        "select report_cycle, source_file from raw.deliveries where source = ? and sha256 = ? and report_cycle <> ?",
        [source.name, manifest.sha256, manifest.report_cycle]).fetchone()
    if other:
        raise DeliveryError(f"{manifest.data_path.name}: the file is byte for byte the delivery of report cycle "
                            f"{other[0]} ({other[1]}); a new cycle needs its own extract")


@contextmanager
def _text_view(con: duckdb.DuckDBPyConnection, source: Source, manifest: Manifest) -> Iterator[str]:
    """A temp view of the file with every contract column as text plus ``source_line``."""
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
        con.execute(
            f"create or replace temp view _text as select {selected}, file_row_number + 1 as source_line "
            f"from read_parquet({_sql_str(path)}, file_row_number = true)"
        )
        yield "_text"
        return

    encoding = manifest.encoding.lower().replace("_", "-")
    delimiter = manifest.delimiter or ";"
    with _as_utf8(path, encoding) as utf8_path:
        with open(utf8_path, "rb") as handle:
            raw_header = handle.readline().rstrip(b"\r\n")
        try:
            header_line = raw_header.decode("utf-8")
        except UnicodeDecodeError:
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
            f"create or replace temp view _text as select * exclude (ordinality), ordinality + 1 as source_line "
            f"from read_csv({_sql_str(utf8_path)}, delim = {_sql_str(delimiter)}, header = true, "
            f"columns = {spec}, auto_detect = false, quote = '\"', escape = '\"') with ordinality"
        )
        try:
            con.execute("select count(*) from _text").fetchone()
        except duckdb.Error as exc:
            raise DeliveryError(_csv_error_message(name, exc)) from None
        yield "_text"


@contextmanager
def _as_utf8(path: Path, encoding: str) -> Iterator[Path]:
    """The file itself if DuckDB reads its encoding, else a UTF-8 copy made in a temporary folder."""
    if encoding in ("utf-8", "utf8", "ascii"):
        yield path
        return
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DeliveryError(f"{path.name}: unknown encoding {encoding!r} in the manifest") from None
    with tempfile.TemporaryDirectory(prefix="social-monitor-") as tmp:
        target = Path(tmp) / path.name
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
        yield target


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


def _typed_select(contract: type[RawDelivery], text_view: str, manifest: Manifest) -> str:
    columns = file_columns(contract)
    schema = contract.to_schema()
    exprs = [f"{_sql_str(manifest.data_path.name)} as source_file", "source_line",
             f"cast({manifest.report_cycle} as integer) as report_cycle",
             f"date '{manifest.reference_date.isoformat()}' as reference_date"]
    for header, column in columns.items():
        exprs.append(f"{_parse_expr(schema.columns[column].dtype, _quote(header))} as {column}")
    for header in columns:
        exprs.append(f"{_quote(header)} as {_quote('_text_' + header)}")
    return f"select {', '.join(exprs)} from {text_view}"


def _parse_expr(dtype: object, text: str) -> str:
    value = f"nullif(trim({text}), '')"
    kind = str(dtype)
    if kind == "Date":
        return f"cast(try_strptime({value}, '%d.%m.%Y') as date)"
    if kind.startswith("Int"):  # "6.5" is not a whole number (a plain cast would round it to 7)
        return (f"case when regexp_full_match({value}, '[+-]?[0-9]+([.]0+)?') "
                f"then try_cast(try_cast({value} as double) as {_duckdb_type(dtype)}) end")
    return value


def _parse_problems(con: duckdb.DuckDBPyConnection, contract: type[RawDelivery], name: str) -> list[Problem]:
    """Values present in the file that did not parse into the contract's type."""
    schema = contract.to_schema()
    problems = []
    for header, column in file_columns(contract).items():
        kind = str(schema.columns[column].dtype)
        if kind == "Date":
            expected = "a date DD.MM.YYYY"
        elif kind.startswith("Int"):
            expected = "a whole number"
        else:
            continue
        rows = con.execute(
            f"select source_line from _typed where {column} is null "
            f"and nullif(trim({_quote('_text_' + header)}), '') is not null order by source_line"
        ).fetchall()
        problems += [Problem(name, line, header, "parse", f"value is not {expected}") for (line,) in rows]
    return problems


def _contract_problems(
    con: duckdb.DuckDBPyConnection, contract: type[RawDelivery], name: str, already_reported: list[Problem]
) -> list[Problem]:
    """Pandera's verdict on the typed rows (polars backend: no pandas copy), mapped to file lines."""
    frame = con.execute("select * from _typed order by source_line").pl()
    headers = {column: header for header, column in file_columns(contract).items()}
    personal = personal_columns(contract)
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
            contract.validate(frame, lazy=True)
        return []
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    lines = frame.get_column("source_line")
    unparsed = {(p.line, p.column) for p in already_reported}
    problems = []
    for case in cases.iter_rows(named=True):
        check = _short_check(str(case["check"]))
        column = case["column"] if case["column"] in headers else None
        if column is None and check_column(check) in headers:
            column = check_column(check)
        index = case["index"]
        line = int(lines[index]) if index is not None else None
        if (line, headers.get(column)) in unparsed:
            continue  # a value that did not parse is null here; it is reported once, as unparseable
        if check in ("multiple_fields_uniqueness", "field_uniqueness"):
            reason = "duplicate key " + ", ".join(headers.get(c, c) for c in contract.to_schema().unique or [])
        elif column is None:
            reason = f"fails {check}"
        elif check_column(check):
            reason = f"fails {check}"
        elif column in personal or case["failure_case"] is None:
            reason = f"value fails {check}"
        else:
            reason = f"value {case['failure_case']!r} fails {check}"
        if line is None and case["schema_context"] != "DataFrameSchema":
            reason = f"column fails {check}"
        problems.append(Problem(name, line, headers.get(column) if column else None, check, reason))
    return problems


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
        con.executemany(
            "insert into raw.rejected_rows values (?, ?, ?, ?, ?, ?, ?, ?)",
            [(source.name, manifest.report_cycle, p.file, p.line, p.column, p.check, p.reason, outcome)
             for p in problems],
        )


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

