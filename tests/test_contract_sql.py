"""The contracts' row checks compiled into SQL (``social_monitor.ingest.contract_sql``) decide every row as
Pandera does: on generated rows of every contract (values at and around every bound, codes and near codes,
text with digits of other scripts, dates far apart, NULLs), the rows the SQL condition fails are exactly the
rows Pandera's polars backend reports. Pandera is the oracle, the loader's compilation the code under test; the
SQL forms of the checks across columns are declared next to their polars forms (``schemas.raw.sql_form``).

Cases per run: ``max_examples`` of the profile in tests/conftest.py per contract.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandera.polars as pa
import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from schemas.aggregates import AggregateCounts
from schemas.raw import SQL_FORMS, code_lists
from social_monitor.deliveries import SOURCES
from social_monitor.ingest import _batch_schema, contract_conditions, contract_sql

AREA_KEYS = ("001", "002", "261")
CONTRACTS = {**{source.name: source.contract for source in SOURCES.values()}, "aggregates": AggregateCounts}
NEAR_CODES = ["", " ", "M", "w ", "0", "x", "Inland ", "SGB  II", "0001", "26", "2610"]
DIGITS = st.text(alphabet=st.sampled_from("0123456789\u0663\u06f5\u0966\uff11\u00b2"), min_size=4, max_size=6)
TEXT = st.text(alphabet=st.sampled_from("0123456789a Z-é\u0663\u06f5\u0966\uff11\u00b2\n"), max_size=70)


def dates(low: dt.date = dt.date(1, 1, 1), high: dt.date = dt.date(9999, 12, 31)) -> st.SearchStrategy:
    return st.one_of(st.dates(low, high), st.dates(dt.date(1890, 1, 1), dt.date(2030, 12, 31)),
                     st.sampled_from([dt.date(y, m, d) for y in (1897, 1898, 2018, 2019, 2020)
                                      for m, d in ((12, 31), (1, 1), (2, 28), (2, 29) if y == 2020 else (3, 1))]))


def column_values(schema: pa.DataFrameSchema, name: str) -> st.SearchStrategy:
    col = schema.columns[name]
    kind = col.dtype.type
    codes = code_lists_of(schema).get(name)
    if kind == pl.String:
        values = st.one_of(TEXT, DIGITS, st.sampled_from(NEAR_CODES), st.sampled_from(codes) if codes else TEXT)
    elif kind == pl.Date:
        values = dates()
    elif kind == pl.Boolean:
        values = st.booleans()
    else:  # integers at and around the bounds of the contract's ranges
        bits = {pl.Int16: 15, pl.Int32: 31, pl.Int64: 63}[kind]
        bounds = [v for check in col.checks for key, v in (check.statistics or {}).items()
                  if key in ("min_value", "max_value") and isinstance(v, int)]
        near = [b + d for b in bounds for d in (-1, 0, 1)]
        values = st.one_of(st.integers(-(2**bits), 2**bits - 1), st.sampled_from(near or [0]), st.integers(-3, 150))
    return st.one_of(st.none(), values) if name not in ("source_line",) else values


def code_lists_of(schema: pa.DataFrameSchema) -> dict[str, list]:
    return {name: list(check.statistics["allowed_values"]) for name, col in schema.columns.items()
            for check in col.checks if check.name == "isin"}


@st.composite
def frames(draw, schema: pa.DataFrameSchema) -> pl.DataFrame:
    n = draw(st.integers(1, 12))
    data = {name: draw(st.lists(column_values(schema, name), min_size=n, max_size=n)) for name in schema.columns}
    for i in range(n):  # most rows of a real delivery have the reference date of their cycle
        if data["report_cycle"][i] is not None and draw(st.booleans()):
            data["reference_date"][i] = dt.date(data["report_cycle"][i] % 9999 or 1, 12, 31)
    return pl.DataFrame(data, schema={name: col.dtype.type for name, col in schema.columns.items()})


def pandera_failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> set[tuple[str | None, int | None, int]]:
    """``(column or None for a dataframe check, check number or None for not_nullable, row)`` per failure."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        assert cases.filter(pl.col("index").is_null()).height == 0, cases  # every failure is a row's
        return {(case["column"] if case["schema_context"] == "Column" else None, case["check_number"], case["index"])
                for case in cases.iter_rows(named=True)}
    return set()


def sql_failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> set[tuple[str | None, int | None, int]]:
    found = set()
    with duckdb.connect() as con:
        con.register("delivered", frame.with_row_index("_row").to_arrow())
        for column, number, condition in contract_conditions(schema):
            found |= {(column, number, row) for (row,) in
                      con.execute(f"select _row from delivered where not ({condition})").fetchall()}
        every = {row for (row,) in con.execute(f"select _row from delivered where not ({contract_sql(schema)})"
                                               ).fetchall()}
    assert every == {row for _, _, row in found}
    return found


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_every_contract_compiles_to_sql(contract):
    schema = _batch_schema(CONTRACTS[contract], AREA_KEYS)
    assert contract_sql(schema) is not None
    assert {check.name for check in schema.checks} <= set(SQL_FORMS)


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
@given(data=st.data())
def test_the_sql_conditions_fail_exactly_the_rows_pandera_reports_check_by_check(contract, data):
    schema = _batch_schema(CONTRACTS[contract], AREA_KEYS)
    assert code_lists(CONTRACTS[contract], AREA_KEYS).keys() <= code_lists_of(schema).keys()
    frame = data.draw(frames(schema))
    failures = sql_failures(schema, frame)
    across = {row for column, _, row in failures if column is None}
    event(f"checks across columns: {'none' if not across else 'every' if len(across) == frame.height else 'some'} "
          "of the rows fail")
    assert failures == pandera_failures(schema, frame)


def test_a_check_without_an_sql_form_leaves_the_verdict_to_pandera():
    """A check the compilation does not know (a custom check without a declared SQL form, a regular expression
    whose classes RE2 and polars read differently) makes the whole condition None: the loader then asks Pandera."""
    schema = _batch_schema(CONTRACTS["register"], AREA_KEYS)
    assert contract_sql(schema) is not None
    custom = schema.add_columns({"note": pa.Column(pl.String, pa.Check(lambda data: data.lazyframe.select(
        pl.col(data.key).str.len_chars() > 0), name="custom"))})
    assert contract_sql(custom) is None
    word = schema.add_columns({"note": pa.Column(pl.String, pa.Check.str_matches(r"^\w+$"))})
    assert contract_sql(word) is None
    dated = schema.add_columns({"seen": pa.Column(pl.Date, pa.Check.ge(dt.date(2000, 1, 1)))})
    assert contract_sql(dated) is None  # a value without an SQL literal (a date): Pandera decides, no crash
    digits = schema.add_columns({"note": pa.Column(pl.String, pa.Check.str_matches(r"[0-9]\d"))})
    assert "regexp_matches(\"note\", '^[0-9]\\p{Nd}')" in contract_sql(digits)
