"""The report per report cycle (Bericht zur sozialen Lage) as one self-contained HTML file.

Reads only the published file (read-only), the area geometry and the city folder's declarations: the level
names from the geography (geography/levels.yml), the levels mapped from city.yml (``report.map_levels``) and
the level of the Steckbriefe, the action-area level (``action_areas.area_level``), each listing the areas of
the base level inside it. Each Steckbrief shows the city's main indicators (city.yml ``report.main_indicators``,
in that order) against the city value, then every other indicator by topic field (``schemas.published.TOPICS``),
each with its rank and decile among the areas of its level (published ``area_indicators.value_rank``). A map
whose areas the geometry does not hold in a cycle (a cycle on another version of the geography) is left out, and
the report says so. Every map is inline SVG, the charts are matplotlib SVG, the styles are inline: the file
makes no request and can be mailed or archived as it is.
"""

from __future__ import annotations

import functools
import html
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jinja2
import matplotlib
import polars as pl
import yaml

from schemas.published import TOPICS, is_count, value_decimals
from social_monitor.classification.action_areas import METHOD_ID as ACTION_AREA_METHOD
from social_monitor.classification.engine import change_name_de, difference_unit  # declared once
from social_monitor.disclosure import DisclosureRule
from social_monitor.geography import Geography, Level, load_geography
from social_monitor.labels import CHANGE_DE, SUPPRESSION_DE  # filled in with the rule: DisclosureRule.describe_de
from social_monitor.publish import published_rule
from social_monitor.report.files import report_file_name
from social_monitor.report.maps import (
    MISSING_FILL,
    SUPPRESSED_FILL,
    SVG_DEFS,
    Classes,
    MapCanvas,
    Symbols,
    german_number,
)
from social_monitor.report.wording import (
    DIRECTION_DE,
    EQUAL_DE,
    compare_as_shown,
    hyphenate_headers,
    residents_wording,
)
from social_monitor.sample_city.geometry import AreaGeometry, default_geometry, load_geometry
from social_monitor.settings import CITY_FILE, CityConfig, Publisher

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TEMPLATES = Path(__file__).with_name("templates")
KEY_INDICATORS = ["transfer_rate", "transfer_rate_age_0_14", "sgb2_rate", "transfer_rate_age_65_plus"]
QUARTIER_INDICATORS = ["residents", "transfer_rate", "transfer_rate_age_0_14", "sgb2_rate"]
# the indicator whose decile among all areas of the base level each Steckbrief's Quartiere show (Dortmund
# publishes the SGB II rate in deciles across all Unterbezirke)
QUARTIER_DECILE_INDICATOR = "sgb2_rate"
REPORT_KEYS = ("map_levels", "main_indicators")
ACTION_FILL = {"new": "#b2182b", "kept": "#d6604d", "first_cycle": "#d6604d", "released": "#92c5de",
               "not_action_area": "#f7f7f7"}
ACTION_LEGEND = [("#d6604d", "Aktionsraum"), ("#b2182b", "neuer Aktionsraum"),
                 ("#92c5de", "entlassen (im vorigen Berichtsjahr Aktionsraum)"), ("#f7f7f7", "kein Aktionsraum")]


def dative_plural(plural: str) -> str:
    """"Sozialräume" -> "Sozialräumen", "statistische Bezirke" -> "statistischen Bezirken" (von 39 ...)."""
    return " ".join(word if word.endswith(("n", "s")) else word + "n" for word in plural.split())


@dataclass(frozen=True)
class ReportLevels:
    """The levels the report uses, from the city folder: the maps (city.yml ``report.map_levels``), the
    Steckbriefe (the action-area level) and the base level listed inside each Steckbrief."""

    maps: tuple[Level, ...]
    profile: Level
    base: Level
    top: Level | None = None  # the level right below the city, drawn as outlines on every map

    @classmethod
    def of(cls, geography: Geography, config: CityConfig) -> ReportLevels:
        report = config.report or {}
        where = config.config_dir / CITY_FILE
        if not isinstance(report, dict) or set(report) - set(REPORT_KEYS):
            raise ValueError(f"{where}: report: only {' and '.join(REPORT_KEYS)} are known (lists of level ids and "
                             "indicator ids)")
        profile = geography.level(str(config.action_areas["area_level"]))
        map_levels = report.get("map_levels") or [profile.id]
        if not isinstance(map_levels, list) or len(set(map_levels)) != len(map_levels):
            raise ValueError(f"{where}: report.map_levels must be a list of distinct level ids")
        maps = []
        for level_id in map_levels:
            try:
                maps.append(geography.level(str(level_id)))
            except ValueError as error:
                raise ValueError(f"{where}: report.map_levels: {error}") from None
        top = next((level for level in geography.levels if level.parent == "city"), None)
        return cls(maps=tuple(maps), profile=profile, base=geography.base, top=top)


def main_indicators(config: CityConfig, catalogue: list[str], catalogue_source: str) -> tuple[str, ...]:
    """The city's main indicators (city.yml ``report.main_indicators``: distinct indicator ids, in the order the
    Steckbrief shows them), each checked against ``catalogue`` (the indicator ids of ``catalogue_source``); none
    when the key is absent. An unknown id is an error naming city.yml."""
    where = config.config_dir / CITY_FILE
    report = config.report if isinstance(config.report, dict) else {}
    ids = report.get("main_indicators")
    if ids is None:
        return ()
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"{where}: report.main_indicators must be a list of distinct indicator ids, got {ids!r}")
    unknown = [i for i in ids if i not in catalogue]
    if unknown:
        raise ValueError(f"{where}: report.main_indicators: {', '.join(unknown)} not in the indicator catalogue "
                         f"({catalogue_source}); known: {', '.join(catalogue)}")
    return tuple(ids)


@dataclass
class Published:
    """The published tables the report needs, read once."""

    city_name: str
    cycles: list[int]
    indicators: pl.DataFrame
    areas: pl.DataFrame
    values: pl.DataFrame
    action_areas: pl.DataFrame
    quartiere: pl.DataFrame
    methods: pl.DataFrame
    classifications: pl.DataFrame
    rule: DisclosureRule
    level_plurals: dict[str, str]  # level -> its German plural, in the levels' order (city first)
    published_at: str = ""  # the date the file was published (Stand der Veröffentlichung), 31.12.2025

    @classmethod
    def read(cls, path: Path, profile_level: str) -> Published:
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no published file; run the pipeline (`make run`) first")
        with duckdb.connect(str(path), read_only=True) as con:
            def table(sql: str, parameters: list | None = None) -> pl.DataFrame:
                return con.execute(sql, parameters or []).pl()

            publication = table("select city_name, report_cycles, strftime(max(published_at) over (), '%d.%m.%Y') "
                                "as published_at from publication limit 1")
            values = table("select * from area_indicators")
            classifications = table(
                "select c.* from area_classifications c join classification_methods m using (method_id) "
                "where m.area_level = ? and m.method_id <> ?", [profile_level, ACTION_AREA_METHOD])
            return cls(
                city_name=publication["city_name"][0] if publication.height else "",
                cycles=sorted(values["report_cycle"].unique().to_list()),
                indicators=table("select * from indicators order by sort_order"),
                # each area with the area of the Steckbriefe' level it lies in
                areas=table("select a.*, h.container_id as profile_id from areas a left join area_hierarchy h "
                            "on h.area_level = a.area_level and h.area_id = a.area_id and h.container_level = ?",
                            [profile_level]),
                values=values,
                action_areas=table("select * from action_areas"),
                quartiere=table("select * from action_area_quartiere"),
                methods=table("select * from classification_methods"),
                classifications=classifications,
                rule=published_rule(con),
                level_plurals=dict(con.execute("select area_level, plural_de from area_levels order by level_order")
                                   .fetchall()),
                published_at=publication["published_at"][0] if publication.height else "",
            )


def _signed(value: float, decimals: int = 1) -> str:
    text = german_number(abs(value), decimals)
    return ("+" if value > 0 else "\u2212") + text


def _svg_chart(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)


def city_time_series(published: Published, indicator_ids: list[str], up_to: int, title: str) -> str:
    """Line chart of the city values across the cycles up to ``up_to``."""
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "social-monitor", "font.size": 9})
    names = dict(published.indicators.select("indicator_id", "name_de").iter_rows())
    city = published.values.filter((pl.col("area_level") == "city") & (pl.col("report_cycle") <= up_to)
                                   & pl.col("indicator_id").is_in(indicator_ids)).sort("report_cycle")
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for indicator_id in indicator_ids:
        series = city.filter(pl.col("indicator_id") == indicator_id)
        if series.height:
            axis.plot(series["report_cycle"], series["value"], marker="o", label=names.get(indicator_id, indicator_id))
    axis.set_xticks(sorted(city["report_cycle"].unique().to_list()))
    axis.set_ylabel("%")
    axis.set_title(title, loc="left")
    axis.grid(alpha=0.3)
    axis.spines[["top", "right"]].set_visible(False)
    axis.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: german_number(v, 0)))
    return _svg_chart(figure)


TREND_COLOURS = ["#1b6ca8", "#c6532f", "#3a8f3a", "#7b4fa0", "#9c7a1e", "#444444"]


def trend_chart(series: list[tuple[str, list[float | None], list[float | None]]], cycles: list[int],
                label: str) -> str:
    """A small line chart as inline SVG: per indicator (name, the area's values, the city's values per cycle)
    the area as a solid line with points and the city as a dashed line of the same colour; a suppressed or
    missing value leaves a gap. Hand-drawn rather than matplotlib: a report has a chart per Steckbrief, and
    matplotlib's SVG is about ten times the size."""
    width, height, left, right, top, bottom = 460, 170, 40, 20, 10, 22
    values = [v for _, own, city in series for v in (*own, *city) if v is not None]
    if not values or not cycles:
        return ""
    low, high = min(0.0, min(values)), max(values)
    high = high if high > low else low + 1
    step = 10 ** math.floor(math.log10((high - low) / 2)) if high > low else 1
    step *= next(m for m in (1, 2, 5, 10) if (high - low) / (step * m) <= 5)
    top_tick = math.ceil(high / step) * step
    low_tick = math.floor(low / step) * step
    span_x = max(len(cycles) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / span_x if len(cycles) > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low_tick) / (top_tick - low_tick))

    out = [f'<svg class="trend" role="img" aria-label="{html.escape(label)}" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="10">']
    tick = low_tick
    while tick <= top_tick + step / 2:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 4}" y="{y(tick) + 3:.1f}" text-anchor="end">{german_number(tick, 0)}</text>')
        tick += step
    for i, cycle in enumerate(cycles):
        out.append(f'<text x="{x(i):.1f}" y="{height - 6}" text-anchor="middle">{cycle}</text>')
    for number, (name, own, city) in enumerate(series):
        colour = TREND_COLOURS[number % len(TREND_COLOURS)]
        for values_, dash, kind in ((own, "", "gebiet"), (city, ' stroke-dasharray="4 3"', "stadt")):
            runs, run = [], []
            for i, v in enumerate(values_):
                if v is None:
                    runs, run = runs + [run] if run else runs, []
                else:
                    run.append((x(i), y(v)))
            runs += [run] if run else []
            for part in runs:
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in part)
                out.append(f'<polyline class="{kind}" data-indicator="{html.escape(name)}" points="{points}" '
                           f'fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>')
            if kind == "gebiet":
                out.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}"/>' for part in runs
                           for a, b in part)
    out.append("</svg>")
    return "".join(out)


class ReportBuilder:
    """Builds the context of each cycle's report and renders it with the jinja2 templates."""

    def __init__(self, published: Published, geometry: AreaGeometry, levels: ReportLevels,
                 main: tuple[str, ...], config: CityConfig):
        self.p = published
        self.geometry = geometry
        self.levels = levels
        self.main = main
        self.config = config
        self.publisher: Publisher = config.publisher_or_error()
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                      autoescape=jinja2.select_autoescape(["html", "j2"]),
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["num"] = german_number
        self.catalogue = {row["indicator_id"]: row for row in published.indicators.iter_rows(named=True)}
        self.rates = [i for i, row in self.catalogue.items() if row["denominator_measure"]]
        self.names = {(r["area_level"], r["area_id"]): r["area_name"] for r in published.areas.iter_rows(named=True)}
        city = geometry.shapes.get(("city", "city"))
        # a canvas per level the geometry holds (the maps' levels and the Steckbriefe's)
        drawn = {level.id for level in levels.maps} | {levels.profile.id}
        top = geometry.level(levels.top.id) if levels.top is not None else None
        self.canvases = {level: MapCanvas(geometry.level(level), width=560, outline=city, outlines=top)
                         for level in sorted(drawn) if geometry.level(level)}
        profile = geometry.level(levels.profile.id)
        self.small_canvas = MapCanvas(profile, width=300) if profile else None
        self.base_areas = published.areas.filter(pl.col("area_level") == levels.base.id)
        # (cycle, level) -> the areas with values in that cycle
        self.cycle_areas: dict[tuple[int, str], set[str]] = {}
        for r in published.values.select("report_cycle", "area_level", "area_id").unique().iter_rows():
            self.cycle_areas.setdefault((r[0], r[1]), set()).add(r[2])
        # (cycle, level, area, indicator) -> row
        self.cells = {(r["report_cycle"], r["area_level"], r["area_id"], r["indicator_id"]): r
                      for r in published.values.iter_rows(named=True)}
        # (cycle, indicator) -> the levels with a value of it (an aggregate delivered at a higher level)
        self.levels_with_values: dict[tuple[int, str], set[str]] = {}
        for r in published.values.filter(pl.col("value").is_not_null()).select(
                "report_cycle", "indicator_id", "area_level").unique().iter_rows():
            self.levels_with_values.setdefault((r[0], r[1]), set()).add(r[2])
        # (level, indicator) -> every published value of every cycle: the fixed classes and symbol scales
        self.all_values: dict[tuple[str, str], list[float]] = {}
        for r in published.values.filter(pl.col("value").is_not_null() & pl.col("suppression").is_null()).select(
                "area_level", "indicator_id", "value").iter_rows():
            self.all_values.setdefault((r[0], r[1]), []).append(r[2])

    def is_count(self, indicator_id: str) -> bool:
        """A count (persons, cases, dwellings), mapped as circles (schemas.published.is_count)."""
        meta = self.catalogue[indicator_id]
        return is_count(meta["numerator_measure"], meta["denominator_measure"], meta["unit"])

    def decimals(self, indicator_id: str) -> int:
        """As the views and the workbook show it (schemas.published.value_decimals)."""
        meta = self.catalogue[indicator_id]
        return value_decimals(meta["numerator_measure"], meta["denominator_measure"], meta["unit"])

    @functools.cache  # noqa: B019 (one builder per report run)
    def classes(self, level: str, indicator_id: str) -> Classes:
        """The classes of an indicator's maps on ``level``, the same in every report cycle."""
        return Classes.fixed(self.all_values.get((level, indicator_id), []), self.catalogue[indicator_id]["direction"],
                             decimals=self.decimals(indicator_id))

    @functools.cache  # noqa: B019
    def symbols(self, level: str, indicator_id: str) -> Symbols:
        """The circle scale of a count's maps on ``level``, the same in every report cycle."""
        return Symbols(max(self.all_values.get((level, indicator_id), [0.0]), default=0.0))

    # --- helpers -----------------------------------------------------------------------------------------
    def cell(self, cycle: int, level: str, area_id: str, indicator_id: str) -> dict:
        """A value ready for the template: text, suppression, comparison with the city."""
        row = self.cells.get((cycle, level, area_id, indicator_id))
        meta = self.catalogue[indicator_id]
        decimals = self.decimals(indicator_id)
        if row is None:
            return {"text": "–", "suppressed": False, "title": "kein Wert", "value": None, "worse": None,
                    "rank": "", "decile": None}
        if row["suppression"]:
            return {"text": "gesperrt", "suppressed": True,
                    "title": self.p.rule.describe_de(SUPPRESSION_DE[row["suppression"]]),
                    "value": None, "worse": None, "rank": "", "decile": None}
        value, city = row["value"], row["city_value"]
        worse, difference = None, ""
        if value is not None and city is not None and meta["denominator_measure"]:
            # compared as printed: a value that prints as the city value is "wie die Stadt", never worse
            relation, shown = compare_as_shown(value, city, decimals, meta["direction"])
            worse = relation == "worse" if meta["direction"] != "neutral" else None
            difference = EQUAL_DE if relation == "equal" else \
                f"{_signed(shown, decimals)} {difference_unit(meta['unit'])}"
        rank = row.get("value_rank")  # published with the file (social_monitor/ranks.py); none for the city
        return {"text": german_number(value, decimals) if value is not None else "–", "suppressed": False,
                "title": "" if value is not None else "kein Wert", "value": value,
                "worse": worse, "city": german_number(city, decimals) if city is not None else "–",
                "difference": difference,
                "rank": f"{rank} von {row['ranked_areas']}" if rank is not None else "",
                "decile": row.get("value_decile")}

    def missing_note(self, cycle: int, level: str, area_id: str, indicator_id: str) -> str:
        """Why an area has no value of an indicator, in German (a main indicator must say so, not fail)."""
        row = self.cells.get((cycle, level, area_id, indicator_id))
        if row is not None and (row["suppression"] or row["value"] is not None):
            return ""
        elsewhere = self.levels_with_values.get((cycle, indicator_id), set()) - {level}
        if row is None and elsewhere:
            plurals = [plural for lv, plural in self.p.level_plurals.items() if lv in elsewhere]
            return (f"Für {cycle} nicht für die {self.p.level_plurals.get(level, level)} geliefert; Werte nur "
                    f"für: {', '.join(plurals)}.")
        return f"Für {cycle} kein Wert." if row is not None else f"Für {cycle} nicht geliefert."

    def indicator_row(self, cycle: int, level: str, area_id: str, indicator_id: str) -> dict:
        """A row of a Steckbrief's indicator tables: the area's value, the city value, rank and decile."""
        meta = self.catalogue[indicator_id]
        return {"id": indicator_id, "name": meta["name_de"], "unit": meta["unit"],
                "unit_note": self.unit_note(indicator_id),
                "target_group": meta.get("target_group") or "",
                "note": self.missing_note(cycle, level, area_id, indicator_id),
                **self.cell(cycle, level, area_id, indicator_id),
                "city": self.cell(cycle, "city", "city", indicator_id)["text"]}

    def unit_note(self, indicator_id: str) -> str:
        """A rate's unit to print beside its name (%, je 100 Einwohnerinnen und Einwohner), unless the name says it
        ("Hilfen zur Erziehung je 1.000 unter 21-Jährige"); empty for a count."""
        meta = self.catalogue[indicator_id]
        return meta["unit"] if meta["denominator_measure"] and meta["unit"] not in meta["name_de"] else ""

    def area_ids(self, cycle: int, level: str) -> list[str]:
        """The areas of ``level`` with values in ``cycle`` (those of the geography's version of that cycle)."""
        return sorted(self.cycle_areas.get((cycle, level), set()))

    def can_draw(self, cycle: int, level: str) -> bool:
        """True when the geometry holds every area of ``level`` that has values in ``cycle``."""
        ids = self.cycle_areas.get((cycle, level), set())
        return level in self.canvases and bool(ids) and ids <= set(self.canvases[level].paths)

    def choropleth(self, cycle: int, level: str, indicator_id: str) -> dict:
        """A map of one indicator on one level: classes fixed across the cycles (a rate, a share, an index, a
        change), or a circle per area whose area is proportional to the value (a count)."""
        meta = self.catalogue[indicator_id]
        cells = {a: self.cell(cycle, level, a, indicator_id) for a in self.canvas_ids(level)}
        values = {a: c["value"] for a, c in cells.items() if c["value"] is not None}
        count = self.is_count(indicator_id)
        classes, symbols = self.classes(level, indicator_id), self.symbols(level, indicator_id)

        def fill(area_id: str) -> str:
            c = cells[area_id]
            if c["suppressed"]:
                return SUPPRESSED_FILL
            if count:
                return "#f4f4f4" if c["value"] is not None else MISSING_FILL
            return classes.colour(c["value"]) if c["value"] is not None else MISSING_FILL

        def title(area_id: str) -> str:
            c = cells[area_id]
            return f"{self.names.get((level, area_id), area_id)} ({area_id}): " + (
                c["title"] if c["suppressed"] or c["value"] is None else f"{c['text']} {meta['unit']}")

        plural = self.levels.profile.plural_de if level == self.levels.profile.id else next(
            lv.plural_de for lv in self.levels.maps if lv.id == level)
        label = f"{meta['name_de']}, {plural} {cycle}"
        city = self.cell(cycle, "city", "city", indicator_id)
        svg = self.canvases[level].svg(
            fill, title, label, area_label=lambda a: a,
            symbols={a: symbols.radius(v) for a, v in values.items()} if count else None,
            symbol_title=title, symbol_legend=symbols.legend() if count else None)
        return {"svg": svg, "legend": [] if count else classes.legend(list(values.values())), "level": level,
                "symbols": symbols.legend() if count else [], "kind": "symbols" if count else "classes",
                "level_de": plural, "label": label, "city": f"{city['text']} {meta['unit']}",
                "unit": meta["unit"], "has_suppressed": any(c["suppressed"] for c in cells.values())}

    def canvas_ids(self, level: str) -> list[str]:
        return list(self.canvases[level].paths)

    def action_map(self, cycle: int) -> str | None:
        profile = self.levels.profile.id
        if not self.can_draw(cycle, profile):
            return None
        rows = {r["area_id"]: r for r in self.p.action_areas.filter(pl.col("report_cycle") == cycle)
                .iter_rows(named=True)}

        def state(area_id: str) -> str:
            row = rows.get(area_id)
            if row is None:
                return "not_action_area"
            return row["change_since_previous"] if row["is_action_area"] or row["change_since_previous"] == \
                "released" else "not_action_area"

        return self.canvases[profile].svg(
            lambda a: ACTION_FILL[state(a)],
            lambda a: f"{self.names.get((profile, a), a)}: {CHANGE_DE[state(a)]}",
            f"Aktionsräume {cycle}", area_label=lambda a: a)

    # --- sections ----------------------------------------------------------------------------------------
    def profile(self, cycle: int, area_id: str, cycles: list[int]) -> dict:
        level, base = self.levels.profile.id, self.levels.base.id
        main = [self.indicator_row(cycle, level, area_id, i) for i in self.main]
        topics = []
        for topic in TOPICS:
            rows = [self.indicator_row(cycle, level, area_id, i) for i, meta in self.catalogue.items()
                    if meta["topic_field"] == topic and i not in self.main]
            if rows:
                topics.append({"name": topic, "indicators": rows})
        quartiere = []
        inside = self.base_areas.filter(pl.col("profile_id") == area_id)
        if base == level:  # the Steckbriefe are of the base level: the area is its own Quartier
            inside = self.base_areas.filter(pl.col("area_id") == area_id)
        for row in inside.sort("area_id").iter_rows(named=True):
            if row["area_id"] not in self.cycle_areas.get((cycle, base), set()):
                continue  # a base area of another version of the geography
            decile = self.cell(cycle, base, row["area_id"], QUARTIER_DECILE_INDICATOR)
            decile["text"] = (f"Dezil {decile['decile']} von 10" if decile["decile"] is not None else
                              decile["text"] if decile["suppressed"] else "–")
            quartiere.append({"id": row["area_id"], "name": row["area_name"],
                              "cells": [self.cell(cycle, base, row["area_id"], i) for i in QUARTIER_INDICATORS]
                              + [decile]})
        trend = [{"name": self.catalogue[i]["name_de"],
                  "cells": [(self.cell(c, level, area_id, i), self.cell(c, "city", "city", i))
                            for c in cycles]} for i in KEY_INDICATORS]
        for number, row in enumerate(trend):
            row["colour"] = TREND_COLOURS[number % len(TREND_COLOURS)]
        action = self.p.action_areas.filter((pl.col("report_cycle") == cycle) & (pl.col("area_id") == area_id))
        action_row = action.row(0, named=True) if action.height else None
        classifications = []
        methods = dict(self.p.methods.select("method_id", "name_de").iter_rows())
        for row in self.p.classifications.filter((pl.col("report_cycle") == cycle)
                                                 & (pl.col("area_id") == area_id)).iter_rows(named=True):
            classifications.append({"method": methods.get(row["method_id"], row["method_id"]),
                                    "combined_class": row["combined_class"] or "–", "flagged": row["is_flagged"],
                                    "change": CHANGE_DE.get(row["change_since_previous"] or "", "–"),
                                    "reasons": row["reasons"] or row["exclusion_reason"] or ""})
        quartiere_worse = self.p.quartiere.filter((pl.col("report_cycle") == cycle)
                                                  & (pl.col("area_id") == area_id) & pl.col("is_worse_than_city"))
        name = self.names.get((level, area_id), area_id)
        locator = None
        if self.small_canvas is not None and self.can_draw(cycle, level):
            locator = self.small_canvas.svg(lambda a: "#d6604d" if a == area_id else "#f0f0f0",
                                            lambda a: self.names.get((level, a), a), f"Lage von {name}",
                                            css_class="locator", highlight=area_id)
        return {
            "id": area_id, "name": name, "map": locator,
            "main": main, "topics": topics,
            "quartier_headers": [self.catalogue[i]["name_de"] for i in QUARTIER_INDICATORS]
            + [f"{self.catalogue[QUARTIER_DECILE_INDICATOR]['name_de']}: Dezil unter allen "
               f"{dative_plural(self.levels.base.plural_de)}"],
            "quartiere": quartiere, "trend": trend, "cycles": cycles,
            "trend_chart": trend_chart([(row["name"], [own["value"] for own, _ in row["cells"]],
                                         [city["value"] for _, city in row["cells"]]) for row in trend],
                                       cycles, f"Entwicklung {name}"),
            "is_action_area": bool(action_row and action_row["is_action_area"]),
            "change": CHANGE_DE.get(action_row["change_since_previous"], "") if action_row else "",
            "reasons": (action_row["reasons"] if action_row else None) or "",
            "worse_count": action_row["indicators_worse_count"] if action_row else None,
            "min_worse": action_row["min_indicators_worse"] if action_row else None,
            "quartiere_worse": quartiere_worse["base_area_name"].to_list(),
            "classifications": classifications,
        }

    def render(self, cycle: int) -> str:
        cycles = [c for c in self.p.cycles if c <= cycle]
        previous = cycles[-2] if len(cycles) > 1 else None
        overview = []
        for i in ["residents", *KEY_INDICATORS, "share_age_0_17", "share_age_65_plus", "share_non_german"]:
            if i not in self.catalogue:
                continue
            now = self.cell(cycle, "city", "city", i)
            before = self.cell(previous, "city", "city", i) if previous else None
            overview.append({"name": self.catalogue[i]["name_de"], "unit": self.catalogue[i]["unit"], "now": now,
                             "before": before})
        action = self.p.action_areas.filter(pl.col("report_cycle") == cycle).sort("area_id")
        action_list = [{"id": r["area_id"], "name": r["area_name"] or r["area_id"],
                        "change": CHANGE_DE[r["change_since_previous"]], "reasons": r["reasons"] or ""}
                       for r in action.iter_rows(named=True)
                       if r["is_action_area"] or r["change_since_previous"] == "released"]
        drawn = [level for level in self.levels.maps if self.can_draw(cycle, level.id)]
        missing = [level for level in self.levels.maps if level not in drawn]
        if not self.can_draw(cycle, self.levels.profile.id) and self.levels.profile not in missing:
            missing.append(self.levels.profile)
        maps = [{"id": i, "name": self.catalogue[i]["name_de"], "description": self.catalogue[i]["description_de"],
                 "maps": [self.choropleth(cycle, level.id, i) for level in drawn]} for i in self.catalogue]
        profile = self.levels.profile.id
        profile_ids = self.area_ids(cycle, profile)
        table_rows = [{"id": a, "name": self.names.get((profile, a), a),
                       "cells": [self.cell(cycle, profile, a, i) for i in self.rates]} for a in profile_ids]
        template = self.env.get_template("bericht.html.j2")
        text = template.render(
            publisher=self.publisher, published_at=self.p.published_at, methods=self.methods(),
            top_level_plural=self.levels.top.plural_de if self.levels.top else "",
            city_name=self.p.city_name, cycle=cycle, cycles=cycles, previous=previous,
            synthetic=self.geometry.synthetic, geometry_source=self.geometry.source.name,
            svg_defs=SVG_DEFS, overview=overview, profile_level=self.levels.profile, base_level=self.levels.base,
            profile_dative=dative_plural(self.levels.profile.plural_de),
            has_main=bool(self.main),
            map_levels=[level.plural_de for level in drawn], maps_missing=[level.plural_de for level in missing],
            suppression_rule=self.p.rule.describe_de("{small_counts}, {small_populations}, Sekundärsperrung: "
                                                     "{protection}"),
            action_count=sum(1 for r in action.iter_rows(named=True) if r["is_action_area"]),
            profile_count=len(profile_ids), action_list=action_list, action_map=self.action_map(cycle),
            action_legend=ACTION_LEGEND, maps=maps,
            chart_transfer=city_time_series(self.p, KEY_INDICATORS, cycle, "Transferleistungen (Stadt)"),
            chart_population=city_time_series(self.p, ["share_age_0_17", "share_age_65_plus", "share_non_german"],
                                              cycle, "Bevölkerungsstruktur (Stadt)"),
            city_series=[{"name": self.catalogue[i]["name_de"], "unit_note": self.unit_note(i),
                          "cells": [self.cell(c, "city", "city", i) for c in cycles]} for i in self.catalogue],
            # the table's rates are in % unless their header says otherwise
            table_headers=[(i, self.catalogue[i]["name_de"], "" if self.catalogue[i]["unit"] == "%" else
                            self.unit_note(i)) for i in self.rates],
            city_row=[self.cell(cycle, "city", "city", i) for i in self.rates], table_rows=table_rows,
            profiles=[self.profile(cycle, a, cycles) for a in profile_ids],
        )
        # the city's residents term first, then the soft hyphens of the table headers (a hyphenated term would
        # no longer be found)
        return hyphenate_headers(residents_wording(text, self.publisher.residents, self.publisher.residents_dative))

    def dimensions_de(self, definition_yaml: str) -> list[str]:
        """Each dimension of a published method definition in German words: its name, its indicators (catalogue
        names, with weights other than 1) and its classes (labels with their bounds)."""
        definition = yaml.safe_load(definition_yaml) or {}
        out = []
        for dimension in definition.get("dimensions") or []:
            indicators = []
            for entry in dimension.get("indicators") or []:
                entry = {"id": entry} if isinstance(entry, str) else entry
                name = entry.get("name_de") or self.catalogue.get(entry.get("change_of") or "", {}).get("name_de")
                name = entry.get("name_de") or (change_name_de(name) if entry.get("change_of") and name else None) or \
                    self.catalogue.get(entry["id"], {}).get("name_de", entry["id"])
                weight = entry.get("weight", 1)
                indicators.append(name if weight == 1 else f"{name} (Gewicht {german_number(weight, 0)})")
            classes = []
            for spec in dimension.get("classes") or []:
                bound = (f"unter {german_number(spec['below'], 1)}" if "below" in spec else
                         f"bis {german_number(spec['up_to'], 1)}" if "up_to" in spec else "darüber")
                classes.append(f"{spec.get('label', spec.get('code'))} ({bound})")
            text = f"{dimension.get('name_de') or dimension.get('id')}: {', '.join(indicators)}"
            out.append(text + (f"; Klassen: {', '.join(classes)}" if classes else ""))
        return out

    def methods(self) -> dict:
        """The methods chapter: the action-area rule as configured, every further classification method as
        published (its definition as configured), every indicator's definition from the catalogue, the
        disclosure rule with its numbers, and how the maps are classed."""
        action = self.config.action_areas
        names = {i: row["name_de"] for i, row in self.catalogue.items()}
        rule_indicators = [names.get(str(i), str(i)) for i in action.get("indicators", [])]
        quartier = action.get("quartier_indicator")
        methods = []
        for row in self.p.methods.filter(pl.col("method_id") != ACTION_AREA_METHOD).sort("method_id") \
                .iter_rows(named=True):
            methods.append({"id": row["method_id"], "name": row["name_de"],
                            "level": self.p.level_plurals.get(row["area_level"], row["area_level"]),
                            "description": row["description"], "source": row["source"],
                            "dimensions": self.dimensions_de(row["definition_yaml"]), "flag_label": row["flag_label"],
                            "min_population": row["min_population"]})
        texts = self.p.rule.texts_de()
        return {
            "action_level": self.levels.profile.name_de, "action_plural": self.levels.profile.plural_de,
            "action_indicators": rule_indicators, "action_min": action.get("min_indicators_worse"),
            "quartier_indicator": names.get(str(quartier), quartier) if quartier else None,
            "classifications": methods,
            "indicators": [{"id": i, "name": row["name_de"], "definition": row["description_de"],
                            "unit": row["unit"], "direction": DIRECTION_DE.get(row["direction"], row["direction"]),
                            "topic": row["topic_field"]} for i, row in self.catalogue.items()],
            "disclosure": {"min_count": self.p.rule.min_count,
                           "min_population": self.p.rule.min_population_for_rates,
                           "protection": self.p.rule.protection, **texts},
        }


def generate_report(published_path: Path, out_dir: Path, geometry_path: Path | None = None,
                    area_code_property: str = "area_id", cycles: list[int] | None = None,
                    on_cycle: Callable[[Path, int, int], None] | None = None, *, city_dir: Path) -> list[Path]:
    """Write ``bericht_<cycle>.html`` for every cycle of the published file (or ``cycles``) into ``out_dir``,
    with the levels and names of the city folder ``city_dir`` and the geometry ``geometry_path`` (default: the
    city folder's boundaries). The published file and the geometry are read once; ``on_cycle(path, done,
    total)`` is called after each cycle's file is in place (progress). A cycle's PDF written before (from the HTML
    replaced now) is removed; :func:`social_monitor.report.pdf.pdfs_beside` prints the PDFs."""
    geography = load_geography(city_dir)
    config = CityConfig.from_file(Path(city_dir) / CITY_FILE)
    config.publisher_or_error()  # before the published file is read: a missing publisher block stops the report
    levels = ReportLevels.of(geography, config)
    published = Published.read(Path(published_path), levels.profile.id)
    main = main_indicators(config, published.indicators["indicator_id"].to_list(),
                           f"table indicators of {Path(published_path).name}")
    geometry = load_geometry(geometry_path or default_geometry(city_dir, {})[0], geography,
                             area_code_property=area_code_property,
                             required_levels=[level.id for level in levels.maps])
    builder = ReportBuilder(published, geometry, levels, main, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    todo = cycles or published.cycles
    for cycle in todo:
        target = out_dir / report_file_name(cycle)
        partial = target.with_suffix(".html.tmp")
        partial.write_text(builder.render(cycle), encoding="utf-8")
        # the cycle's PDF, printed from the HTML replaced now, would be older than its HTML: it goes, and
        # social_monitor.report.pdf.pdfs_beside prints the new one where chromium is installed
        target.with_suffix(".pdf").unlink(missing_ok=True)
        partial.replace(target)
        written.append(target)
        if on_cycle is not None:
            on_cycle(target, len(written), len(todo))
    return written
