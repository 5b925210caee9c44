"""Read any indicator table (CSV or Parquet, long or wide) into the engine's form, and write results.

Long form: one row per area, cycle and indicator (columns for the indicator id and its value). Wide form:
one row per area and cycle, one column per indicator. The column names are mapped by :class:`Columns`.
Errors name the file, the column and, for bad values, the data row and the line of the CSV file (the line
is the row + 1 unless a quoted field before it holds a line break). A number that is not finite (``NaN``,
``inf``, ``-Infinity`` … in either decimal style, or a NaN/infinite float in Parquet) is refused like any
bad number, or read as missing with ``non_finite_as_missing`` (the method's ``missing_values: exclude_area``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from social_monitor.classification.methods import MethodError

DECIMAL_COMMA = r"^[+-]?(\d+|\d{1,3}(\.\d{3})+)(,\d+)?$"
NON_FINITE = r"(?i)^[+-]?(nan|inf|infinity)$"  # what polars (and Excel, R, pandas) write for NaN and infinities
TRUE = {"true", "1", "yes", "ja", "wahr", "t", "y", "j"}
FALSE = {"false", "0", "no", "nein", "falsch", "f", "n"}


class TableError(ValueError):
    """An input table that cannot be read as an indicator table."""


@dataclass(frozen=True)
class Columns:
    """Which column of the file holds what; ``None`` for an optional column means: use it if present."""

    area: str = "area_id"
    cycle: str = "report_cycle"
    population: str | None = None
    valid: str | None = None
    name: str | None = None
    indicator: str = "indicator_id"  # long form
    value: str = "value"  # long form
    city_value: str | None = None  # long form
    city_area: str | None = None  # the area id whose rows hold the city values (both forms)


DEFAULT_OPTIONAL = {"population": "population", "valid": "is_valid", "name": "area_name", "city_value": "city_value"}


def read_table(path: Path, *, separator: str = ",", encoding: str = "utf-8-sig") -> pl.DataFrame:
    """A CSV or Parquet file, every CSV column read as text (types are checked column by column later).

    CSV text is decoded strictly (default UTF-8, with or without the BOM Excel writes); a byte that is not
    valid in ``encoding`` is an error naming the line, never a silent replacement.
    """
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".txt", ".tsv"):
        raise TableError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .parquet")
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        data = path.read_bytes()
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise TableError(f"{path}, line {line}: not valid {encoding} text; give the file's encoding with "
                             "--encoding (e.g. cp1252 for Excel's 'CSV (Trennzeichen-getrennt)')") from error
        except LookupError as error:
            raise TableError(f"unknown encoding {encoding!r}") from error
        return pl.read_csv(io.BytesIO(text.encode("utf-8")), separator="\t" if suffix == ".tsv" else separator,
                           infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise TableError(f"{path}: cannot read the file: {error}") from error


def to_indicator_table(frame: pl.DataFrame, *, source: str, columns: Columns, layout: str = "auto",
                       indicators: Sequence[str] | None = None, decimal_comma: bool = False,
                       non_finite_as_missing: bool = False) -> pl.DataFrame:
    """The engine's long table from ``frame`` (read from ``source``, named in errors).

    A value, city value or population that is not a finite number is refused naming the row (and the line,
    unless ``source`` is a Parquet file), or read as missing with ``non_finite_as_missing``.
    """
    available = frame.columns
    reader = _Numbers(source, decimal_comma, non_finite_as_missing)

    def need(column: str, option: str) -> str:
        if column not in available:
            hint = ""
            if len(available) == 1 and any(mark in available[0] for mark in (",", ";", "\t")):
                hint = " (one column only: is the separator right? see --separator)"
            raise TableError(f"{source}: no column {column!r} (set it with {option}); the file has: "
                             f"{', '.join(available)}{hint}")
        return column

    def optional(column: str | None, key: str, option: str) -> str | None:
        if column is not None:
            return need(column, option)
        return DEFAULT_OPTIONAL[key] if DEFAULT_OPTIONAL[key] in available else None

    if layout == "auto":
        layout = "long" if columns.indicator in available and columns.value in available else "wide"
    area, cycle = need(columns.area, "--area-column"), need(columns.cycle, "--cycle-column")
    population = optional(columns.population, "population", "--population-column")
    valid = optional(columns.valid, "valid", "--valid-column")
    name = optional(columns.name, "name", "--name-column")
    keys = [pl.col(area).cast(pl.Utf8).str.strip_chars().alias("area_id"),
            _integer(frame, cycle, source).alias("report_cycle")]
    extra = []
    if population:
        extra.append(reader.column(frame, population).alias("population"))
    if valid:
        extra.append(_boolean(frame, valid, source).alias("is_valid"))
    if name:
        extra.append(pl.col(name).cast(pl.Utf8).alias("area_name"))

    if layout == "long":
        indicator = need(columns.indicator, "--indicator-column")
        value = need(columns.value, "--value-column")
        city_value = optional(columns.city_value, "city_value", "--city-value-column")
        table = frame.select(
            *keys, *extra, pl.col(indicator).cast(pl.Utf8).str.strip_chars().alias("indicator_id"),
            reader.column(frame, value).alias("value"),
            *([reader.column(frame, city_value).alias("city_value")] if city_value else []),
        )
        if indicators:
            table = table.filter(pl.col("indicator_id").is_in(list(indicators)))
    elif layout == "wide":
        wanted = list(indicators) if indicators else [c for c in available if c not in
                                                      {area, cycle, population, valid, name}]
        for column in wanted:
            need(column, "--indicators")
        table = frame.select(*keys, *extra, *[reader.column(frame, c).alias(c) for c in wanted])
        table = table.unpivot(index=["area_id", "report_cycle", *[e.meta.output_name() for e in extra]],
                              on=wanted, variable_name="indicator_id", value_name="value")
    else:
        raise TableError(f"layout must be auto, long or wide, not {layout!r}")

    if columns.city_area is not None:
        city = table.filter(pl.col("area_id") == columns.city_area)
        if city.is_empty():
            raise TableError(f"{source}: no rows for the city area {columns.city_area!r} (--city-area)")
        table = table.filter(pl.col("area_id") != columns.city_area).drop("city_value", strict=False).join(
            city.select("report_cycle", "indicator_id", pl.col("value").alias("city_value")),
            on=["report_cycle", "indicator_id"], how="left")
    return table


def _row(mask: pl.Series, source: str) -> str:
    """Where the first row with ``mask`` is: its data row, and its line in a CSV file (the header is line 1);
    a Parquet file has rows, not lines."""
    index = int(mask.arg_true()[0])
    return f"row {index + 1}" if source.lower().endswith(".parquet") else f"row {index + 1} (line {index + 2})"


@dataclass(frozen=True)
class _Numbers:
    """Reads number columns of one file: ``source`` (named in errors), its decimal style, and what a
    non-finite number is (an error, or missing)."""

    source: str
    decimal_comma: bool
    non_finite_as_missing: bool

    def column(self, frame: pl.DataFrame, column: str) -> pl.Expr:
        series = frame[column]
        if series.dtype.is_numeric():
            parsed = series.cast(pl.Float64)
        else:
            text = series.cast(pl.Utf8).str.strip_chars()
            written_non_finite = text.str.contains(NON_FINITE).fill_null(False)
            malformed = pl.Series([False] * len(text))
            if self.decimal_comma:
                # 1.234,5 or 1234,5; a point anywhere else ("1.5") is not read as 15 but refused
                malformed = (text.is_not_null() & (text != "") & ~text.str.contains(DECIMAL_COMMA)
                             & ~written_non_finite)
                text = text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
            parsed = text.cast(pl.Float64, strict=False)
            bad = (text.is_not_null() & (text != "") & parsed.is_null()) | malformed
            if bad.any():
                value = str(series[int(bad.arg_true()[0])])
                looks_german = bool(re.fullmatch(r"[+-]?[\d.]*\d,\d+", value.strip()))
                hint = " (decimal comma? use --decimal-comma)" if looks_german else ""
                if self.decimal_comma:
                    hint = " written 1.234,5"
                raise TableError(f"{self.source}, {_row(bad, self.source)}, column {column}: "
                                 f"{series[int(bad.arg_true()[0])]!r} is not a number{hint}")
        # NaN, inf, -inf, and numbers too large for a float ("1e999" is read as inf)
        non_finite = (~parsed.is_finite()).fill_null(False)
        if non_finite.any() and not self.non_finite_as_missing:
            raise TableError(f"{self.source}, {_row(non_finite, self.source)}, column {column}: "
                             f"{series[int(non_finite.arg_true()[0])]!r} is not a finite number; correct it, or "
                             "set missing_values: exclude_area in the method to read it as missing")
        return pl.lit(parsed.set(non_finite, None) if non_finite.any() else parsed).alias(column)


def _integer(frame: pl.DataFrame, column: str, source: str) -> pl.Expr:
    series = frame[column]
    parsed = series.cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
    bad = parsed.is_null() | ~parsed.is_finite() | (parsed != parsed.round(0))
    if bad.any():
        raise TableError(f"{source}, {_row(bad, source)}, column {column}: {series[int(bad.arg_true()[0])]!r} "
                         "is not a report year")
    return pl.lit(parsed.cast(pl.Int32)).alias(column)


def _boolean(frame: pl.DataFrame, column: str, source: str) -> pl.Expr:
    series = frame[column]
    if series.dtype == pl.Boolean:
        return pl.col(column)
    text = series.cast(pl.Utf8).str.strip_chars().str.to_lowercase()
    parsed = text.replace_strict({**dict.fromkeys(TRUE, True), **dict.fromkeys(FALSE, False)}, default=None,
                                 return_dtype=pl.Boolean)
    bad = text.is_not_null() & (text != "") & parsed.is_null()
    if bad.any():
        raise TableError(f"{source}, {_row(bad, source)}, column {column}: {series[int(bad.arg_true()[0])]!r} "
                         "is neither true nor false")
    return pl.lit(parsed).alias(column)


def write_table(frame: pl.DataFrame, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(path)
    elif suffix == ".csv":
        frame.write_csv(path)
    else:
        raise MethodError(f"{path}: unknown output type {suffix!r}; use .csv or .parquet")
