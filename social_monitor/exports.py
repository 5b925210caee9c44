"""Parquet and Excel exports of the published marts, one folder per report cycle.

``export(published, out)`` opens the published file read-only and writes, for every report cycle (or the
ones asked for), the folder ``<out>/<cycle>/`` with

- one Parquet file per published table, ``<table>.parquet``: the tables with a ``report_cycle`` column
  filtered to that cycle, the others (areas, indicators, classification_methods, publication) whole;
- one Excel workbook ``Sozialmonitoring_<Stadt>_<cycle>.xlsx``: a first sheet "Hinweise" (the tables, the
  source, the time of publication, the marking), then one sheet per table with the German headers of the
  data dictionary (``schemas.published.data_dictionary``). Numbers stay numbers; a cell that is empty because
  of the statistische Geheimhaltung reads "gesperrt" on a grey fill.

A cycle's folder is written as a hidden temporary folder beside it and renamed into place (the previous
export moved aside first and deleted after): a reader sees the previous complete export or the new one,
never half of one. The default ``out`` is ``exports/`` beside the published file
(``data/published/exports/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import xlsxwriter

from schemas.published import DOCUMENTED_TABLES, TableDoc, data_dictionary
from social_monitor.disclosure import DisclosureRule
from social_monitor.publish import published_rule
from social_monitor.ranks import RANK_COLUMNS
from social_monitor.settings import load_settings

DESCRIPTION = ("Export the published marts per report cycle: one Parquet file per table and an Excel workbook "
               "(German headers, suppressed cells marked) into <out>/<cycle>/.")
SUPPRESSED_MARK = "gesperrt"
SUPPRESSED_LEGEND = "gesperrt (statistische Geheimhaltung)"
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
# codes shown in German in the workbook (the Parquet files keep the codes); texts of the published file's rule
SUPPRESSION_DE = {"small_count": "{small_count}", "small_population": "{small_population}",
                  "secondary": "Sekundärsperrung"}
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
    city = city_name.split("(")[0]
    for umlaut, spelt in {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}.items():
        city = city.replace(umlaut, spelt)
    city = unicodedata.normalize("NFKD", city).encode("ascii", "ignore").decode()
    city = re.sub(r"[^A-Za-z0-9]+", "_", city).strip("_")
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
                    frames[table].write_parquet(target)
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


def write_workbook(path: Path, frames: dict[str, pl.DataFrame], dictionary: dict[str, TableDoc], *, cycle: int,
                   city_name: str, published: Path, published_at: dt.datetime | None,
                   rule: DisclosureRule | None = None) -> None:
    """The Excel workbook of one cycle: "Hinweise", then one sheet per table in ``frames``."""
    for table, frame in frames.items():
        if frame.height + 1 > EXCEL_MAX_ROWS:
            raise ValueError(f"{table}: {frame.height} rows do not fit on an Excel sheet; use the Parquet file")
    workbook = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    workbook.set_properties({"title": f"Sozialmonitoring {city_name} {cycle}".replace("  ", " "),
                             "subject": "Bericht zur sozialen Lage: veröffentlichte Tabellen",
                             "comments": f"Erzeugt aus {published.name}"})
    styles = _Styles(workbook)
    rule = rule or DisclosureRule()
    _notes_sheet(workbook, styles, frames, dictionary, cycle=cycle, city_name=city_name, published=published,
                 published_at=published_at, rule=rule)
    for table, frame in frames.items():
        _table_sheet(workbook, styles, table, frame, dictionary[table], suppressed_cells(table, frames), rule)
    workbook.close()


class _Styles:
    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self.header = workbook.add_format({"bold": True, "bg_color": "#DCE6F1", "text_wrap": True, "valign": "top",
                                           "border": 1})
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.bold = workbook.add_format({"bold": True})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.suppressed = workbook.add_format({"bg_color": SUPPRESSED_FILL, "font_color": "#595959", "italic": True,
                                               "align": "right"})
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
        ("Markierung", f"Eine graue Zelle mit dem Text „{SUPPRESSED_MARK}“ ist leer, weil der Wert der statistischen "
                       "Geheimhaltung unterliegt: " + rule.describe_de(
                           "{small_counts}, {small_populations} und Werte, aus denen sich ein gesperrter Wert "
                           "errechnen ließe (Sekundärsperrung; {protection}).") + " Der Grund steht in der Spalte "
                       "„Geheimhaltung“. Alle anderen leeren Zellen sind nicht belegt."),
        ("Maschinenlesbar", "Dieselben Tabellen liegen als Parquet-Dateien (Spaltennamen englisch, Codes statt "
                            "Texten) neben dieser Arbeitsmappe."),
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


def _table_sheet(workbook, styles: _Styles, table: str, frame: pl.DataFrame, doc: TableDoc,
                 marked: dict[str, list[bool]], rule: DisclosureRule) -> None:
    sheet = workbook.add_worksheet(doc.sheet_de)
    headers = {column.name: column for column in doc.columns}
    if table in ("area_indicators", "area_indicators_harmonised"):
        frame = frame.with_columns(pl.col("suppression").replace_strict(
            {code: rule.describe_de(text) for code, text in SUPPRESSION_DE.items()}, default=None))
    for col_index, name in enumerate(frame.columns):
        column = headers[name]
        sheet.write_string(0, col_index, column.header_de, styles.header)
        sheet.write_comment(0, col_index, f"{name}: {column.description_de}", {"x_scale": 2, "y_scale": 1.5})
        dtype = frame.schema[name]
        cell_format = None
        if dtype == pl.Int32:
            cell_format = styles.number(NUMBER_FORMATS.get(name, "0"))
        elif dtype == pl.Int64:
            cell_format = styles.number(NUMBER_FORMATS.get(name, "#,##0"))
        elif dtype == pl.Float64:
            cell_format = styles.number(NUMBER_FORMATS.get(name, "#,##0.00"))
        elif isinstance(dtype, pl.Datetime):
            cell_format = styles.datetime
        width = 60 if name in ("definition_yaml", "description", "reasons", "notes", "description_de") else \
            max(10, min(40, len(column.header_de) + 2))
        sheet.set_column(col_index, col_index, width, cell_format)
        hidden = marked.get(name)
        for row_index, value in enumerate(frame.get_column(name).to_list(), start=1):
            if value is None:
                if hidden is not None and hidden[row_index - 1]:
                    sheet.write_string(row_index, col_index, SUPPRESSED_MARK, styles.suppressed)
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row_index, col_index, value)
            elif isinstance(value, (int, float)):
                sheet.write_number(row_index, col_index, value, cell_format)
            elif isinstance(value, dt.datetime):
                sheet.write_datetime(row_index, col_index, value, cell_format)
            else:
                sheet.write_string(row_index, col_index, str(value))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(frame.height, 1), max(len(frame.columns) - 1, 0))
    if marked:
        sheet.write_string(0, len(frame.columns) + 1, SUPPRESSED_MARK, styles.suppressed)
        sheet.write_string(0, len(frame.columns) + 2, SUPPRESSED_LEGEND)


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
