"""Contracts of the raw deliveries a statistics office receives.

Each model describes one source after parsing, the same for every city: English column names, types,
canonical codes, ranges and key uniqueness. How a city delivers it (file name, format, encoding, separator,
date format, its header for every column and its codes for the canonical ones) is the city's delivery layout,
``config/<city>/deliveries.yml`` (``social_monitor.layouts``). The loader (``social_monitor.ingest``) reads a
file with DuckDB, renames and recodes it by the layout, parses it into these columns and validates it with
the polars backend of Pandera, so an extract is never copied into pandas.

Every model carries the lineage columns ``source_file`` and ``source_line`` (the line in a delivered text
file, header = line 1, or the 1-based row number in a Parquet file) so that every failure can be named by
file, row and column, and ``report_cycle`` / ``reference_date`` of the delivery.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Collection

import pandera.polars as pa
import polars as pl

SEX_CODES = ["m", "w", "d", "o"]  # männlich, weiblich, divers, ohne Angabe
NATIONALITY_GROUPS = ["deutsch", "EU", "Drittstaat", "staatenlos/ungeklärt"]
# Country of birth as the register's Geburtsstaat grouped: born in Germany, abroad, or not recorded (older
# entries). Three codes suffice for every city's migration background (born abroad or not) and stay
# publishable; a city maps its country keys to them in its layout.
BIRTH_COUNTRY_GROUPS = ["Inland", "Ausland", "unbekannt"]
RESIDENCE_TYPES = ["H", "N"]  # Hauptwohnung, Nebenwohnung
SGB12_KINDS = ["HLU", "GSI"]  # Hilfe zum Lebensunterhalt (3. Kap.), Grundsicherung im Alter/bei EM (4. Kap.)
LEGAL_BASES = ["SGB II", "SGB III"]  # Rechtskreis of a registered unemployed person
UNEMPLOYED_AGES = (15, 67)  # registered unemployed: from 15 to the statutory retirement age
MAX_AGE = 120

# The SQL form (DuckDB) of each of the contracts' checks across columns, by the check's name: the loader checks a
# whole delivery with one SQL count of failing rows and runs Pandera only if a row fails (social_monitor.ingest).
# Declared with ``sql_form`` on the check itself, next to its polars form; tests/test_contract_sql.py checks that
# both forms agree on generated rows. A NULL (like polars' null) passes, as Pandera's ``ignore_na`` makes it.
SQL_FORMS: dict[str, str] = {}


def sql_form(sql: str):
    """Declare the SQL form of the dataframe check it decorates (put it below ``@pa.dataframe_check``)."""
    def declare(check):
        if SQL_FORMS.setdefault(check.__name__, sql) != sql:
            raise ValueError(f"two SQL forms for the check {check.__name__}")
        return check
    return declare


def column(*, personal: bool = False, pseudonymise: bool = False, codes: list[str] | None = None, **checks) -> object:
    """A contract column, delivered under the header the city's layout gives it.

    ``personal`` marks columns whose values must never appear in messages, logs or metadata;
    ``pseudonymise`` marks identifiers that are stored only as keyed-hash pseudonyms; ``codes`` is the
    column's canonical code list: a city's layout maps its own codes to these.
    """
    if codes is not None:
        checks["isin"] = codes
    return pa.Field(metadata={"delivered": True, "personal": personal or pseudonymise, "pseudonymise": pseudonymise,
                              "coded": codes is not None}, **checks)


def area_key() -> object:
    """The area key of a delivery: a key of the city's base level (the level deliveries carry) valid in the
    delivery's report cycle. The keys are the city's geography (``social_monitor.geography``), not fixed here:
    they are injected at validation time (``with_area_keys``). Area keys are published, never personal."""
    return pa.Field(metadata={"delivered": True, "personal": False, "pseudonymise": False, "coded": False,
                              "area_key": True})


def _lineage(**checks) -> object:
    return pa.Field(metadata={"delivered": False, "personal": False}, **checks)


class RawDelivery(pa.DataFrameModel):
    """Columns every parsed delivery carries besides its own."""

    source_file: str = _lineage()
    source_line: pl.Int64 = _lineage(ge=1)
    report_cycle: pl.Int32 = _lineage(in_range={"min_value": 1990, "max_value": 2100})
    reference_date: dt.date = _lineage()

    class Config:
        strict = True
        coerce = False

    @pa.dataframe_check(error="reference_date must be 31 December of the report cycle")
    @sql_form("year(reference_date) = report_cycle and month(reference_date) = 12 and day(reference_date) = 31")
    def reference_date_is_end_of_cycle(cls, data: pa.PolarsData) -> pl.LazyFrame:
        ref = pl.col("reference_date")
        return data.lazyframe.select(
            (ref.dt.year() == pl.col("report_cycle")) & (ref.dt.month() == 12) & (ref.dt.day() == 31)
        )


class _BornBeforeReference(RawDelivery):
    """Sources with a date of birth: born on or before the reference date and at most 120 years old."""

    @pa.dataframe_check(error="birth_date must lie on or before the reference date and at most 120 years before")
    @sql_form(f"birth_date <= reference_date and birth_date > reference_date - to_years({MAX_AGE + 1})")
    def birth_date_plausible(cls, data: pa.PolarsData) -> pl.LazyFrame:
        birth, ref = pl.col("birth_date"), pl.col("reference_date")
        return data.lazyframe.select(
            (birth <= ref) & (birth > ref.dt.offset_by(f"-{MAX_AGE + 1}y"))
        )


class RegisterPersons(_BornBeforeReference):
    """Bevölkerungsbestand: one row per registered person at the reference date (Melderegister)."""

    person_key: str = column(pseudonymise=True, str_length={"min_value": 1, "max_value": 64})
    birth_date: dt.date = column(personal=True)
    sex: str = column(codes=SEX_CODES)
    nationality_group: str = column(codes=NATIONALITY_GROUPS)
    residence_type: str = column(codes=RESIDENCE_TYPES)
    move_in_date: dt.date = column(personal=True, nullable=True)
    unterbezirk_id: str = area_key()
    street_key: str = column(personal=True, str_matches=r"^\d{5}$")
    house_number: str = column(personal=True, str_length={"min_value": 1, "max_value": 8})
    # a second nationality (the same groups as the first; empty: none), the country of birth grouped, and the
    # household the register's Haushaltegenerierung assigns (pseudonymised like the person key)
    second_nationality_group: str = column(codes=NATIONALITY_GROUPS, nullable=True)
    birth_country: str = column(codes=BIRTH_COUNTRY_GROUPS)
    household_key: str = column(pseudonymise=True, str_length={"min_value": 1, "max_value": 64})

    class Config:
        unique = ["person_key"]

    @pa.dataframe_check(error="move_in_date must lie between birth_date and the reference date")
    @sql_form("move_in_date is null or (move_in_date >= birth_date and move_in_date <= reference_date)")
    def move_in_after_birth(cls, data: pa.PolarsData) -> pl.LazyFrame:
        move_in = pl.col("move_in_date")
        return data.lazyframe.select(
            move_in.is_null() | ((move_in >= pl.col("birth_date")) & (move_in <= pl.col("reference_date")))
        )


class Sgb2Recipients(RawDelivery):
    """SGB II (Grundsicherung für Arbeitsuchende), Bundesagentur für Arbeit: one row per
    Leistungsberechtigte(r) at the reference date, with the Bedarfsgemeinschaft."""

    person_key: str = column(pseudonymise=True, str_length={"min_value": 1, "max_value": 64})
    household_key: str = column(pseudonymise=True, str_length={"min_value": 1, "max_value": 64})
    age: pl.Int16 = column(in_range={"min_value": 0, "max_value": 67})
    unterbezirk_id: str = area_key()

    class Config:
        unique = ["person_key"]


class Sgb12Recipients(_BornBeforeReference):
    """SGB XII (Sozialhilfe), Sozialamt: Hilfe zum Lebensunterhalt (HLU) and Grundsicherung im Alter
    und bei Erwerbsminderung (GSI), one row per recipient at the reference date."""

    person_key: str = column(pseudonymise=True, str_length={"min_value": 1, "max_value": 64})
    benefit_kind: str = column(codes=SGB12_KINDS)
    birth_date: dt.date = column(personal=True)
    unterbezirk_id: str = area_key()

    class Config:
        unique = ["person_key"]


class AsylblgRecipients(_BornBeforeReference):
    """Asylbewerberleistungsgesetz (AsylbLG), Sozialamt: one row per recipient at the reference date."""

    person_key: str = column(pseudonymise=True, str_length={"min_value": 1, "max_value": 64})
    birth_date: dt.date = column(personal=True)
    sex: str = column(codes=SEX_CODES)
    unterbezirk_id: str = area_key()

    class Config:
        unique = ["person_key"]


class UnemployedPersons(RawDelivery):
    """Arbeitslose, Bundesagentur für Arbeit: one row per registered unemployed person at the reference date,
    with the legal basis (Rechtskreis SGB II or SGB III) and the start of the current unemployment. The person
    key is pseudonymised like the other sources', so a person in SGB II and here is one person. Like the
    Bundesagentur's SGB II extract it carries the age at the reference date, not the date of birth: the same
    sender's convention, and less personal data for the same counts (age bands)."""

    person_key: str = column(pseudonymise=True, str_length={"min_value": 1, "max_value": 64})
    legal_basis: str = column(codes=LEGAL_BASES)
    unemployed_since: dt.date = column(personal=True)
    age: pl.Int16 = column(in_range={"min_value": UNEMPLOYED_AGES[0], "max_value": UNEMPLOYED_AGES[1]})
    sex: str = column(codes=SEX_CODES)
    unterbezirk_id: str = area_key()

    class Config:
        unique = ["person_key"]

    @pa.dataframe_check(error="unemployed_since must lie on or before the reference date and at most age - 14 "
                              "years before it")
    @sql_form("unemployed_since <= reference_date and unemployed_since >= reference_date "
              "- to_years(case when cast(age as integer) - 14 < 0 then 0 else cast(age as integer) - 14 end)")
    def unemployed_since_plausible(cls, data: pa.PolarsData) -> pl.LazyFrame:
        since, ref = pl.col("unemployed_since"), pl.col("reference_date")
        earliest = ref.dt.offset_by(pl.format("-{}y", (pl.col("age").cast(pl.Int32) - 14).clip(lower_bound=0)))
        return data.lazyframe.select((since <= ref) & (since >= earliest))


# checks across columns (by the start of their name or error) -> the column a problem they find is
# reported under (by its header in the city's file)
CHECK_COLUMNS = {
    "birth_date must": "birth_date",
    "move_in_date must": "move_in_date",
    "unemployed_since must": "unemployed_since",
    "multiple_fields_uniqueness": "person_key",
    "field_uniqueness": "person_key",
}


def check_column(check: str) -> str | None:
    """The column a check across columns is reported under, or None."""
    return next((column for start, column in CHECK_COLUMNS.items() if check.startswith(start)), None)


def delivered_columns(model: type[RawDelivery]) -> list[str]:
    """The columns a delivered file must have (under the headers of the city's layout), in contract order."""
    schema = model.to_schema()
    return [name for name, col in schema.columns.items() if col.metadata and col.metadata.get("delivered")]


def coded_columns(model: type[RawDelivery]) -> dict[str, list[str]]:
    """``{column: its canonical codes}`` for the columns a city's layout recodes (``column(codes=...)``)."""
    schema = model.to_schema()
    return {name: list(codes) for name, codes in code_lists(model).items()
            if schema.columns[name].metadata.get("coded")}


def personal_columns(model: type[RawDelivery]) -> set[str]:
    """Columns whose values must never be shown."""
    schema = model.to_schema()
    return {name for name, col in schema.columns.items() if col.metadata and col.metadata.get("personal")}


def pseudonymised_columns(model_or_source: object) -> list[str]:
    """Identifier columns stored only as keyed-hash pseudonyms (of a contract, or of a source's contract)."""
    model = getattr(model_or_source, "contract", model_or_source)
    schema = model.to_schema()
    return [name for name, col in schema.columns.items() if col.metadata and col.metadata.get("pseudonymise")]


def area_key_columns(model: type[RawDelivery]) -> list[str]:
    """The columns holding an area key of the base level (checked against the geography at validation time)."""
    schema = model.to_schema()
    return [name for name, col in schema.columns.items() if col.metadata and col.metadata.get("area_key")]


def with_area_keys(schema: pa.DataFrameSchema, area_keys: Collection[str]) -> pa.DataFrameSchema:
    """A copy of ``schema`` whose area key columns accept exactly ``area_keys`` (the base keys of the city's
    geography valid in the delivery's report cycle: ``Geography.base_keys(cycle)``)."""
    schema = copy.deepcopy(schema)  # to_schema() is cached: never change it in place
    for col in schema.columns.values():
        if col.metadata and col.metadata.get("area_key"):
            col.checks = [*col.checks, pa.Check.isin(sorted(area_keys))]
    return schema


def code_lists(model: type[RawDelivery], area_keys: Collection[str] | None = None) -> dict[str, list[str]]:
    """``{column: its allowed codes}`` for the columns with an ``isin`` check, and the area key columns with
    ``area_keys`` when given: published code lists, so a value that is one of them may be shown in a message
    (it identifies nobody)."""
    schema = model.to_schema()
    codes = {name: [str(code) for code in check.statistics["allowed_values"]]
             for name, col in schema.columns.items() for check in col.checks if check.name == "isin"}
    if area_keys is not None:
        codes.update({name: sorted(area_keys) for name in area_key_columns(model)})
    return codes


def value_ranges(model: type[RawDelivery]) -> dict[str, tuple[object, object]]:
    """``{column: (min, max)}`` for the columns with an ``in_range`` check."""
    schema = model.to_schema()
    return {name: (check.statistics["min_value"], check.statistics["max_value"])
            for name, col in schema.columns.items() for check in col.checks if check.name == "in_range"}


def check_texts(model: type[RawDelivery], area_keys: Collection[str] | None = None) -> set[str]:
    """Every check text the contract itself defines (Pandera reports a failure under one of them), with the
    check of the area keys when given."""
    schema = model.to_schema() if area_keys is None else with_area_keys(model.to_schema(), area_keys)
    texts = {str(check.error) for check in schema.checks}
    texts |= {str(check.error) for col in schema.columns.values() for check in col.checks}
    return texts
