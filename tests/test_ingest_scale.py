"""The loader at scale, on small files: Pandera validates in bounded batches, key uniqueness spans the whole
delivery, DuckDB works within a memory limit, and cp1252 is read without a transcoded copy when it can be.

A delivery larger than one batch must be reported exactly as it is when it fits one batch: the batch size
(``ROWS_PER_BATCH``) is made small here so that a few thousand rows span several batches.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import social_monitor.ingest as ingest
from social_monitor.deliveries import find_manifest, reference_date_of, write_manifest
from social_monitor.ingest import DeliveryError, load_delivery
from tests.deliveries import LAYOUTS, person, write_delivery

CYCLE = 2018
ROWS = 3500
SMALL_BATCH = 1000


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def _register_rows() -> list[dict]:
    """3,500 valid persons with, in four different batches of 1,000: a key repeated (lines 7 and 2402), two
    empty keys (lines 1502 and 2602), an unknown sex code (line 3102) and an impossible date (line 3302)."""
    rows = [person(f"k{i:05d}", "01.02.1980", "001", moved="01.01.2000") for i in range(ROWS)]
    rows[2400]["Personen_ID"] = rows[5]["Personen_ID"]
    rows[1500]["Personen_ID"] = rows[2600]["Personen_ID"] = ""
    rows[3100]["Geschlecht"] = "x"
    rows[3300]["Geburtsdatum"] = "31.02.1980"
    return rows


REGISTER_PROBLEMS = {
    (7, "Personen_ID", "multiple_fields_uniqueness", "duplicate key Personen_ID"),
    (2402, "Personen_ID", "multiple_fields_uniqueness", "duplicate key Personen_ID"),
    (1502, "Personen_ID", "multiple_fields_uniqueness", "duplicate key Personen_ID"),
    (1502, "Personen_ID", "not_nullable", "value fails not_nullable"),
    (2602, "Personen_ID", "multiple_fields_uniqueness", "duplicate key Personen_ID"),
    (2602, "Personen_ID", "not_nullable", "value fails not_nullable"),
    (3102, "Geschlecht", "isin(['m', 'w', 'd', 'o'])", "value fails isin(['m', 'w', 'd', 'o'])"),
    (3302, "Geburtsdatum", "parse", "value is not a date DD.MM.YYYY"),
}


def _sgb2_rows() -> list[dict]:
    """The same in a Parquet file (rows count from 1): a household key repeated is fine, a person key not."""
    rows = [{"Personen_ID": f"p{i:05d}", "BG_Nummer": f"bg{i // 3}", "Alter": 30, "Unterbezirk": "261"}
            for i in range(ROWS)]
    rows[2999]["Personen_ID"] = rows[0]["Personen_ID"]
    rows[3400]["Alter"] = 68
    return rows


SGB2_PROBLEMS = {
    (1, "Personen_ID", "multiple_fields_uniqueness", "duplicate key Personen_ID"),
    (3000, "Personen_ID", "multiple_fields_uniqueness", "duplicate key Personen_ID"),
    (3401, "Alter", "in_range(0, 67)", "value above the maximum 67, fails in_range(0, 67)"),
}

DELIVERIES = {"register": (_register_rows, REGISTER_PROBLEMS), "sgb2": (_sgb2_rows, SGB2_PROBLEMS)}


def _outcome(con, folder, source: str, policy: str) -> tuple:
    """Everything a load shows: the refusal message (policy fail) or the result, rejections and rows."""
    manifest = find_manifest(folder, LAYOUTS[source], CYCLE)
    if policy == "fail":
        with pytest.raises(DeliveryError) as refused:
            load_delivery(con, manifest)
        return str(refused.value), [(p.line, p.column, p.check, p.reason) for p in refused.value.problems]
    result = load_delivery(con, manifest, policy="quarantine")
    rejected = con.execute("select source_line, column_name, check_name, reason from raw.rejected_rows "
                           "where source = ? order by all", [source]).fetchall()
    loaded = con.execute(f"select * exclude (source_file) from raw.{source} order by source_line").fetchall()
    problems = [(p.line, p.column, p.check, p.reason) for p in result.problems]
    return (result.rows_in, result.rows_accepted, result.rows_rejected), problems, rejected, loaded


@pytest.mark.parametrize("source", sorted(DELIVERIES))
@pytest.mark.parametrize("policy", ["fail", "quarantine"])
def test_a_delivery_of_several_batches_is_reported_as_one_batch(tmp_path, monkeypatch, source, policy):
    rows, expected = DELIVERIES[source]
    write_delivery(tmp_path / "landing", source, CYCLE, rows())
    batches: list[int] = []
    one_batch = ingest._batch_schema

    def counting_schema(contract, area_keys=None):
        schema = one_batch(contract, area_keys)

        class Counting:  # the schema (its columns and checks compile to SQL), counting the batches validated
            def __getattr__(self, name):
                return getattr(schema, name)

            def validate(self, frame, **options):
                batches.append(frame.height)
                return schema.validate(frame, **options)

        return Counting()

    monkeypatch.setattr(ingest, "_batch_schema", counting_schema)
    outcomes = []
    for rows_per_batch in (SMALL_BATCH, 1_000_000):
        monkeypatch.setattr(ingest, "ROWS_PER_BATCH", rows_per_batch)
        connection = duckdb.connect(str(tmp_path / f"warehouse-{rows_per_batch}.duckdb"))
        try:
            outcomes.append(_outcome(connection, tmp_path / "landing", source, policy))
        finally:
            connection.close()
    assert batches == [SMALL_BATCH] * 3 + [ROWS - 3 * SMALL_BATCH] + [ROWS]  # every row validated, in batches
    in_batches, in_one = outcomes
    assert in_batches == in_one
    problems = in_batches[1]
    assert set(problems) == expected and len(problems) == len(expected)
    assert [p[0] for p in problems] == sorted(p[0] for p in problems)  # in file order
    if policy == "quarantine":
        counts, _, rejected, loaded = in_batches
        bad_lines = {p[0] for p in expected}
        assert counts == (ROWS, ROWS - len(bad_lines), len(bad_lines))
        assert set(rejected) == expected
        first = 1 if LAYOUTS[source].file_format == "parquet" else 2
        assert [row[0] for row in loaded] == sorted(set(range(first, first + ROWS)) - bad_lines)


def test_duplicate_keys_are_checked_over_the_keys_of_the_contract():
    """Uniqueness is taken out of the batch schema and checked in SQL over the contract's own key columns."""
    for source in LAYOUTS.values():
        assert ingest._batch_schema(source.contract).unique is None
        assert source.contract.to_schema().unique == ["person_key"]  # the cached contract is left as it is


# --- cp1252 --------------------------------------------------------------------------------------------


def _register_text(*rows: dict) -> str:
    headers = list(LAYOUTS["register"].file_columns)
    lines = [";".join(headers)] + [";".join("" if row[h] is None else str(row[h]) for h in headers) for row in rows]
    return "\n".join(lines) + "\n"


GOOD = [person("p1", "01.02.1980", "001"), person("p2", "03.04.2012", "261", nationality="EU")]


@pytest.mark.parametrize("c1_bytes", [False, True], ids=["read as latin-1", "transcoded"])
def test_cp1252_register_is_read_exactly(tmp_path, con, monkeypatch, c1_bytes):
    """Without bytes 0x80–0x9F DuckDB reads the file as latin-1 itself, with them (here an en dash, 0x96)
    it is transcoded; the text is the same either way."""
    transcoded = []
    as_utf8 = ingest._as_utf8
    monkeypatch.setattr(ingest, "_as_utf8", lambda *args: transcoded.append(args) or as_utf8(*args))
    house = "12–14" if c1_bytes else "12ß"
    rows = [*GOOD, {**GOOD[0], "Personen_ID": "p3", "Hausnummer": house},
            {**GOOD[0], "Personen_ID": "p4", "Geschlecht": "ä"}]
    write_delivery(tmp_path, "register", CYCLE, rows, text=_register_text(*rows))
    result = load_delivery(con, find_manifest(tmp_path, LAYOUTS["register"], CYCLE), policy="quarantine")
    assert bool(transcoded) == c1_bytes
    # the unknown code is not shown (it is not a published code): the line names it
    assert [(p.line, p.reason) for p in result.problems] == [(5, "value fails isin(['m', 'w', 'd', 'o'])")]
    assert con.execute("select house_number from raw.register where source_line = 4").fetchall() == [(house,)]


@pytest.mark.parametrize(("where", "line"), [("header", 1), ("late", 70_002)])
def test_byte_undefined_in_cp1252_is_refused_with_its_line(tmp_path, con, where, line):
    """The first undefined byte names its line, in the header too and beyond the first block read."""
    rows = [person(f"k{i:06d}", "01.02.1980", "001") for i in range(70_001)]  # about 5 MB
    raw = _register_text(*rows).encode("cp1252")
    if where == "header":
        raw = raw.replace(b"Personen_ID", b"Personen\x81ID", 1)
    else:
        raw = raw.replace(b"k070000;", b"k07\x9d000;")
    source = LAYOUTS["register"]
    path = tmp_path / source.file_name(reference_date_of(CYCLE))
    path.write_bytes(raw)
    write_manifest(path, source, reference_date_of(CYCLE), len(rows))
    byte = "0x81" if where == "header" else "0x9d"
    with pytest.raises(DeliveryError, match=rf"^{path.name}, line {line}: byte {byte} is not valid cp1252; "):
        load_delivery(con, find_manifest(tmp_path, source, CYCLE))


# --- DuckDB's memory limit -----------------------------------------------------------------------------


def _limit_during_load(con, tmp_path, monkeypatch) -> str:
    seen = []
    contract_problems = ingest._contract_problems

    def spy(connection, *args):
        seen.append(connection.execute("select current_setting('memory_limit')").fetchone()[0])
        return contract_problems(connection, *args)

    monkeypatch.setattr(ingest, "_contract_problems", spy)
    write_delivery(tmp_path, "register", CYCLE, GOOD)
    load_delivery(con, find_manifest(tmp_path, LAYOUTS["register"], CYCLE))
    return seen[0]


def test_memory_limit_during_the_load_and_restored_after(tmp_path, con, monkeypatch):
    monkeypatch.setenv(ingest.MEMORY_LIMIT_ENV, "64MB")
    before = con.execute("select current_setting('memory_limit')").fetchone()[0]
    assert _limit_during_load(con, tmp_path, monkeypatch) == "61.0 MiB"  # DuckDB shows 64 MB in MiB
    assert con.execute("select current_setting('memory_limit')").fetchone()[0] == before


def test_a_lower_limit_of_the_connection_is_kept(tmp_path, con, monkeypatch):
    monkeypatch.delenv(ingest.MEMORY_LIMIT_ENV, raising=False)  # the default, 2GB
    con.execute("set memory_limit = '100MB'")
    assert _limit_during_load(con, tmp_path, monkeypatch) == "95.3 MiB"


# --- the scratch table's compression -------------------------------------------------------------------


def _compression_setting(con) -> str:
    return con.execute("select current_setting('disabled_compression_methods')").fetchone()[0]


@pytest.mark.parametrize("before", ["", "chimp"], ids=["default", "set by the caller"])
@pytest.mark.parametrize("delivery", ["clean", "unreadable"])
def test_text_compression_is_off_only_while_the_scratch_table_is_written(tmp_path, con, before, delivery):
    """The scratch table of the typed rows is written without dictionary and FSST compression (issue 14); the
    setting holds for the whole database, so it is the caller's again after the load, whether the file was
    read or not, and the warehouse's own table is compressed as usual."""
    if before:
        con.execute(f"set disabled_compression_methods = '{before}'")
    expected = _compression_setting(con)
    rows = [person(f"k{i:06d}", "01.02.1980", "001") for i in range(3000)]
    write_delivery(tmp_path, "register", CYCLE, rows, text=_register_text(*rows) if delivery == "clean"
                   else _register_text(*rows).replace("k000100;", '"k000100;', 1))  # a quote never closed
    manifest = find_manifest(tmp_path, LAYOUTS["register"], CYCLE)
    if delivery == "clean":
        assert load_delivery(con, manifest).rows_accepted == 3000
        con.execute("checkpoint")  # the rows as stored, not as held since the insert
        stored = {row[0] for row in con.execute(
            "select compression from pragma_storage_info('raw.register') where column_name = 'street_key'"
        ).fetchall()}
        assert stored & {"Dictionary", "FSST", "Constant"}, stored  # the warehouse compresses its text
    else:
        with pytest.raises(DeliveryError):
            load_delivery(con, manifest)
    assert _compression_setting(con) == expected


def test_parquet_rows_are_numbered_from_one(tmp_path, con):
    """Rows are numbered by their place in the stored table (no numbering while reading, which would keep
    DuckDB to one thread); in a Parquet file the first row is row 1."""
    source = LAYOUTS["sgb2"]
    path = tmp_path / source.file_name(reference_date_of(CYCLE))
    rows = _sgb2_rows()[:5]
    rows[3]["Alter"] = 99
    pq.write_table(pa.table({"Personen_ID": [r["Personen_ID"] for r in rows],
                             "BG_Nummer": [r["BG_Nummer"] for r in rows],
                             "Alter": pa.array([r["Alter"] for r in rows], pa.int16()),
                             "Unterbezirk": [r["Unterbezirk"] for r in rows]}), path, row_group_size=2)
    write_manifest(path, source, reference_date_of(CYCLE), len(rows))
    result = load_delivery(con, find_manifest(tmp_path, source, CYCLE), policy="quarantine")
    assert [(p.line, p.column) for p in result.problems] == [(4, "Alter")]
    assert con.execute("select source_line from raw.sgb2 order by 1").fetchall() == [(1,), (2,), (3,), (5,)]


def test_a_clean_delivery_is_checked_in_sql_alone_and_a_bad_row_brings_pandera_in(tmp_path, monkeypatch):
    """A clean delivery passes the contract's row checks with one SQL count (``contract_sql``), without a
    Pandera pass; one bad row anywhere (here a birth after the reference date, a check across columns) sends
    the delivery through Pandera, which names it."""
    validated = []
    pandera_problems = ingest._pandera_problems
    monkeypatch.setattr(ingest, "_pandera_problems",
                        lambda *args: validated.append(args[3].data_path.name) or pandera_problems(*args))
    rows = [person(f"k{i:05d}", "01.02.1980", "001", moved="01.01.2000") for i in range(ROWS)]
    outcomes = []
    for case, born in (("clean", "01.02.1980"), ("bad", "01.01.2019")):
        rows[1234]["Geburtsdatum"] = born
        write_delivery(tmp_path / case, "register", CYCLE, rows)
        with duckdb.connect(str(tmp_path / f"{case}.duckdb")) as connection:
            result = load_delivery(connection, find_manifest(tmp_path / case, LAYOUTS["register"], CYCLE),
                                   policy="quarantine")
        outcomes.append((len(validated), result.rows_accepted, [(p.line, p.column, p.check) for p in result.problems]))
    assert outcomes == [
        (0, ROWS, []),
        (1, ROWS - 1, [(1236, "Zuzugsdatum", "move_in_date must lie between birth_date and the reference date"),
                       (1236, "Geburtsdatum", "birth_date must lie on or before the reference date and at most "
                                              "120 years before")]),
    ]
