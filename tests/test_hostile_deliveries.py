"""Generated hostile deliveries: whatever a careless sender or an attacker puts into a file, loading it ends
in one of three outcomes, and no personal value leaves the rows of the raw person tables.

Hypothesis builds a small valid delivery of any source whose personal fields hold marked values (``PII``
followed by letters: person and household keys, house numbers; and distinctive birth and move-in dates), then
mutates it at the field level (fields shifted, dropped, added, replaced by marked values, odd dates, numbers
and codes, quotes, a missing or changed header), the line level (LF, CR LF, CR only, mixed, a byte order
mark, another separator, another encoding) and the byte level (cut off, bytes replaced, inserted, deleted);
Parquet deliveries get odd column names, other and nested types, nulls, NaN and damaged bytes. The real
loader (``load_delivery``) loads each into a real DuckDB file, and the test asserts:

- the outcome is accepted, quarantined (rows in = accepted + rejected, in the result and in
  ``raw.deliveries``; ``raw.<source>`` holds the accepted rows) or refused with a ``DeliveryError`` whose
  message starts with the file name and is capped; any other exception fails the test;
- the loader's one SQL count of the rows failing a check of the contract (``contract_sql``) is 0 exactly when
  Pandera finds no problem in the same typed rows (a clean delivery is then never shown to Pandera);
- no marked value (nor any fragment ``PII``) and no birth or move-in date appears in the message, in a
  problem, in ``raw.rejected_rows`` or in any VARCHAR column of the warehouse outside the raw person tables.

Cases per run: ``max_examples`` of the profile in tests/conftest.py per test (60 by default, e.g. 2000 with
``SOCIAL_MONITOR_HYPOTHESIS_EXAMPLES=2000``), for CSV and for Parquet deliveries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import DagsterEventType, DagsterInstance
from hypothesis import event, given, settings
from hypothesis import strategies as st

import social_monitor.ingest as ingest
from schemas.raw import code_lists
from social_monitor import cli
from social_monitor.bad_lines import recheck
from social_monitor.deliveries import Manifest, read_manifest, reference_date_of, write_manifest
from social_monitor.geography import load_geography
from social_monitor.ingest import MAX_MESSAGE_CHARS, DeliveryError, LoadResult, load_delivery
from social_monitor.settings import DEFAULT_CITY, FOLLOW_THE_DATA_DIR, PROJECT_DIR, city_dir, copy_city
from tests.deliveries import LAYOUTS
from tests.pipeline_env import BIN, DAGSTER

CYCLE = 2018
MARK = "PII"  # every marked personal value starts with it; no message, check or header holds it
PERSON_TABLES = {source.table for source in LAYOUTS.values()}
CSV_SOURCES = sorted(name for name, source in LAYOUTS.items() if source.file_format == "csv")
HEADERS = {name: list(source.file_columns) for name, source in LAYOUTS.items()}
AREA_KEYS = load_geography(city_dir(DEFAULT_CITY)).base_keys(CYCLE)  # the sample city's, as generated
CODES = {name: {header: code_lists(source.contract, AREA_KEYS)[column]
                for header, column in source.file_columns.items() if column in code_lists(source.contract, AREA_KEYS)}
         for name, source in LAYOUTS.items()}
ODD_DATES = ["01.01.0000", "00.00.0000", "31.02.1961", "29.02.1900", "1.1.1", "01.01.10000", "31.12.9999",
             "01.01.-001", "1961-03-17", "17.03.61", "17.03.1961 00:00:00", "۱۷.۰۳.۱۹۶۱"]
ODD_NUMBERS = ["-0", "+5", "5.0", "6.5", "1e3", "NaN", "inf", "99999999999999999999", "0x10", "٥", " 7 "]
ODD_CODES = ["W", " w ", "GSI\t", "1", "999", "HLU", "deutsch", "H", "001", "", " "]
ODD_TEXT = ['"', '""', '";"', "\t", "\x00", "\u2028", "\ufeff", "\\", "'", ";", "\r", "\n", "\r\n", "é", "€"]
ENCODINGS = ["utf-8", "cp1252", "latin-1", "utf-16", "utf-8-sig", "ANSI", "rot13", "ascii", "UTF8", "hex"]


# --- marked values --------------------------------------------------------------------------------------

markers = st.text(alphabet="abcdefghjkmnpqrstuvwxyz", min_size=5, max_size=5).map(lambda s: MARK + s)


@st.composite
def dates(draw, low: dt.date, high: dt.date) -> dt.date:
    return low + dt.timedelta(days=draw(st.integers(0, (high - low).days)))


@st.composite
def valid_row(draw, source: str) -> dict[str, object]:
    """A valid row whose personal fields hold marked values."""
    reference = reference_date_of(CYCLE)
    codes = {header: st.sampled_from(values) for header, values in CODES[source].items()}
    born = draw(dates(dt.date(1910, 1, 1), dt.date(2010, 12, 31)))
    row: dict[str, object] = {header: draw(strategy) for header, strategy in codes.items()}
    row["Personen_ID"] = draw(markers)
    if "Haushalts_ID" in HEADERS[source]:  # the register's household key: personal, like the person key
        row["Haushalts_ID"] = draw(markers)
    if "BG_Nummer" in HEADERS[source]:
        row["BG_Nummer"] = draw(markers)
        row["Alter"] = draw(st.integers(0, 67))
    if "Geburtsdatum" in HEADERS[source]:
        row["Geburtsdatum"] = born.strftime("%d.%m.%Y")
    if "Arbeitslos_seit" in HEADERS[source]:  # unemployment: age at the reference date, since within working life
        age = draw(st.integers(15, 67))
        row["Alter"] = age
        earliest = dt.date(reference.year - (age - 14), 12, 31)
        row["Arbeitslos_seit"] = draw(dates(earliest, reference)).strftime("%d.%m.%Y")
    if "Zuzugsdatum" in HEADERS[source]:
        moved = draw(st.none() | dates(born, reference))
        row["Zuzugsdatum"] = moved.strftime("%d.%m.%Y") if moved else ""
    if "Hausnummer" in HEADERS[source]:
        row["Hausnummer"] = draw(markers)  # 8 characters: the longest house number
        row["Straßenschlüssel"] = draw(st.text(alphabet="0123456789", min_size=5, max_size=5))
    return row


def personal_texts(rows: list[dict[str, object]]) -> set[str]:
    """The dates in the rows, as delivered and in ISO form (the markers are found by ``MARK``), except the
    reference date: a move-in or the start of unemployment on that day is a date every message may name (it is
    in the file's name)."""
    found = set()
    for row in rows:
        for header in ("Geburtsdatum", "Zuzugsdatum", "Arbeitslos_seit"):
            value = row.get(header)
            if value and value != reference_date_of(CYCLE).strftime("%d.%m.%Y"):
                found.add(str(value))
                found.add(dt.datetime.strptime(str(value), "%d.%m.%Y").date().isoformat())
    return found


# --- CSV ------------------------------------------------------------------------------------------------


@st.composite
def odd_value(draw) -> str:
    return draw(st.one_of(
        markers, markers.map(lambda m: f" {m} "), markers.map(lambda m: f'"{m}'), markers.map(lambda m: f'{m}"'),
        markers.map(lambda m: f'"{m};{m}"'), markers.map(lambda m: m * 40), markers.map(lambda m: m.upper()),
        st.sampled_from(ODD_DATES), st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_CODES),
        st.sampled_from(ODD_TEXT), st.text(max_size=6),
    ))


@st.composite
def field_mutation(draw, table: list[list[str]]) -> None:
    """Change the table of cells (header first) in place, at the field level."""
    kind = draw(st.sampled_from(["shift"] * 2 + ["replace"] * 5 + ["drop", "add", "duplicate row", "header",
                                                                  "no header"]))
    data = range(1, len(table)) if len(table) > 1 else range(len(table))
    row = draw(st.sampled_from(data)) if kind not in ("header", "no header") else 0
    cells = table[row] if table else []
    if kind == "shift" and cells:
        k = draw(st.integers(1, max(1, len(cells) - 1)))
        table[row] = cells[k:] + cells[:k]
    elif kind == "drop" and cells:
        del cells[draw(st.integers(0, len(cells) - 1))]
    elif kind == "add":
        cells.insert(draw(st.integers(0, len(cells))), draw(st.one_of(markers, st.just(""))))
    elif kind == "replace" and cells:
        cells[draw(st.integers(0, len(cells) - 1))] = draw(odd_value())
    elif kind == "duplicate row" and len(table) > 1:
        table.insert(row, list(table[row]))
    elif kind == "header" and cells:
        i = draw(st.integers(0, len(cells) - 1))
        cells[i] = draw(st.one_of(markers, st.sampled_from([cells[i] + " ", "\ufeff" + cells[i], cells[i].lower(),
                                                           cells[i][:5] + ".", ""])))
    elif kind == "no header" and len(table) > 1:
        del table[0]


@st.composite
def byte_mutation(draw, content: bytes) -> bytes:
    if not content:
        return content
    at = draw(st.integers(0, len(content)))
    kind = draw(st.sampled_from(["cut", "replace", "insert", "delete"]))
    if kind == "cut":
        return content[:at]
    if kind == "replace":
        return content[:at] + draw(st.binary(min_size=1, max_size=4)) + content[at + 4:]
    if kind == "insert":
        return content[:at] + draw(st.binary(min_size=1, max_size=8)) + content[at:]
    return content[:at] + content[at + draw(st.integers(1, 16)):]


@st.composite
def csv_deliveries(draw, sources: list[str] = CSV_SOURCES) -> tuple[str, bytes, int, str, str | None, set[str]]:
    """(source, the file's bytes, rows announced, encoding and separator in the manifest, personal dates)."""
    source = draw(st.sampled_from(sources))
    rows = draw(st.lists(valid_row(source), min_size=1, max_size=4))
    table = [list(HEADERS[source])] + [[str(row.get(h, "")) for h in HEADERS[source]] for row in rows]
    for _ in range(draw(st.integers(0, 3))):
        draw(field_mutation(table))
    separator = draw(st.sampled_from([";"] * 6 + [",", "\t"]))
    declared_separator = draw(st.sampled_from([None, None, separator, separator, ";"]))
    ending = draw(st.sampled_from(["\n"] * 6 + ["\r\n"] * 3 + ["\r", "mixed"]))
    lines = [separator.join(cells) for cells in table]
    if ending == "mixed":
        text = "".join(line + draw(st.sampled_from(["\n", "\r\n", "\r"])) for line in lines)
    else:
        text = ending.join(lines) + draw(st.sampled_from([ending, "", ending * 3]))
    if draw(st.booleans()) and draw(st.booleans()):
        text = "\ufeff" + text
    native = LAYOUTS[source].encoding
    written = draw(st.sampled_from([native] * 6 + ["utf-8", "cp1252", "utf-16"]))
    declared = draw(st.sampled_from([native] * 12 + [written] * 4 + ENCODINGS))
    content = text.encode(written, errors="replace")
    for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        content = draw(byte_mutation(content))
    announced = max(0, len(table) - 1) + draw(st.sampled_from([0] * 6 + [1, -1]))
    return source, content, max(announced, 0), declared, declared_separator, personal_texts(rows)


# --- Parquet --------------------------------------------------------------------------------------------


@st.composite
def parquet_deliveries(draw) -> tuple[str, bytes, int, str, str | None, set[str]]:
    source = "sgb2"
    rows = draw(st.lists(valid_row(source), min_size=1, max_size=4))
    columns: dict[str, pa.Array] = {
        header: pa.array([row[header] for row in rows], pa.int16() if header == "Alter" else pa.string())
        for header in HEADERS[source]}
    n = len(rows)
    for _ in range(draw(st.integers(0, 3))):
        header = draw(st.sampled_from(sorted(columns)))
        kind = draw(st.sampled_from(["rename", "drop", "add", "type", "nested", "nulls", "values"]))
        if kind == "rename":
            new = draw(st.one_of(markers, st.sampled_from([header + " ", " " + header, "\ufeff" + header,
                                                           header.lower(), header + "\x00", ""])))
            if new not in columns:
                columns = {new if h == header else h: v for h, v in columns.items()}
        elif kind == "drop":
            del columns[header]
        elif kind == "add":
            columns[draw(markers)] = pa.array(draw(st.lists(markers, min_size=n, max_size=n)))
        elif kind == "type":
            columns[header] = draw(st.sampled_from([
                pa.array(draw(st.lists(markers, min_size=n, max_size=n))),
                pa.array(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n))),
                pa.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), pa.int64()),
                pa.array([m.encode() for m in draw(st.lists(markers, min_size=n, max_size=n))], pa.binary()),
                pa.array([dt.date(1961, 3, 17)] * n, pa.date32()),
                pa.array([True] * n),
                pa.array([str(v) for v in columns[header].to_pylist()]).dictionary_encode(),
                pa.array(draw(st.lists(st.sampled_from(ODD_NUMBERS + ODD_CODES), min_size=n, max_size=n))),
            ]))
        elif kind == "nested":
            mark = draw(markers)
            columns[header] = draw(st.sampled_from([
                pa.array([{mark: mark}] * n), pa.array([[mark, mark]] * n),
                pa.array([[(mark, mark)]] * n, pa.map_(pa.string(), pa.string())),
            ]))
        elif kind == "nulls":
            mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            values = columns[header].to_pylist()
            kept = [None if m else v for v, m in zip(values, mask, strict=True)]
            columns[header] = pa.array(kept, columns[header].type)
        elif kind == "values" and pa.types.is_string(columns[header].type):
            columns[header] = pa.array(draw(st.lists(odd_value(), min_size=n, max_size=n)))
    path = Path(tempfile.mkdtemp(prefix="hostile-")) / "file.parquet"
    try:
        pq.write_table(pa.table(columns) if columns else pa.table({"": pa.array([], pa.string())}), path,
                       compression=draw(st.sampled_from(["snappy", "none", "zstd"])))
        content = path.read_bytes()
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
        content = draw(byte_mutation(content))
    return source, content, n, "utf-8", None, personal_texts(rows)


# --- the outcome ----------------------------------------------------------------------------------------


def deliver(folder: Path, source: str, content: bytes, announced: int, encoding: str,
            delimiter: str | None) -> Manifest:
    """The file and its manifest (checksum of the file as it is; encoding and separator as drawn)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = LAYOUTS[source]
    path = folder / src.file_name(reference_date_of(CYCLE))
    path.write_bytes(content)
    manifest = read_manifest(write_manifest(path, src, reference_date_of(CYCLE), announced), LAYOUTS)
    return dataclasses.replace(manifest, encoding=encoding, delimiter=delimiter)


def assert_nothing_personal(text: str, dates_: set[str]) -> None:
    assert MARK not in text, f"a marked personal value is shown: {text[:2000]}"
    shown = sorted(d for d in dates_ if d in text)
    assert not shown, f"personal dates shown: {shown} in {text[:2000]}"


def outside_person_tables(con: duckdb.DuckDBPyConnection) -> str:
    """Every VARCHAR value of the warehouse outside the raw person tables, as one text."""
    columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                          "where data_type = 'VARCHAR'").fetchall()
    texts = []
    for schema, table, column in columns:
        if schema == "raw" and table in PERSON_TABLES:
            continue
        texts += [str(v) for (v,) in con.execute(f'select "{column}" from "{schema}"."{table}"').fetchall()]
    return "\n".join(texts)


@contextmanager
def sql_verdict_checked_against_pandera() -> Iterator[None]:
    """While a delivery loads, the loader's SQL verdict on the typed rows (the count of rows failing a row check
    of the contract) is compared with Pandera's (every problem it finds, none left out as reported before)."""
    contract_problems = ingest._contract_problems

    def both(con, layout, typed, manifest, already_reported, area_keys):
        failing = ingest._failing_rows(con, layout.contract, typed, manifest, area_keys)
        try:
            found = [str(p) for p in ingest._pandera_problems(con, layout, typed, manifest, set(), area_keys)]
        except DeliveryError as error:  # an internal error of Pandera or polars is a problem found, too
            found = [str(error)]
        assert failing is not None and (failing == 0) == (not found), (failing, found[:3])
        event("SQL verdict: clean" if failing == 0 else "SQL verdict: rows fail")
        return contract_problems(con, layout, typed, manifest, already_reported, area_keys)

    ingest._contract_problems = both
    try:
        yield
    finally:
        ingest._contract_problems = contract_problems


def load_and_check(case: tuple, policy: str, share: float) -> str:
    """Load a generated delivery into a fresh warehouse and assert the outcome; returns the outcome."""
    source, content, announced, encoding, delimiter, personal = case
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp, sql_verdict_checked_against_pandera():
        manifest = deliver(Path(tmp) / "landing", source, content, announced, encoding, delimiter)
        name, table = manifest.data_path.name, LAYOUTS[source].table
        with duckdb.connect(str(Path(tmp) / "warehouse.duckdb")) as con:
            try:
                result: LoadResult | DeliveryError = load_delivery(con, manifest, policy=policy,
                                                                   max_rejected_share=share)
            except DeliveryError as refused:
                result = refused
            if isinstance(result, DeliveryError):
                message = str(result)
                assert message.startswith(name), message
                assert len(message) <= MAX_MESSAGE_CHARS
                assert "internal error" not in message, message
                texts = [message, *map(str, result.problems)]
                assert con.execute("select count(*) from raw.deliveries").fetchone()[0] == 0
                assert con.execute(f"select count(*) from raw.{table}").fetchone()[0] == 0
                outcome = "refused: " + re.sub(r"[0-9]+", "N", message.split(":", 2)[1].strip())[:40]
            else:
                assert result.rows_in == announced == result.rows_accepted + result.rows_rejected
                assert result.rows_rejected == 0 or policy == "quarantine"
                recorded = con.execute("select rows_in, rows_accepted, rows_rejected from raw.deliveries").fetchall()
                assert recorded == [(result.rows_in, result.rows_accepted, result.rows_rejected)]
                assert con.execute(f"select count(*) from raw.{table}").fetchone()[0] == result.rows_accepted
                lines = con.execute("select count(distinct source_line) from raw.rejected_rows "
                                    "where delivery_outcome = 'quarantined'").fetchone()[0]
                assert lines == result.rows_rejected
                texts = [str(p) for p in result.problems]
                outcome = "quarantined" if result.rows_rejected else "accepted"
            texts.append(outside_person_tables(con))
        for text in texts:
            assert_nothing_personal(text, personal)
    return outcome


policies = st.sampled_from(["quarantine", "quarantine", "fail"])
shares = st.sampled_from([1.0, 1.0, 1.0, 0.5, 0.0])


@given(case=csv_deliveries(), policy=policies, share=shares)
def test_a_hostile_csv_delivery_is_accepted_quarantined_or_refused_and_shows_nothing_personal(case, policy, share):
    event(load_and_check(case, policy, share))


@given(case=parquet_deliveries(), policy=policies, share=shares)
def test_a_hostile_parquet_delivery_is_accepted_quarantined_or_refused_and_shows_nothing_personal(case, policy, share):
    event(load_and_check(case, policy, share))


# --- the steward's command --------------------------------------------------------------------------------


def test_show_bad_lines_prints_the_bad_lines_and_their_problems_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOCIAL_MONITOR_DATA_DIR", str(tmp_path / "data"))
    header = ";".join(HEADERS["sgb12"])
    text = f"{header}\nPIIgood1;HLU;01.02.1950;001\nPIIbad02;01.02.1950;001;HLU\nPIIgood3;GSI;03.04.1940;261\n"
    manifest = deliver(tmp_path / "landing", "sgb12", text.encode(), 3, "utf-8", ";")
    before = sorted(tmp_path.rglob("*"))
    assert cli.main(["show-bad-lines", str(manifest.data_path), "--allow-pipe"]) == 0
    printed = capsys.readouterr().out
    # the verdict follows the city's policy (Dortmund: ingest_policy fail), not the recheck's quarantine
    assert "sgb12_2018-12-31.csv: 2 of 3 rows are good, 1 bad: the delivery would be refused (ingest_policy: fail" \
        in printed
    assert "would be quarantined" not in printed
    assert recheck(manifest, "quarantine", 0.5)[0].endswith("1 bad: they would be quarantined (ingest_policy: "
                                                             "quarantine in city.yml)")
    assert "1 bad (33.3%): the delivery would be refused, more than quarantine_max_share 10.0%" in recheck(
        manifest, "quarantine", 0.1)[0]
    assert f"line 1 (header): {header}" in printed
    assert "line 3: PIIbad02;01.02.1950;001;HLU" in printed
    assert "Leistungsart: value fails isin(['HLU', 'GSI'])" in printed
    assert "PIIgood1" not in printed and "PIIgood3" not in printed  # only the bad lines
    assert sorted(tmp_path.rglob("*")) == before  # no warehouse, no file written

    assert cli.main(["show-bad-lines", str(manifest.path), "--allow-pipe", "--lines", "2"]) == 0
    assert "line 2: PIIgood1;HLU;01.02.1950;001" in capsys.readouterr().out


def test_show_bad_lines_shows_the_first_line_of_a_file_without_its_header_and_a_parquet_row(tmp_path, capsys):
    rows = "PIIrow01;HLU;01.02.1950;001\rPIIrow02;GSI;01.02.1950;001\r"  # no header, CR-only line endings
    manifest = deliver(tmp_path / "a", "sgb12", rows.encode(), 2, "utf-8", ";")
    assert cli.main(["show-bad-lines", str(manifest.data_path), "--allow-pipe"]) == 0
    printed = capsys.readouterr().out
    assert "refused: sgb12_2018-12-31.csv, line 1: a carriage return (CR) inside the header line" in printed
    assert "line 1 (header): PIIrow01;HLU;01.02.1950;001\\rPIIrow02" in printed

    table = pa.table({"Personen_ID": ["PIIp1", "PIIp2"], "BG_Nummer": ["PIIb1", "PIIb2"],
                      "Alter": pa.array([5, 99], pa.int16()), "Unterbezirk": ["001", "001"]})
    path = tmp_path / "b" / "sgb2_2018-12-31.parquet"
    path.parent.mkdir()
    pq.write_table(table, path)
    write_manifest(path, LAYOUTS["sgb2"], reference_date_of(CYCLE), 2)
    assert cli.main(["show-bad-lines", str(path), "--allow-pipe"]) == 0
    printed = capsys.readouterr().out
    assert "row 2: Personen_ID='PIIp2' | BG_Nummer='PIIb2' | Alter=99 | Unterbezirk='001'" in printed
    assert "Alter: value above the maximum 67, fails in_range(0, 67)" in printed and "PIIp1" not in printed


def test_show_bad_lines_prints_nothing_into_a_pipe(tmp_path):
    text = f"{';'.join(HEADERS['asylblg'])}\nPIIpipe1;01.02.1950;x;001\n"
    manifest = deliver(tmp_path / "landing", "asylblg", text.encode(), 1, "utf-8", ";")
    done = subprocess.run([str(BIN / "social-monitor"), "show-bad-lines", str(manifest.path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert "stdout is not a terminal" in done.stderr and MARK not in done.stderr


# --- through Dagster ----------------------------------------------------------------------------------------

# A Dagster run costs half a minute on a busy machine: three generated sets of deliveries (one per
# source) by default, one twentieth of the examples under SOCIAL_MONITOR_HYPOTHESIS_EXAMPLES.
DAGSTER_EXAMPLES = max(3, settings.default.max_examples // 20)


@st.composite
def one_delivery_per_source(draw) -> list[tuple]:
    return [draw(csv_deliveries([name])) for name in CSV_SOURCES] + [draw(parquet_deliveries())]


@settings(max_examples=DAGSTER_EXAMPLES)
@given(cases=one_delivery_per_source(), policy=st.sampled_from(["quarantine", "fail"]))
def test_hostile_deliveries_through_dagster_leave_nothing_personal_in_its_home_or_output(cases, policy):
    """The raw assets of one report cycle materialised by the Dagster CLI (temporary DAGSTER_HOME): every
    step either succeeds or fails with a Failure whose description starts with the file's (or its
    manifest's) name; no marked
    value in the CLI's output, in any file of the Dagster home or in the warehouse outside the person tables."""
    with tempfile.TemporaryDirectory(prefix="hostile-dagster-") as tmp:
        root = Path(tmp)
        personal: set[str] = set()
        names = set()
        for source, content, announced, encoding, delimiter, dates_ in cases:
            manifest = deliver(root / "data" / "landing", source, content, announced, encoding, delimiter)
            content_json = json.loads(manifest.path.read_text(encoding="utf-8"))
            content_json.update(encoding=encoding, delimiter=delimiter)  # as drawn
            manifest.path.write_text(json.dumps(content_json), encoding="utf-8")
            personal |= dates_
            names |= {manifest.data_path.name, str(manifest.path), manifest.path.name}  # a refusal names one
        copy_city(DEFAULT_CITY, root / "city", ingest_policy=policy, quarantine_max_share=1.0)
        (root / "dagster_home").mkdir()
        env = {**os.environ, "SOCIAL_MONITOR_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "dagster_home"),
               "SOCIAL_MONITOR_CITY": str(root / "city")}
        for variable in FOLLOW_THE_DATA_DIR:
            env.pop(variable, None)
        done = subprocess.run([*DAGSTER, "asset", "materialize", "-m", "orchestration.definitions",
                               "--select", "group:raw", "--partition", str(CYCLE)],
                              cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900)
        assert_nothing_personal(done.stdout + done.stderr, personal)

        failures = []
        with DagsterInstance.from_config(str(root / "dagster_home")) as instance:
            for run_record in instance.get_run_records():
                for entry in instance.all_logs(run_record.dagster_run.run_id, of_type=DagsterEventType.STEP_FAILURE):
                    data = entry.dagster_event.step_failure_data
                    assert data.user_failure_data is not None, f"an unhandled exception: {data.error.message[:300]}"
                    failures.append(data.user_failure_data.description)
        assert all(any(f.startswith(name) for name in names) for f in failures), failures
        assert (done.returncode == 0) == (not failures), done.stderr[-2000:]

        for path in (root / "dagster_home").rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert MARK.encode() not in content, f"a marked value in {path}"
                assert not [d for d in personal if d.encode() in content], f"a personal date in {path}"
        with duckdb.connect(str(root / "data" / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
            assert_nothing_personal(outside_person_tables(con), personal)
            for rows_in, accepted, rejected in con.execute(
                    "select rows_in, rows_accepted, rows_rejected from raw.deliveries").fetchall():
                assert rows_in == accepted + rejected
        event(f"{len(failures)} of {len(cases)} steps failed")
