"""Parquet and Excel exports of the published marts, one folder per report cycle.

``export(published, out)`` opens the published file read-only and writes, for every report cycle (or the
ones asked for), the folder ``<out>/<cycle>/`` with

- one Parquet file per published table, ``<table>.parquet``: the tables with a ``report_cycle`` column
  filtered to that cycle, the others (areas, indicators, classification_methods, publication) whole; codes and
  English column names as published, the German title and descriptions of the data dictionary
  (``schemas.published.data_dictionary``) in the file's metadata (``write_parquet``);
- one Excel workbook ``Sozialmonitoring_<Stadt>_<cycle>.xlsx`` for people: a first sheet "Hinweise" (the tables,
  the source, the time of publication, the Geheimhaltung, how to read it), then one sheet per table
  (``workbook_sheet``): only the German headers in the first row, names beside the keys of areas, indicators and
  methods, the unit beside each value, codes as the German labels of ``social_monitor.labels``. A number column
  holds numbers only (Power Query and pandas import it typed): a cell that is empty because of the statistische
  Geheimhaltung is an empty cell on a grey fill, its reason in a column of its own.

A cycle's folder is written as a hidden temporary folder beside it and renamed into place (the previous
export moved aside first and deleted after): a reader sees the previous complete export or the new one,
never half of one. The default ``out`` is ``exports/`` beside the published file
(``data/<city>/published/exports/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter

from schemas.published import (
    AREA_KEY_SEPARATOR,
    DOCUMENTED_TABLES,
    LEVEL_COLUMNS,
    ColumnDoc,
    TableDoc,
    ascii_words,
    data_dictionary,
    is_count,
    value_decimals,
)
from social_monitor.disclosure import CITY_ID, DisclosureRule
from social_monitor.labels import (
    ACTION_AREA_CHANGE_DE,
    CLASS_CHANGE_DE,
    DIRECTION_DE,
    FLAG_CHANGE_DE,
    SOURCE_STATUS_DE,
    SUPPRESSION_REASON_DE,
)
from social_monitor.publish import published_rule
from social_monitor.ranks import RANK_COLUMNS
from social_monitor.settings import load_settings

DESCRIPTION = ("Export the published marts per report cycle: one Parquet file per table and an Excel workbook "
               "(German headers, suppressed cells marked) into <out>/<cycle>/.")
SUPPRESSED_FILL = "#D9D9D9"
NOTES_SHEET = "Hinweise"
EXCEL_MAX_ROWS = 1_048_576

# table -> (the condition of a suppressed row, the columns that are empty because of it); area_indicators
# and area_classifications need more than their own row: see suppressed_cells()
SUPPRESSED_CELLS: dict[str, tuple[pl.Expr, tuple[str, ...]]] = {
    "action_area_indicators": (pl.col("is_suppressed"), ("value",)),
    "action_area_quartiere": (pl.col("is_suppressed"), ("value",)),
    "area_classification_indicators": (pl.col("is_suppressed"), ("value", "standardised", "contribution")),
}
# number formats beyond the defaults (Int32: 0, Int64: #,##0, Float64: #,##0.00)
NUMBER_FORMATS = {"population": "#,##0", "min_population": "#,##0", "raw_index": "0.000", "index_value": "0.000",
                  "distance_to_border": "0.000", "mean": "0.000", "sd": "0.000", "standardised": "0.000",
                  "weight": "0.###", "contribution": "0.000"}


@dataclass
class CycleExport:
    report_cycle: int
    folder: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows exported for this cycle


def has_cycle_column(table: str) -> bool:
    return "report_cycle" in DOCUMENTED_TABLES[table].to_schema().columns


def published_cycles(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [row[0] for row in con.execute(
        "select distinct report_cycle from area_indicators order by 1").fetchall()]


def workbook_name(city_name: str, cycle: int) -> str:
    """``Sozialmonitoring_<Stadt>_<cycle>.xlsx``; the city as ASCII letters and digits (umlauts spelt out)."""
    city = ascii_words(city_name.split("(")[0])
    return f"Sozialmonitoring_{city}_{cycle}.xlsx" if city else f"Sozialmonitoring_{cycle}.xlsx"


def export(published: Path, out: Path, cycles: list[int] | None = None,
           on_cycle: Callable[[CycleExport, int, int], None] | None = None) -> list[CycleExport]:
    """Export every published cycle (or ``cycles``) of ``published`` into ``out/<cycle>/``; see the module.

    ``on_cycle(result, done, total)`` is called after each cycle's folder is in place (progress)."""
    published, out = Path(published), Path(out)
    if not published.exists():
        raise FileNotFoundError(f"{published}: no published file (run the pipeline first)")
    with duckdb.connect(str(published), read_only=True) as con:
        rule = published_rule(con)
        dictionary = data_dictionary(rule)
        available = published_cycles(con)
        unknown = sorted(set(cycles or []) - set(available))
        if unknown:
            raise ValueError(f"report cycle(s) {', '.join(map(str, unknown))} not in {published.name} "
                             f"(published: {', '.join(map(str, available))})")
        publication = con.execute("select any_value(city_name), max(published_at) from publication").fetchone()
        city_name, published_at = publication[0] or "", publication[1]
        out.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(out)
        results = []
        todo = sorted(cycles or available)
        for cycle in todo:
            tmp = out / f".{cycle}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                result = CycleExport(cycle, out / str(cycle))
                frames = {}
                for table in dictionary:
                    where = f" where report_cycle = {int(cycle)}" if has_cycle_column(table) else ""
                    frames[table] = con.execute(f"select * from main.{table}{where}").pl()
                    target = tmp / f"{table}.parquet"
                    write_parquet(frames[table], target, dictionary[table])
                    result.files.append(result.folder / target.name)
                    result.rows[table] = frames[table].height
                name = workbook_name(city_name, cycle)
                write_workbook(tmp / name, frames, dictionary, cycle=cycle, city_name=city_name,
                               published=published, published_at=published_at, rule=rule)
                result.files.append(result.folder / name)
                _swap_in(tmp, result.folder)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            results.append(result)
            if on_cycle is not None:
                on_cycle(result, len(results), len(todo))
    return results


def _remove_leftovers(out: Path) -> None:
    """Temporary folders of an export that was killed (its process is gone); a running export's stay."""
    for path in out.glob(".*-*"):
        match = re.fullmatch(r"\.(\d+)\.(tmp|old)-(\d+)", path.name)
        if not match or not path.is_dir() or _is_running(int(match.group(3))):
            continue
        if match.group(2) == "old" and not (out / match.group(1)).exists():
            os.replace(path, out / match.group(1))  # killed between the two renames: the last export is back
        else:
            shutil.rmtree(path, ignore_errors=True)


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(tmp: Path, folder: Path) -> None:
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def write_parquet(frame: pl.DataFrame, path: Path, doc: TableDoc) -> None:
    """``frame`` as Parquet with its documentation in the file: the table's German title and description as the
    file's key-value metadata (``title``, ``description``, ``table``), each column's German description and header
    as the Arrow field metadata (``description``, ``header_de``), read back by pyarrow, pandas and polars readers
    that keep the Arrow schema."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    columns = {column.name: column for column in doc.columns}
    fields = [field.with_metadata({"description": columns[field.name].description_de,
                                   "header_de": columns[field.name].header_de}) for field in table.schema]
    schema = pa.schema(fields, metadata={"table": doc.name, "title": doc.title_de, "description": doc.description_de})
    pq.write_table(pa.Table.from_arrays(table.columns, schema=schema), str(path), compression="zstd")


# --- the workbook: one sheet per table, readable without lookups and importable typed ----------------------------

@dataclass(frozen=True)
class Beside:
    """A column the workbook adds after the column ``after``: ``value`` of the lookup ``lookup`` (see
    ``_lookups``) found by ``on`` (pairs: column of the sheet, column of the lookup)."""

    name: str
    after: str
    lookup: str
    value: str
    on: tuple[tuple[str, str], ...]
    header_de: str
    description_de: str


_WORKBOOK_ONLY = " (Nur in der Arbeitsmappe, nicht in der Parquet-Datei.)"


def _area_name(level: str, area: str, name: str = "area_name", header: str = "Gebietsname") -> Beside:
    return Beside(name, area, "areas", "area_name", ((level, "area_level"), (area, "area_id")), header,
                  "Name des Gebiets (aus der Tabelle areas)." + _WORKBOOK_ONLY)


def _base_area_name(area: str, name: str, header: str) -> Beside:
    return Beside(name, area, "base_areas", "area_name", ((area, "area_id"),), header,
                  "Name des Gebiets der untersten Ebene (aus der Tabelle areas); leer, wenn es auf dem aktuellen "
                  "Gebietsstand nicht mehr besteht." + _WORKBOOK_ONLY)


def _indicator_name(indicator: str, name: str = "indicator_name",
                    header: str = "Bezeichnung des Indikators") -> Beside:
    return Beside(name, indicator, "indicators", "name_de", ((indicator, "indicator_id"),), header,
                  "Deutsche Bezeichnung des Indikators (aus der Tabelle indicators)." + _WORKBOOK_ONLY)


def _unit(indicator: str) -> Beside:
    return Beside("unit", "value", "indicators", "unit", ((indicator, "indicator_id"),), "Einheit",
                  "Einheit des Werts und des Werts der Gesamtstadt (aus der Tabelle indicators), z. B. % oder "
                  "Personen; Anzahlen sind ganze Zahlen." + _WORKBOOK_ONLY)


_METHOD_NAME = Beside("method_name", "method_id", "methods", "name_de", (("method_id", "method_id"),),
                      "Bezeichnung des Verfahrens", "Deutsche Bezeichnung des Klassifikationsverfahrens (aus der "
                      "Tabelle classification_methods)." + _WORKBOOK_ONLY)
_DIMENSION_NAME = Beside("dimension_name", "dimension_id", "dimensions", "dimension_name",
                         (("method_id", "method_id"), ("dimension_id", "dimension_id")), "Bezeichnung der Dimension",
                         "Deutsche Bezeichnung der Dimension (aus der Tabelle area_classification_dimensions)."
                         + _WORKBOOK_ONLY)
_ACTION_AREA_NAME = Beside("area_name", "area_id", "action_areas", "area_name",
                           (("report_cycle", "report_cycle"), ("area_id", "area_id")), "Gebietsname",
                           "Name des eingestuften Gebiets (aus der Tabelle action_areas)." + _WORKBOOK_ONLY)
_CLASSIFIED_AREA_NAME = Beside("area_name", "area_id", "classified_areas", "area_name",
                               (("method_id", "method_id"), ("report_cycle", "report_cycle"), ("area_id", "area_id")),
                               "Gebietsname", "Name des eingestuften Gebiets (aus der Tabelle area_classifications)."
                               + _WORKBOOK_ONLY)

# table -> the names (and units) the workbook shows beside the keys, in this order
BESIDE: dict[str, tuple[Beside, ...]] = {
    "area_hierarchy": (_area_name("area_level", "area_id"),
                       _area_name("container_level", "container_id", "container_name",
                                  "Name des umfassenden Gebiets")),
    "area_indicators": (_area_name("area_level", "area_id"), _indicator_name("indicator_id"), _unit("indicator_id")),
    "area_indicators_harmonised": (_area_name("area_level", "area_id"), _indicator_name("indicator_id"),
                                   _unit("indicator_id")),
    "area_conversion": (_base_area_name("old_area_id", "old_area_name", "Name des alten Gebiets"),
                        _base_area_name("new_area_id", "new_area_name", "Name des neuen Gebiets")),
    "action_area_indicators": (_ACTION_AREA_NAME, _indicator_name("indicator_id"), _unit("indicator_id")),
    "action_area_quartiere": (_ACTION_AREA_NAME, _indicator_name("indicator_id"), _unit("indicator_id")),
    "area_classifications": (_METHOD_NAME,),
    "area_classification_dimensions": (_METHOD_NAME, _CLASSIFIED_AREA_NAME),
    "area_classification_indicators": (_METHOD_NAME, _CLASSIFIED_AREA_NAME, _DIMENSION_NAME,
                                       _indicator_name("source_indicator_id", "source_indicator_name",
                                                       "Bezeichnung des Quellindikators"),
                                       _unit("source_indicator_id")),
}
# (table, column) -> German labels of its codes (social_monitor/labels.py); the Parquet files keep the codes
CODE_LABELS: dict[tuple[str, str], dict[str, str]] = {
    ("areas", "name_status"): SOURCE_STATUS_DE,
    ("indicators", "direction"): DIRECTION_DE,
    ("area_indicators", "suppression"): SUPPRESSION_REASON_DE,
    ("area_indicators_harmonised", "suppression"): SUPPRESSION_REASON_DE,
    ("area_indicators_harmonised", "conversion_status"): SOURCE_STATUS_DE,
    ("area_conversion", "weight_status"): SOURCE_STATUS_DE,
    ("action_areas", "change_since_previous"): ACTION_AREA_CHANGE_DE,
    ("area_classifications", "change_since_previous"): FLAG_CHANGE_DE,
    ("area_classification_dimensions", "class_change"): CLASS_CHANGE_DE,
}
_LABELLED = " In der Arbeitsmappe als deutsche Bezeichnung; die Parquet-Datei enthält den Schlüssel."
# the columns of a table whose number format follows the row's indicator (a count, or a rate with its unit)
VALUE_COLUMNS = ("value", "city_value")
COUNT_FORMAT = "#,##0"


def value_format(numerator_measure: str | None, denominator_measure: str | None, unit: str | None) -> str:
    """The Excel number format of an indicator's value: a count as a whole number, anything else with the
    declared decimals (``value_decimals``) and its unit; ``#,##0.00`` for a row without an indicator."""
    if unit is None:
        return "#,##0.00"
    if is_count(numerator_measure, denominator_measure, unit):
        return COUNT_FORMAT
    decimals = value_decimals(numerator_measure, denominator_measure, unit)
    return COUNT_FORMAT + ("." + "0" * decimals if decimals else "") + '" ' + unit.replace('"', "") + '"'


POPULATION_SUPPRESSION = ColumnDoc(
    "population_suppression", "Geheimhaltung Einwohner",
    "Grund, warum die Einwohnerzahl leer ist (statistische Geheimhaltung der Einwohnerzahl des Gebiets auf der "
    "Ebene des Verfahrens); leer, wenn sie veröffentlicht ist." + _WORKBOOK_ONLY)


@dataclass
class Sheet:
    """What one table sheet shows: the frame as written (names beside keys, codes as labels), the header and
    comment of every column, the cells left empty by the statistische Geheimhaltung (grey) and a number format per
    row where it follows the row's indicator."""

    frame: pl.DataFrame
    columns: dict[str, ColumnDoc]
    hidden: dict[str, list[bool]]
    row_formats: dict[str, list[str]]


def _lookups(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The published frames the workbook looks names up in, each unique on its keys."""
    levels = frames["area_levels"]
    base = levels.filter(pl.col("is_base"))["area_level"].to_list()
    areas = frames["areas"].select("area_level", "area_id", "area_name")
    return {
        "areas": areas,
        "base_areas": areas.filter(pl.col("area_level").is_in(base)).select("area_id", "area_name"),
        "indicators": frames["indicators"].select("indicator_id", "name_de", "unit", "numerator_measure",
                                                  "denominator_measure"),
        "methods": frames["classification_methods"].select("method_id", "name_de"),
        "dimensions": frames["area_classification_dimensions"].select("method_id", "dimension_id",
                                                                      "dimension_name").unique(),
        "action_areas": frames["action_areas"].select("report_cycle", "area_id", "area_name"),
        "classified_areas": frames["area_classifications"].select("method_id", "report_cycle", "area_id",
                                                                  "area_name"),
    }


def _look_up(frame: pl.DataFrame, lookup: pl.DataFrame, on: tuple[tuple[str, str], ...],
             values: dict[str, str]) -> pl.DataFrame:
    """``frame`` with ``values`` (column of ``lookup`` -> new name) found by ``on``, row for row (left join)."""
    right = lookup.select(*(pl.col(theirs).alias(ours) for ours, theirs in on),
                          *(pl.col(theirs).alias(new) for theirs, new in values.items()))
    joined = frame.join(right, on=[ours for ours, _ in on], how="left", maintain_order="left")
    if joined.height != frame.height:  # the lookups are unique on their keys (contracts)
        raise ValueError(f"lookup by {[ours for ours, _ in on]} is not unique")
    return joined


def workbook_sheet(table: str, frames: dict[str, pl.DataFrame], doc: TableDoc, rule: DisclosureRule) -> Sheet:
    """The sheet of ``table``: its published columns, names beside their keys (``BESIDE``), codes as German labels
    (``CODE_LABELS``, levels as the level's name), every number column numbers only: a suppressed cell is empty
    (``hidden``, drawn grey) and its reason stands in a column of its own."""
    frame = frames[table]
    columns = {column.name: column for column in doc.columns}
    hidden = suppressed_cells(table, frames)
    lookups = _lookups(frames)
    order = list(frame.columns)
    for beside in BESIDE.get(table, ()):
        frame = _look_up(frame, lookups[beside.lookup], beside.on, {beside.value: beside.name})
        order.insert(order.index(beside.after) + 1, beside.name)
        columns[beside.name] = ColumnDoc(beside.name, beside.header_de, beside.description_de)
    row_formats = {}
    unit = next((beside for beside in BESIDE.get(table, ()) if beside.name == "unit"), None)
    if unit is not None:
        key = unit.on[0][0]
        kinds = _look_up(frame.select(key), lookups["indicators"], ((key, "indicator_id"),),
                         {"unit": "unit", "numerator_measure": "numerator", "denominator_measure": "denominator"})
        # a count (e.g. Personen) is a whole number; anything else a number with its unit in the cell's format
        # (the cell stays a number), both with the decimals the report shows (schemas.published.value_decimals)
        formats = [value_format(*kind) for kind in kinds.select("numerator", "denominator", "unit").iter_rows()]
        row_formats = {name: formats for name in VALUE_COLUMNS if name in order}
    labels = {column: {code: rule.describe_de(text) for code, text in mapping.items()}
              for (labelled_table, column), mapping in CODE_LABELS.items() if labelled_table == table}
    if table == "area_classifications":
        frame, reason = _population_suppression(frame, frames)
        order.insert(order.index("population") + 1, reason)
        columns[reason] = POPULATION_SUPPRESSION
        labels[reason] = {code: rule.describe_de(text) for code, text in SUPPRESSION_REASON_DE.items()}
    frame, renamed = _city_named(frame, frames["area_levels"])
    for column in renamed:
        columns[column] = ColumnDoc(column, columns[column].header_de, columns[column].description_de + _CITY_NAMED)
    if table != "area_levels":
        level_names = dict(frames["area_levels"].select("area_level", "name_de").iter_rows())
        labels |= {column: level_names for column in LEVEL_COLUMNS if column in frame.columns}
    else:
        level_names = dict(frame.select("area_level", "name_de").iter_rows())
        labels |= {column: level_names for column in ("parent_level", "grouped_level")}
        # the level ids stay beside their names, but for the whole city's (as everywhere in the workbook)
        labels["area_level"] = {CITY_ID: level_names[CITY_ID]} if CITY_ID in level_names else {}
    for column, mapping in labels.items():
        frame = frame.with_columns(pl.col(column).replace_strict(mapping, default=pl.col(column)))
        if column in frames[table].columns:
            columns[column] = ColumnDoc(column, columns[column].header_de, columns[column].description_de + _LABELLED)
    return Sheet(frame.select(order), {name: columns[name] for name in order}, hidden, row_formats)


_CITY_NAMED = (" In der Arbeitsmappe steht für die Gesamtstadt ihre Bezeichnung; die Parquet-Datei enthält die "
               "Kennung city.")
# (level column, id column) pairs naming an area; the whole city's id in them is shown by the city's name
AREA_ID_COLUMNS = (("area_level", "area_id"), ("container_level", "container_id"))


def _city_named(frame: pl.DataFrame, area_levels: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """``frame`` with the whole city's id ``city`` (its level id, area id and ``city:city`` key) shown by the city
    level's German name (area_levels.name_de, from the geography's ``city.name_de``, e.g. Gesamtstadt); the
    Parquet files and the published tables keep the id. Level columns are labelled later, with every level.
    Returns the frame and the columns changed."""
    names = dict(area_levels.select("area_level", "name_de").iter_rows())
    if CITY_ID not in names:
        return frame, []
    city = pl.lit(names[CITY_ID])
    changes = [pl.when(pl.col(level) == CITY_ID).then(city).otherwise(pl.col(area)).alias(area)
               for level, area in AREA_ID_COLUMNS if level in frame.columns and area in frame.columns]
    if "area_key" in frame.columns:
        key = CITY_ID + AREA_KEY_SEPARATOR + CITY_ID
        changes.append(pl.when(pl.col("area_key") == key).then(city).otherwise(pl.col("area_key")).alias("area_key"))
    return (frame.with_columns(changes) if changes else frame), [change.meta.output_name() for change in changes]


def _population_suppression(frame: pl.DataFrame, frames: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, str]:
    """area_classifications with the reason its population is empty: the suppression of the area's residents at
    the method's level (as in ``suppressed_cells``)."""
    residents = (frames["area_indicators"].filter(pl.col("indicator_id") == "residents")
                 .join(frames["classification_methods"].select("method_id", "area_level"), on="area_level")
                 .select("method_id", "report_cycle", "area_id", "suppression"))
    name = POPULATION_SUPPRESSION.name
    frame = _look_up(frame, residents, (("method_id", "method_id"), ("report_cycle", "report_cycle"),
                                        ("area_id", "area_id")), {"suppression": name})
    return frame.with_columns(pl.when(pl.col("population").is_null()).then(pl.col(name))), name


def write_workbook(path: Path, frames: dict[str, pl.DataFrame], dictionary: dict[str, TableDoc], *, cycle: int,
                   city_name: str, published: Path, published_at: dt.datetime | None,
                   rule: DisclosureRule | None = None) -> None:
    """The Excel workbook of one cycle: "Hinweise", then one sheet per table in ``frames`` (``workbook_sheet``)."""
    for table, frame in frames.items():
        if frame.height + 1 > EXCEL_MAX_ROWS:
            raise ValueError(f"{table}: {frame.height} rows do not fit on an Excel sheet; use the Parquet file")
    rule = rule or DisclosureRule()
    sheets = {table: workbook_sheet(table, frames, dictionary[table], rule) for table in frames}
    workbook = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    workbook.set_properties({"title": f"Sozialmonitoring {city_name} {cycle}".replace("  ", " "),
                             "subject": "Bericht zur sozialen Lage: veröffentlichte Tabellen",
                             "comments": f"Erzeugt aus {published.name}"})
    styles = _Styles(workbook)
    _notes_sheet(workbook, styles, frames, dictionary, cycle=cycle, city_name=city_name, published=published,
                 published_at=published_at, rule=rule)
    for table, sheet in sheets.items():
        _table_sheet(workbook, styles, dictionary[table].sheet_de, sheet)
    workbook.close()


class _Styles:
    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self.header = workbook.add_format({"bold": True, "bg_color": "#DCE6F1", "text_wrap": True, "valign": "top",
                                           "border": 1})
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.bold = workbook.add_format({"bold": True})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.suppressed = workbook.add_format({"bg_color": SUPPRESSED_FILL})
        self.datetime = workbook.add_format({"num_format": "dd.mm.yyyy hh:mm"})
        self._numbers: dict[str, object] = {}
        self._workbook = workbook

    def number(self, num_format: str):
        if num_format not in self._numbers:
            self._numbers[num_format] = self._workbook.add_format({"num_format": num_format})
        return self._numbers[num_format]


def _notes_sheet(workbook, styles: _Styles, frames, dictionary, *, cycle, city_name, published, published_at,
                 rule: DisclosureRule) -> None:
    sheet = workbook.add_worksheet(NOTES_SHEET)
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 1, 100, styles.wrap)
    sheet.set_column(2, 2, 10)
    sheet.write(0, 0, f"Sozialmonitoring {city_name}: Berichtsjahr {cycle}", styles.title)
    stamp = published_at.strftime("%d.%m.%Y %H:%M") if published_at else "unbekannt"
    rows = [
        ("Quelle", f"Die veröffentlichten Tabellen des Sozialmonitorings ({published.name}), nur zusammengefasste "
                   "Zahlen, keine Einzeldaten. Tabellen mit Berichtsjahr enthalten nur das Berichtsjahr "
                   f"{cycle}; Gebiete, Indikatoren, Klassifikationsverfahren und Veröffentlichung sind vollständig."),
        ("Veröffentlicht am", stamp),
        ("Geheimhaltung", "Eine leere Zelle auf grauem Grund ist leer, weil der Wert der statistischen "
                          "Geheimhaltung unterliegt: " + rule.describe_de(
                              "{small_counts}, {small_populations} und Werte, aus denen sich ein gesperrter Wert "
                              "errechnen ließe (Sekundärsperrung; {protection}).") + " Der Grund steht in einer "
                          "eigenen Spalte: „Geheimhaltung“ (Indikatoren je Gebiet), „Geheimhaltung Einwohner“ "
                          "(Gebietsklassifikation) oder „Gesperrt“ (wahr/falsch). Alle anderen leeren Zellen sind "
                          "nicht belegt."),
        ("Lesen und Weiterverarbeiten", "Die erste Zeile jedes Tabellenblatts enthält nur die Spaltenüberschriften "
                                        "(ein Kommentar an jeder erklärt die Spalte und nennt zuletzt ihren "
                                        "Namen in der Parquet-Datei), darunter eine Zeile je Datensatz. Neben "
                                        "jeder Gebiets-, Dimensions- und Indikatornummer steht ihr Name, die "
                                        "Gesamtstadt steht mit ihrer Bezeichnung statt der Kennung city, "
                                        "Schlüssel stehen als deutsche Bezeichnungen (z. B. „bleibt Aktionsraum“), "
                                        "Werte mit ihrer Einheit (Spalte „Einheit“; Anzahlen als ganze Zahlen). "
                                        "Jede Zahlenspalte enthält nur Zahlen, so dass Power Query, pandas und "
                                        "andere Werkzeuge sie als Zahlen einlesen. Schlüssel wie die "
                                        "Gebietsnummer sind Text mit führenden Nullen (01011101): beim Einlesen "
                                        "als Text festlegen, sonst macht die Typerkennung eine Zahl daraus "
                                        "(Power Query: Datentyp Text; pandas: dtype={\"Gebietsnummer\": str})."),
        ("Maschinenlesbar", "Dieselben Tabellen liegen als Parquet-Dateien (Spaltennamen englisch, Schlüssel statt "
                            "Bezeichnungen, die Beschreibung jeder Spalte in den Metadaten der Datei) neben dieser "
                            "Arbeitsmappe."),
    ]
    for row, (label, text) in enumerate(rows, start=2):
        sheet.write(row, 0, label, styles.bold)
        sheet.write(row, 1, text)
    row = len(rows) + 3
    sheet.write_row(row, 0, ["Tabellenblatt", "Inhalt", "Zeilen"], styles.header)
    for table, frame in frames.items():
        row += 1
        doc = dictionary[table]
        sheet.write(row, 0, doc.sheet_de)
        sheet.write(row, 1, f"{doc.title_de} (Tabelle {table}): {doc.description_de}")
        sheet.write_number(row, 2, frame.height)


def suppressed_cells(table: str, frames: dict[str, pl.DataFrame]) -> dict[str, list[bool]]:
    """column -> per row: is the cell empty because of the statistische Geheimhaltung? Only columns with one."""
    frame = frames[table]
    if table in ("area_indicators", "area_indicators_harmonised"):
        # the denominator of a count (an indicator without denominator) is empty anyway: not marked
        has_denominator = frames["indicators"].filter(pl.col("denominator_measure").is_not_null())["indicator_id"]
        hidden = pl.col("suppression").is_not_null()
        # area_indicators: a suppressed cell has no rank or decile either (social_monitor/ranks.py)
        ranks = {column: hidden for column in RANK_COLUMNS if column in frame.columns}
        masks = frame.select(numerator=hidden, value=hidden,
                             denominator=hidden & pl.col("indicator_id").is_in(has_denominator.implode()), **ranks)
    elif table == "area_classifications":
        # the population is emptied when the residents of the area are suppressed at the method's level
        residents = (frames["area_indicators"].filter(pl.col("indicator_id") == "residents")
                     .join(frames["classification_methods"].select("method_id", "area_level"), on="area_level")
                     .select("method_id", "area_id", pl.col("suppression").is_not_null().alias("hidden")))
        masks = (frame.join(residents, on=["method_id", "area_id"], how="left", maintain_order="left")
                 .select(population=pl.col("hidden").fill_null(False) & pl.col("population").is_null()))
    elif table in SUPPRESSED_CELLS:
        condition, columns = SUPPRESSED_CELLS[table]
        masks = frame.select(**{column: condition & pl.col(column).is_null() for column in columns})
    else:
        return {}
    return {column: masks[column].fill_null(False).to_list() for column in masks.columns}


def header_comment(column: ColumnDoc) -> str:
    """The comment on a header cell: the German explanation, then the column's technical name (the name in the
    Parquet file and the published DuckDB file), unless the column is the workbook's own."""
    if column.description_de.endswith(_WORKBOOK_ONLY):
        return column.description_de
    return f"{column.description_de} (Spalte {column.name} in Parquet und DuckDB)"


def _table_sheet(workbook, styles: _Styles, name: str, sheet_data: Sheet) -> None:
    """One table sheet: the header row (German headers, a comment on each), then one row per record; numbers as
    numbers in their format, a suppressed cell empty on grey."""
    sheet = workbook.add_worksheet(name)
    frame = sheet_data.frame
    for col_index, name in enumerate(frame.columns):
        column = sheet_data.columns[name]
        sheet.write_string(0, col_index, column.header_de, styles.header)
        sheet.write_comment(0, col_index, header_comment(column), {"x_scale": 2, "y_scale": 1.5})
        dtype = frame.schema[name]
        cell_format = None
        if dtype == pl.Int32:
            cell_format = styles.number(NUMBER_FORMATS.get(name, "0"))
        elif dtype == pl.Int64:
            cell_format = styles.number(NUMBER_FORMATS.get(name, COUNT_FORMAT))
        elif dtype == pl.Float64:
            cell_format = styles.number(NUMBER_FORMATS.get(name, "#,##0.00"))
        elif isinstance(dtype, pl.Datetime):
            cell_format = styles.datetime
        width = 60 if name in ("definition_yaml", "description", "reasons", "notes", "description_de") else \
            max(10, min(40, len(column.header_de) + 2))
        sheet.set_column(col_index, col_index, width, cell_format)
        hidden = sheet_data.hidden.get(name)
        row_formats = sheet_data.row_formats.get(name)
        for row_index, value in enumerate(frame.get_column(name).to_list(), start=1):
            if value is None:
                if hidden is not None and hidden[row_index - 1]:
                    sheet.write_blank(row_index, col_index, None, styles.suppressed)
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row_index, col_index, value)
            elif isinstance(value, (int, float)):
                number_format = styles.number(row_formats[row_index - 1]) if row_formats else cell_format
                sheet.write_number(row_index, col_index, value, number_format)
            elif isinstance(value, dt.datetime):
                sheet.write_datetime(row_index, col_index, value, cell_format)
            else:
                sheet.write_string(row_index, col_index, str(value))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(frame.height, 1), max(len(frame.columns) - 1, 0))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    published = load_settings().published_path
    parser.add_argument("--published", type=Path, default=published,
                        help=f"the published file, opened read-only (default: {published})")
    parser.add_argument("--out", type=Path, default=None,
                        help="export folder; one sub-folder per report cycle (default: exports/ beside the "
                             "published file)")
    parser.add_argument("--cycles", type=int, nargs="+", default=None,
                        help="report cycles to export (default: every published cycle)")


def run(args: argparse.Namespace) -> int:
    """Export; errors (no published file, an unknown cycle, …) are reported by ``social_monitor.cli.main``."""
    from social_monitor.cli import progress

    out = args.out or Path(args.published).parent / "exports"

    def on_cycle(result: CycleExport, done: int, total: int) -> None:
        progress(args, f"cycle {result.report_cycle} ({done} of {total}): {len(result.files)} files, "
                       f"{sum(result.rows.values()):,} rows")

    results = export(args.published, out, args.cycles, on_cycle=on_cycle)
    for result in results:
        print(f"{result.report_cycle}: {result.folder} ({len(result.files)} files, "
              f"{sum(result.rows.values())} rows)")
    return 0
