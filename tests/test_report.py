"""The report per report cycle and the area geometry behind its maps.

Geometry: the shipped synthetic file covers every area of the reference exactly once, nests, is contiguous,
is marked synthetic and is what the generator writes; a user's GeoJSON or shapefile with its own code
property is read and dissolved, and a wrong one is refused naming the file and the codes.
Report: built from a real published file (the sample city materialised by Dagster at scale 0.1), parsed as
HTML: one file per cycle, the German sections, a Steckbrief per Sozialraum (the city's main indicators first,
then the others by topic field, with rank and decile), one path per area in every map, suppressed cells shown as
"gesperrt", no external reference. Ranks and deciles: only among published values, whatever a suppressed value
was (hypothesis), and in the published file as an SQL count recomputes them. With chromium installed, it is rendered
to a screenshot in a real headless browser.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import shapefile
import shapely
import yaml
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import mapping

from orchestration.assets.report import report_bericht
from orchestration.resources import PipelineSettings
from social_monitor.cli import main as cli_main
from social_monitor.geography import Geography, containers, load_geography
from social_monitor.ranks import with_ranks
from social_monitor.report.generator import ACTION_FILL, generate_report, main_indicators
from social_monitor.report.single_profile import single_profile
from social_monitor.sample_city.geometry import GeometryError, is_contiguous, load_geometry
from social_monitor.settings import CITIES_DIR, DBT_PROJECT_DIR, CityConfig, copy_city, load_settings
from tests.pipeline_env import build
from tests.waiting import CEILING_SECONDS

HEADINGS = ["Übersicht", "Karten", "Zeitreihen", "Tabellen", "Steckbriefe der Sozialräume"]
VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "base", "col"}


# --- a small DOM from html.parser --------------------------------------------------------------------------

class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None):
        self.tag, self.attrs, self.parent, self.children, self.texts = tag, attrs, parent, [], []

    def iter(self, tag: str | None = None, **attrs: str):
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                    (child.attrs.get(k.rstrip("_")) or "").split().count(v) if k == "class_" else
                    child.attrs.get(k) == v for k, v in attrs.items()):
                yield child
            yield from child.iter(tag, **attrs)

    def text(self) -> str:
        return "".join(self.texts) + "".join(c.text() for c in self.children if c.tag != "title")


class Dom(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {}, None)
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, f"</{tag}> without an open <{tag}>"
        self.current = node.parent

    def handle_data(self, data):
        self.current.texts.append(data)


# --- geometry ----------------------------------------------------------------------------------------------

def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Truth:
    """Dortmund's areas read straight from its geography files (the oracle of the geometry tests)."""

    ids: dict[str, set[str]]
    parents: dict[str, dict[str, str]]  # level -> Unterbezirk -> its area on that level

    @classmethod
    def dortmund(cls) -> Truth:
        folder = CITIES_DIR / "dortmund" / "geography"
        ub = _csv(folder / "unterbezirke.csv")
        sb = {r["area_id"]: r["parent_id"] for r in _csv(folder / "statistische_bezirke.csv")}
        parents = {"unterbezirk": {r["area_id"]: r["area_id"] for r in ub},
                   "statistischer_bezirk": {r["area_id"]: r["parent_id"] for r in ub},
                   "sozialraum": {r["area_id"]: r["sozialraum_id"] for r in ub},
                   "stadtbezirk": {r["area_id"]: sb[r["parent_id"]] for r in ub}}
        return cls({level: set(p.values()) for level, p in parents.items()}, parents)


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth.dortmund()


@pytest.fixture(scope="module")
def dortmund() -> Geography:
    return load_geography(CITIES_DIR / "dortmund")


DORTMUND_BOUNDARIES = CITIES_DIR / "dortmund" / "geography" / "boundaries.geojson"


def test_sample_geometry_covers_every_area_once_nests_and_is_marked_synthetic(truth, dortmund):
    data = json.loads(DORTMUND_BOUNDARIES.read_text(encoding="utf-8"))
    assert data["metadata"]["synthetic"] is True
    assert all(f["properties"]["synthetic"] is True for f in data["features"])
    keys = [(f["properties"]["area_level"], f["properties"]["area_id"]) for f in data["features"]]
    assert len(keys) == len(set(keys))
    for level in ("unterbezirk", "statistischer_bezirk", "sozialraum", "stadtbezirk"):
        assert {i for lv, i in keys if lv == level} == truth.ids[level], level
    assert {lv for lv, _ in keys} == {"city", *truth.ids}
    assert len([k for k in keys if k[0] == "unterbezirk"]) == 170

    geometry = load_geometry(DORTMUND_BOUNDARIES, dortmund)
    assert geometry.synthetic
    city = geometry.shapes[("city", "city")]
    unterbezirke = geometry.level("unterbezirk")
    # the Unterbezirke tile the city: no overlaps, no gaps (up to the one-metre grid)
    assert sum(g.area for g in unterbezirke.values()) == pytest.approx(city.area, rel=1e-4)
    for level in ("statistischer_bezirk", "sozialraum", "stadtbezirk"):
        shapes = geometry.level(level)
        for ub_id, polygon in unterbezirke.items():
            parent = shapes[truth.parents[level][ub_id]]
            assert polygon.difference(parent).area < 1e-6 * polygon.area, (level, ub_id)
        not_contiguous = [i for i, g in shapes.items() if not is_contiguous(g)]
        assert not_contiguous == [], level
    assert all(g.is_valid and not g.is_empty for g in geometry.shapes.values())


def test_the_generator_writes_the_shipped_file(tmp_path):
    target = tmp_path / "boundaries.geojson"
    assert cli_main(["boundaries", "--city", "dortmund", "--out", str(target)]) == 0
    assert target.read_bytes() == DORTMUND_BOUNDARIES.read_bytes()


def _unterbezirk_features(property_name: str) -> list[tuple[str, dict]]:
    data = json.loads(DORTMUND_BOUNDARIES.read_text(encoding="utf-8"))
    return [(f["properties"]["area_id"], f["geometry"]) for f in data["features"]
            if f["properties"]["area_level"] == "unterbezirk"]


def test_a_users_geojson_of_unterbezirke_is_dissolved_to_every_level(tmp_path, truth, dortmund):
    features = [{"type": "Feature", "properties": {"UB_NR": int(code), "NAME": code}, "geometry": geom}
                for code, geom in _unterbezirk_features("UB_NR")]
    path = tmp_path / "grenzen.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")

    geometry = load_geometry(path, dortmund, area_code_property="UB_NR", level_property=None)
    assert not geometry.synthetic
    assert set(geometry.level("sozialraum")) == truth.ids["sozialraum"]
    assert set(geometry.level("statistischer_bezirk")) == truth.ids["statistischer_bezirk"]
    sample = load_geometry(DORTMUND_BOUNDARIES, dortmund)
    assert geometry.level("sozialraum")["37"].symmetric_difference(
        sample.level("sozialraum")["37"]).area < 1e-9

    with pytest.raises(GeometryError, match=r"grenzen\.geojson.*'UB_CODE'"):
        load_geometry(path, dortmund, area_code_property="UB_CODE", level_property=None)
    features[0]["properties"]["UB_NR"] = 999
    del features[1]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    with pytest.raises(GeometryError) as refused:
        load_geometry(path, dortmund, area_code_property="UB_NR", level_property=None)
    message = str(refused.value)
    assert "grenzen.geojson" in message
    assert "missing unterbezirk codes: 001, 002" in message
    assert "unknown unterbezirk codes: 999" in message
    # without the base level, every level the report maps must be given
    only = [{"type": "Feature", "properties": {"area_level": "sozialraum", "area_id": code}, "geometry": mapping(g)}
            for code, g in sample.level("sozialraum").items()]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": only}), encoding="utf-8")
    with pytest.raises(GeometryError, match="give the Unterbezirke.*missing: statistische Bezirke"):
        load_geometry(path, dortmund, required_levels=["sozialraum", "statistischer_bezirk"])


def test_a_users_shapefile_is_read_with_pyshp(tmp_path, truth, dortmund):
    base = tmp_path / "unterbezirke"
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON) as writer:
        writer.field("UBEZ", "C", size=3)
        for code, geom in _unterbezirk_features("UBEZ"):
            polygon = shapely.geometry.shape(geom)
            parts = polygon.geoms if hasattr(polygon, "geoms") else [polygon]
            rings = []
            for part in parts:  # shapefile rings: outer clockwise
                rings.append(list(shapely.geometry.polygon.orient(part, sign=-1.0).exterior.coords))
            writer.poly(rings)
            writer.record(code)
    geometry = load_geometry(base.with_suffix(".shp"), dortmund, area_code_property="UBEZ", level_property=None)
    assert set(geometry.level("unterbezirk")) == truth.ids["unterbezirk"]
    assert set(geometry.level("stadtbezirk")) == truth.ids["stadtbezirk"]
    assert mapping(geometry.shapes[("unterbezirk", "001")])["type"] == "Polygon"


# --- the report --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def city(tmp_path_factory) -> dict[str, object]:
    """The sample city materialised by the real Dagster runs (which include the report asset)."""
    return build(tmp_path_factory.mktemp("report_city"))


@pytest.fixture(scope="module")
def published(city) -> dict[str, object]:
    path = city["published"]
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            "path": path,
            "cycles": [r[0] for r in con.execute("select distinct report_cycle from area_indicators order by 1")
                       .fetchall()],
            "ids": {level: sorted(r[0] for r in con.execute(
                "select area_id from areas where area_level = ?", [level]).fetchall())
                for level in ("sozialraum", "statistischer_bezirk")},
            "suppressed": con.execute(
                "select report_cycle, area_id, indicator_id from area_indicators "
                "where area_level = 'sozialraum' and suppression is not null").fetchall(),
            "action_areas": dict(con.execute(
                "select report_cycle, count(*) filter (where is_action_area) from action_areas group by 1")
                .fetchall()),
            "names": dict(con.execute("select indicator_id, name_de from indicators").fetchall()),
        }


@pytest.fixture(scope="module")
def reports(published, tmp_path_factory) -> dict[int, Path]:
    out = tmp_path_factory.mktemp("bericht")
    assert cli_main(["report", "--published", str(published["path"]), "--out", str(out), "--pdf", "no"]) == 0
    return {int(p.stem.split("_")[1]): p for p in sorted(out.glob("bericht_*.html"))}


def test_one_self_contained_report_per_cycle(reports, published, city):
    assert sorted(reports) == published["cycles"]
    # the Dagster run of the pipeline wrote the same files
    written_by_dagster = sorted((Path(city["published"]).parent / "report").glob("bericht_*.html"))
    assert [p.name for p in written_by_dagster] == [p.name for p in reports.values()]
    for cycle, path in reports.items():
        text = path.read_text(encoding="utf-8")
        assert path.stat().st_size < 5_000_000
        assert "<script" not in text and "<link" not in text and "@import" not in text
        # every reference stays inside the file: links are anchors, fills are the page's own pattern
        assert re.findall(r'(?:href|src)\s*=\s*"(?!#)([^"]*)"', text) == []
        assert re.findall(r"url\((?!#)", text) == []
        assert "Gebietsgrenzen synthetisch" in text
        dom = Dom(text).root
        headings = [h.text().strip() for h in dom.iter("h2")]
        for heading in [*HEADINGS, f"Aktionsräume {cycle}"]:
            assert heading in headings, (cycle, heading)
        assert next(dom.iter("title")).text() .startswith(f"Bericht zur sozialen Lage {cycle}")


def test_every_sozialraum_has_a_steckbrief_and_every_map_one_path_per_area(reports, published):
    for cycle, path in reports.items():
        dom = Dom(path.read_text(encoding="utf-8")).root
        profiles = list(dom.iter("article", class_="steckbrief"))
        assert [a.attrs["data-area"] for a in profiles] == published["ids"]["sozialraum"]
        assert {a.attrs["data-area-level"] for a in profiles} == {"sozialraum"}
        for article in profiles:
            h4 = [h.text() for h in article.iter("h4")]
            assert h4[:1] == [f"Einordnung {cycle}"]
            assert {"Hauptindikatoren im Vergleich mit der Stadt", "Weitere Indikatoren nach Themenfeld",
                    "Quartiere (Unterbezirke)", "Entwicklung"} <= set(h4)
            locator = next(article.iter("svg"))
            assert len(list(locator.iter("path", **{"data-area-id": article.attrs["data-area"]}))) == 1

        figures = list(dom.iter("figure", class_="choropleth"))
        assert len(figures) == 2 * len(published["names"])  # every indicator, Sozialräume and Bezirke
        for figure in figures:
            level = figure.attrs["data-level"]
            ids = [p.attrs["data-area-id"] for p in figure.iter("path") if "data-area-id" in p.attrs]
            assert sorted(ids) == published["ids"][level], (cycle, figure.attrs["data-indicator"], level)
            assert "gesperrt" in figure.text()

        action_map = next(next(dom.iter("section", id="aktionsraeume")).iter("svg"))
        action_fills = {ACTION_FILL["new"], ACTION_FILL["kept"]}
        coloured = [p for p in action_map.iter("path") if p.attrs.get("fill") in action_fills]
        assert len(coloured) == published["action_areas"][cycle]


def test_suppressed_values_are_shown_as_gesperrt_never_as_a_number(reports, published):
    assert published["suppressed"], "the sample city at scale 0.1 has suppressed Sozialraum cells"
    doms = {cycle: Dom(path.read_text(encoding="utf-8")).root for cycle, path in reports.items()}
    for cycle, area_id, indicator_id in published["suppressed"]:
        article = next(doms[cycle].iter("article", id=f"steckbrief-{area_id}"))
        row = list(next(article.iter("tr", **{"data-indicator": indicator_id})).iter("td"))
        assert row[1].text().strip() == "gesperrt" and "suppressed" in row[1].attrs["class"]
        assert row[4].text().strip() == "" and row[5].text().strip() == ""  # no rank, no decile
        # every indicator has a map, where the suppressed cell is hatched
        figure = next(f for f in doms[cycle].iter("figure", class_="choropleth")
                      if f.attrs["data-indicator"] == indicator_id and f.attrs["data-level"] == "sozialraum")
        path = next(figure.iter("path", **{"data-area-id": area_id}))
        assert path.attrs["fill"] == "url(#gesperrt)"
        assert "gesperrt" in next(path.iter("title")).text()
    for dom in doms.values():
        for td in dom.iter("td", class_="suppressed"):
            assert not re.search(r"\d", td.text()), td.text()


# --- the Steckbrief: main indicators, topic fields, ranks and deciles ----------------------------------------

CATALOGUE_CSV = DBT_PROJECT_DIR / "seeds" / "catalogue" / "indicator_catalogue.csv"
TOPIC_ORDER = ["Demografie", "Erwerbstätigkeit und Transferleistungen", "Bildung und Jugend", "Gesundheit", "Wohnen"]


def _city_main_indicators(city: str) -> list[str]:
    raw = yaml.safe_load((CITIES_DIR / city / "city.yml").read_text(encoding="utf-8"))
    return raw["report"]["main_indicators"]


def _expected_steckbrief_order(main: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Main indicators as city.yml lists them, then the rest of the catalogue CSV by topic (the issue's order of
    the five topic fields), each topic by sort_order; topics without a further indicator left out."""
    rows = sorted(_csv(CATALOGUE_CSV), key=lambda r: int(r["sort_order"]))
    topics = [(topic, [r["indicator_id"] for r in rows if r["topic_field"] == topic and r["indicator_id"] not in main])
              for topic in TOPIC_ORDER]
    return main, [(topic, ids) for topic, ids in topics if ids]


@pytest.fixture(scope="module")
def rank_cells(published) -> dict[tuple, tuple]:
    """(cycle, level, area, indicator) -> (rank, ranked areas, decile) as the published file holds them."""
    with duckdb.connect(str(published["path"]), read_only=True) as con:
        rows = con.execute("select report_cycle, area_level, area_id, indicator_id, value_rank, ranked_areas, "
                           "value_decile from area_indicators").fetchall()
    return {row[:4]: row[4:] for row in rows}


def test_the_steckbrief_shows_the_main_indicators_first_then_the_others_by_topic(reports, published, rank_cells):
    main, topics = _expected_steckbrief_order(_city_main_indicators("dortmund"))
    assert {"share_age_0_17", "sgb2_rate"} <= set(main)  # Dortmund's main indicators the catalogue had first
    target_groups = {r["indicator_id"]: r["target_group"] for r in _csv(CATALOGUE_CSV)}
    cycle = max(reports)
    dom = Dom(reports[cycle].read_text(encoding="utf-8")).root
    profiles = list(dom.iter("article", class_="steckbrief"))
    for article in profiles:
        main_table = next(article.iter("table", class_="main-indicators"))
        assert [tr.attrs["data-indicator"] for tr in main_table.iter("tr") if "data-indicator" in tr.attrs] == main
        topic_table = next(article.iter("table", class_="topic-indicators"))
        shown = [(body.attrs["data-topic"], [tr.attrs["data-indicator"] for tr in body.iter("tr")
                                             if "data-indicator" in tr.attrs]) for body in topic_table.iter("tbody")]
        assert shown == topics, article.attrs["data-area"]
        for tr in topic_table.iter("tr"):
            if target_groups.get(tr.attrs.get("data-indicator", "")):
                assert f"Zielgruppe: {target_groups[tr.attrs['data-indicator']]}" in tr.text()
        # the city value beside the area's, and the area's rank among the Sozialräume
        area = article.attrs["data-area"]
        for tr in main_table.iter("tr"):
            if "data-indicator" not in tr.attrs:
                continue
            cells = [td.text().strip() for td in tr.iter("td")]
            if (cycle, "sozialraum", area, tr.attrs["data-indicator"]) not in rank_cells:
                # not published for the Sozialräume (an aggregate delivered per statistischer Bezirk, or an
                # index published at its level only): a German note instead of a value
                assert f"Für {cycle} " in tr.text() and ("geliefert" in tr.text() or "kein Wert" in tr.text())
                continue
            rank, ranked, decile = rank_cells[(cycle, "sozialraum", area, tr.attrs["data-indicator"])]
            assert cells[4] == (f"{rank} von {ranked}" if rank is not None else "")
            assert cells[5] == (str(decile) if decile is not None else "")
            assert cells[2] not in ("", "–")  # the city value
    # the Quartiere: the SGB II rate's decile among all Unterbezirke, as Dortmund publishes it
    deciles = []
    for article in profiles:
        quartiere = list(article.iter("table"))[2]
        header = [th.text().replace("\u00ad", "") for th in quartiere.iter("th")]  # without the soft hyphens
        assert header[-1] == "SGB-II-Quote: Dezil unter allen Unterbezirken"
        for tr in quartiere.iter("tr"):
            cells = list(tr.iter("td"))
            if not cells:
                continue
            decile = rank_cells[(cycle, "unterbezirk", cells[0].text().split()[0], "sgb2_rate")][2]
            text = cells[-1].text().strip()
            assert text == (f"Dezil {decile} von 10" if decile is not None else text), text
            deciles.append(decile)
    assert set(deciles) - {None} == set(range(1, 11))  # 170 Unterbezirke: every decile occurs


def test_published_ranks_and_deciles_are_those_of_the_published_values(published):
    """An SQL count over the published file recomputes every rank and decile: rank 1 + the areas of the level with
    a higher published value, decile ceil(10 × areas at or below / areas ranked), none for a suppressed cell."""
    with duckdb.connect(str(published["path"]), read_only=True) as con:
        rows = con.execute("""
            select a.report_cycle, a.area_level, a.area_id, a.indicator_id, a.suppression, a.value,
                   a.value_rank, a.ranked_areas, a.value_decile,
                   count(b.value) filter (where b.value > a.value) as higher,
                   count(b.value) filter (where b.value <= a.value) as at_or_below,
                   count(b.value) as ranked
            from area_indicators a
            left join area_indicators b
              on b.report_cycle = a.report_cycle and b.area_level = a.area_level and b.indicator_id = a.indicator_id
             and b.suppression is null and b.value is not null
            group by all""").fetchall()
    suppressed = ranked_cells = 0
    for (cycle, level, area, indicator, suppression, value, rank, ranked, decile,
         higher, at_or_below, n) in rows:
        key = (cycle, level, area, indicator)
        if level == "city" or suppression is not None or value is None:
            assert (rank, ranked, decile) == (None, None, None), key
            suppressed += suppression is not None
            continue
        ranked_cells += 1
        assert (rank, ranked) == (higher + 1, n), key
        assert decile == (math.ceil(10 * at_or_below / n) if n >= 10 else None), key
    assert suppressed > 0 and ranked_cells > 0


_CELL_VALUES = st.one_of(st.none(), st.sampled_from([0.0, 2.5, 7.25, 12.0, 100.0]),
                         st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
_HIDDEN_VALUES = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(groups=st.lists(st.tuples(st.sampled_from(["city", "bezirk", "quartier"]), st.sampled_from(["a", "b"]),
                                 st.lists(st.tuples(_CELL_VALUES, st.booleans()), max_size=25)),
                       max_size=4, unique_by=lambda g: g[:2]),
       data=st.data())
def test_a_suppressed_cell_has_no_rank_and_the_others_do_not_depend_on_its_value(groups, data):
    cells = [(2025, level, f"{level}{i}", indicator, value, "secondary" if hidden else None)
             for level, indicator, areas in groups for i, (value, hidden) in enumerate(areas)]
    hidden = [c[5] is not None for c in cells]

    def ranked(fill: list[float | None]) -> pl.DataFrame:
        rows = [(*c[:4], fill.pop() if h else c[4], c[5]) for c, h in zip(cells, hidden, strict=True)]
        return with_ranks(pl.DataFrame(rows, orient="row", schema={
            "report_cycle": pl.Int32, "area_level": pl.Utf8, "area_id": pl.Utf8, "indicator_id": pl.Utf8,
            "value": pl.Float64, "suppression": pl.Utf8}))

    # the suppressed cells' values as if the disclosure control had not emptied them: two arbitrary fills
    first = ranked(data.draw(st.lists(_HIDDEN_VALUES, min_size=sum(hidden), max_size=sum(hidden))))
    second = ranked(data.draw(st.lists(_HIDDEN_VALUES, min_size=sum(hidden), max_size=sum(hidden))))
    columns = ["area_id", "value_rank", "ranked_areas", "value_decile"]
    assert first.select(columns).rows() == second.select(columns).rows()
    assert first["area_id"].to_list() == [c[2] for c in cells]  # the order of the cells is kept
    for cell, (_area, rank, ranked_areas, decile) in zip(cells, first.select(columns).rows(), strict=True):
        cycle, level, _area, indicator, value, suppression = cell
        if suppression is not None or value is None or level == "city":
            assert (rank, ranked_areas, decile) == (None, None, None)
            continue
        published_values = [c[4] for c in cells if c[1:4:2] == (level, indicator) and c[5] is None
                            and c[4] is not None]
        n = len(published_values)
        assert rank == 1 + sum(v > value for v in published_values)
        assert ranked_areas == n
        assert decile == (math.ceil(10 * sum(v <= value for v in published_values) / n) if n >= 10 else None)


def test_main_indicators_are_checked_against_the_catalogue(published, tmp_path, monkeypatch, capsys):
    catalogue = [r["indicator_id"] for r in _csv(CATALOGUE_CSV)]
    for city in ("dortmund", "berlin"):  # the shipped cities' lists are in the catalogue
        config = CityConfig.from_file(CITIES_DIR / city / "city.yml")
        assert list(main_indicators(config, catalogue, "csv")) == _city_main_indicators(city)

    folder = tmp_path / "stadt"
    shutil.copytree(CITIES_DIR / "dortmund", folder)
    city_yml = folder / "city.yml"
    original = city_yml.read_text(encoding="utf-8")
    listed = re.search(r"main_indicators: \[[^\]]*\]", original).group(0)
    for wrong, message in (("[share_age_0_17, income_index_x, sgb2_rate]",
                            r"city\.yml: report\.main_indicators: income_index_x not in the indicator catalogue "
                            r"\(table indicators of marts\.duckdb\)"),
                           ("[sgb2_rate, sgb2_rate]", r"city\.yml: report\.main_indicators must be a list of distinct"),
                           ("sgb2_rate", r"city\.yml: report\.main_indicators must be a list")):
        city_yml.write_text(original.replace(listed, f"main_indicators: {wrong}"), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            generate_report(published["path"], tmp_path / "out", city_dir=folder)
    # the command says so too, and writes nothing
    monkeypatch.setenv("SOCIAL_MONITOR_CITY", str(folder))
    city_yml.write_text(original.replace(listed, "main_indicators: [no_such_indicator]"), encoding="utf-8")
    assert cli_main(["report", "--published", str(published["path"]), "--out", str(tmp_path / "out")]) == 1
    assert "report.main_indicators: no_such_indicator not in the indicator catalogue" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_main_indicator_without_a_value_at_the_steckbrief_level_shows_a_note(published, tmp_path):
    """As an aggregate delivered per Stadtbezirk would be: the share under 18 of the last cycle only on the
    Stadtbezirke and the city (the Sozialraum and lower rows removed from a copy of the published file)."""
    copy = tmp_path / "marts.duckdb"
    shutil.copy(published["path"], copy)
    cycle = max(published["cycles"])
    with duckdb.connect(str(copy)) as con:
        con.execute("delete from area_indicators where report_cycle = ? and indicator_id = 'share_age_0_17' "
                    "and area_level not in ('city', 'stadtbezirk')", [cycle])
    written = generate_report(copy, tmp_path / "out", cycles=[cycle], city_dir=CITIES_DIR / "dortmund")
    dom = Dom(written[0].read_text(encoding="utf-8")).root
    for article in dom.iter("article", class_="steckbrief"):
        row = next(article.iter("tr", **{"data-indicator": "share_age_0_17"}))
        cells = [td.text().strip() for td in row.iter("td")]
        assert f"Für {cycle} nicht für die Sozialräume geliefert; Werte nur für: Gesamtstadt, Stadtbezirke." \
            in cells[0]
        assert cells[1] == "–" and cells[2] not in ("", "–")  # no value of its own, the city value beside it


def test_the_asset_writes_every_cycle_and_a_users_geometry_is_not_marked_synthetic(published, tmp_path, monkeypatch):
    copy = tmp_path / "published" / "marts.duckdb"
    copy.parent.mkdir()
    shutil.copy(published["path"], copy)
    features = [{"type": "Feature", "properties": {"UB": code}, "geometry": geom}
                for code, geom in _unterbezirk_features("UB")]
    boundaries = tmp_path / "grenzen.geojson"
    boundaries.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    monkeypatch.setenv("SOCIAL_MONITOR_GEOMETRY", str(boundaries))
    monkeypatch.setenv("SOCIAL_MONITOR_GEOMETRY_CODE_PROPERTY", "UB")
    monkeypatch.setenv("SOCIAL_MONITOR_REPORT_PDF", "no")  # the PDFs: test_the_asset_prints_the_pdf_...
    result = dg.materialize([report_bericht], resources={"pipeline": PipelineSettings(
        landing_dir=str(tmp_path), published_path=str(copy), config_path=str(load_settings({}).config_path))})
    assert result.success
    metadata = result.asset_materializations_for_node("report__bericht")[0].metadata
    for cycle in published["cycles"]:
        target = copy.parent / "report" / f"bericht_{cycle}.html"
        assert metadata[f"bytes_bericht_{cycle}"].value == target.stat().st_size
        text = target.read_text(encoding="utf-8")
        assert "Gebietsgrenzen synthetisch" not in text
        assert text.count("data-area-id=") > 0


def test_a_missing_published_file_or_a_wrong_geometry_is_a_clear_error(tmp_path, capsys, published):
    assert cli_main(["report", "--published", str(tmp_path / "none.duckdb"), "--out", str(tmp_path)]) == 1
    assert "none.duckdb: no published file" in capsys.readouterr().err
    broken = tmp_path / "grenzen.geojson"
    broken.write_text(json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8")
    assert cli_main(["report", "--published", str(published["path"]), "--out", str(tmp_path / "out"),
                     "--geometry", str(broken)]) == 1
    assert "grenzen.geojson: no features" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        generate_report(tmp_path / "none.duckdb", tmp_path, city_dir=CITIES_DIR / "dortmund")


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install chromium): no screenshot taken")
def test_chromium_renders_the_overview_and_a_steckbrief(reports, tmp_path):
    cycle = max(reports)
    page = tmp_path / "steckbrief.html"
    page.write_text(single_profile(reports[cycle].read_text(encoding="utf-8"), "37"), encoding="utf-8")
    for url, shot in ((reports[cycle].resolve().as_uri(), tmp_path / "overview.png"),
                      (page.resolve().as_uri(), tmp_path / "profile.png")):
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                        "--window-size=1280,1600", url], check=True, capture_output=True, timeout=CEILING_SECONDS)
        assert _png_size(shot) == (1280, 1600)
        assert shot.stat().st_size > 20_000  # a blank page is a few kilobytes


# --- another city: Berlin's levels, two versions of its geography, its synthetic boundaries ------------------

BERLIN = CITIES_DIR / "berlin"
BERLIN_BOUNDARIES = BERLIN / "geography" / "boundaries.geojson"


def _berlin_current(level_file: str) -> dict[str, str]:
    """area_id -> parent_id of the areas of the LOR of 2021 (no valid_to), read straight from the CSV."""
    return {r["area_id"]: r.get("parent_id", "") for r in _csv(BERLIN / "geography" / level_file)
            if not r.get("valid_to")}


def test_berlins_synthetic_boundaries_are_the_current_lor_nested_and_what_the_generator_writes(tmp_path):
    target = tmp_path / "boundaries.geojson"
    assert cli_main(["boundaries", "--city", "berlin", "--out", str(target)]) == 0
    assert target.read_bytes() == BERLIN_BOUNDARIES.read_bytes()

    data = json.loads(BERLIN_BOUNDARIES.read_text(encoding="utf-8"))
    assert data["metadata"]["synthetic"] is True
    keys = {(f["properties"]["area_level"], f["properties"]["area_id"]) for f in data["features"]}
    files = {"bezirk": "bezirke.csv", "prognoseraum": "prognoseraeume.csv", "bezirksregion": "bezirksregionen.csv",
             "planungsraum": "planungsraeume.csv"}
    current = {level: _berlin_current(name) for level, name in files.items()}
    assert len(current["planungsraum"]) == 542 and len(current["bezirksregion"]) == 143
    for level, areas in current.items():
        assert {i for lv, i in keys if lv == level} == set(areas), level

    geometry = load_geometry(BERLIN_BOUNDARIES, load_geography(BERLIN))
    city = geometry.shapes[("city", "city")]
    planungsraeume = geometry.level("planungsraum")
    assert sum(g.area for g in planungsraeume.values()) == pytest.approx(city.area, rel=1e-4)
    chain = [("planungsraum", "bezirksregion"), ("bezirksregion", "prognoseraum"), ("prognoseraum", "bezirk")]
    for child, parent in chain:
        for area_id, polygon in geometry.level(child).items():
            container = geometry.shapes[(parent, current[child][area_id])]
            # up to slivers of the one-metre grid along borders tens of kilometres long
            assert polygon.difference(container).area < 1e-4 * polygon.area, (child, area_id)
    assert all(is_contiguous(g) for (level, _), g in geometry.shapes.items() if level != "planungsraum")

    # the retired version's keys are a version of the level too: a file of them is accepted, not a mix
    old = {r["area_id"] for r in _csv(BERLIN / "geography" / "planungsraeume.csv") if r.get("valid_to")}
    assert len(old) == 447
    features = [{"type": "Feature", "properties": {"PLR": code}, "geometry": mapping(g)}
                for code, g in zip(sorted(old), list(planungsraeume.values()), strict=False)]
    path = tmp_path / "lor_2019.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    assert len(load_geometry(path, load_geography(BERLIN), area_code_property="PLR",
                             level_property=None).level("bezirksregion")) == 138
    features.append({"type": "Feature", "properties": {"PLR": sorted(current["planungsraum"])[0]},
                     "geometry": features[0]["geometry"]})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    with pytest.raises(GeometryError, match="unknown planungsraum codes: " + sorted(current["planungsraum"])[0]):
        load_geometry(path, load_geography(BERLIN), area_code_property="PLR", level_property=None)


@pytest.fixture(scope="module")
def berlin_published(published, tmp_path_factory) -> Path:
    """A published file in the published contract's shape for Berlin's geography: the tables of the Dortmund
    run (indicator catalogue, methods, disclosure audit), the area tables replaced by Berlin's areas (both LOR
    versions) with made-up values, action areas on the Bezirksregionen. Berlin's own run does not publish yet
    (disclosure control); this file tests the report's levels, names and versions, not Berlin's numbers."""
    path = tmp_path_factory.mktemp("berlin_published") / "marts.duckdb"
    shutil.copy(published["path"], path)
    geography = load_geography(BERLIN)
    cycles = [2018, 2020]  # the last on the LOR until 2020, the first on the LOR of 2021
    rng = random.Random(11)
    with duckdb.connect(str(path)) as con:
        indicators = [r[0] for r in con.execute("select indicator_id from indicators").fetchall()]
        # one row per level and id (the published primary keys; an id of both LOR versions: the later one)
        areas = list({(a.level, a.area_id): (a.level, a.area_id, a.area_name, "published")
                      for a in geography.areas}.values())
        areas.append(("city", "city", "Berlin", "published"))
        hierarchy = list({tuple(row[:3]): row for row in containers(geography)}.values())
        values, action, quartiere = [], [], []
        for cycle in cycles:
            valid = [("city", "city")] + [(a.level, a.area_id) for a in geography.areas if a.valid_in(cycle)]
            city = {i: rng.uniform(5, 30) for i in indicators}
            for level, area_id in dict.fromkeys(valid):
                for i in indicators:
                    value = city[i] if level == "city" else city[i] * rng.uniform(0.5, 1.5)
                    values.append((cycle, level, area_id, i, value, city[i]))
            for region in geography.areas_of("bezirksregion", cycle):
                flagged = rng.random() < 0.2
                action.append((cycle, "bezirksregion", region.area_id, region.area_name, flagged,
                               "first_cycle" if flagged else "not_action_area", 2 if flagged else 0, 2))
                if flagged:
                    for pr in geography.areas_of("planungsraum", cycle):
                        if pr.parent_id == region.area_id:
                            quartiere.append((cycle, region.area_id, pr.area_id, pr.area_name, "transfer_rate",
                                              rng.random() < 0.5))
        con.execute("update publication set city_name = 'Berlin (Test)'")
        for table, columns, rows in (
                ("areas", "area_level, area_id, area_name, name_status", areas),
                ("area_hierarchy", "area_level, area_id, container_level, container_id, is_direct, valid_from, "
                 "valid_to", hierarchy),
                ("area_indicators", "report_cycle, area_level, area_id, indicator_id, value, city_value", values),
                ("action_areas", "report_cycle, area_level, area_id, area_name, is_action_area, "
                 "change_since_previous, indicators_worse_count, min_indicators_worse", action),
                ("action_area_quartiere", "report_cycle, area_id, base_area_id, base_area_name, indicator_id, "
                 "is_worse_than_city", quartiere)):
            con.execute(f"delete from {table}")
            marks = ", ".join("?" for _ in columns.split(","))
            con.executemany(f"insert into {table} ({columns}) values ({marks})", rows)
        con.execute("delete from area_classifications")
        con.execute("delete from classification_methods")  # Dortmund's methods are not Berlin's
    return path


def test_a_berlin_report_speaks_berlins_levels_and_says_which_maps_its_old_version_lacks(berlin_published, tmp_path):
    written = generate_report(berlin_published, tmp_path, city_dir=BERLIN)
    assert [p.name for p in written] == ["bericht_2018.html", "bericht_2020.html"]
    regions = _csv(BERLIN / "geography" / "bezirksregionen.csv")
    expected_regions = {2018: sorted(r["area_id"] for r in regions if r["valid_to"]),
                        2020: sorted(r["area_id"] for r in regions if not r["valid_to"])}
    maps_per_cycle = {2018: {"bezirk"}, 2020: {"bezirk", "bezirksregion"}}  # city.yml: report.map_levels
    for path in written:
        cycle = int(path.stem.split("_")[1])
        text = path.read_text(encoding="utf-8")
        for dortmund_word in ("Sozialr", "Unterbezirk", "statistische Bezirk", "statistischen Bezirk", "Stadtbezirk"):
            assert dortmund_word not in text, (cycle, dortmund_word)
        dom = Dom(text).root
        headings = [h.text().strip() for h in dom.iter("h2")]
        assert "Steckbriefe der Bezirksregionen" in headings
        profiles = list(dom.iter("article", class_="steckbrief"))
        assert [a.attrs["data-area"] for a in profiles] == expected_regions[cycle]
        assert {a.attrs["data-area-level"] for a in profiles} == {"bezirksregion"}
        first = profiles[0]
        assert "Quartiere (Planungsräume)" in [h.text() for h in first.iter("h4")]
        assert f"(Bezirksregion {expected_regions[cycle][0]})" in first.text()
        figures = list(dom.iter("figure", class_="choropleth"))
        assert {f.attrs["data-level"] for f in figures} == maps_per_cycle[cycle]
        for figure in figures:
            ids = [p.attrs["data-area-id"] for p in figure.iter("path") if "data-area-id" in p.attrs]
            assert len(ids) == {"bezirk": 12, "bezirksregion": 143, "planungsraum": 542}[figure.attrs["data-level"]]
        missing = list(dom.iter("p", id="karten-fehlen"))
        if cycle == 2018:
            assert "dieser Gebietsebenen: Bezirksregionen." in missing[0].text()
            assert "Keine Karte der Aktionsräume für 2018" in text
            # no locator map on the old version (the trend chart is drawn)
            assert all(next(a.iter("svg", class_="locator"), None) is None for a in profiles)
            assert all(next(a.iter("svg", class_="trend"), None) is not None for a in profiles)
        else:
            assert missing == []
            assert "Aktionsräume 2020 (Bezirksregionen)" in text


# --- issue 13, part 1: a report an office can publish -----------------------------------------------------------

DORTMUND_YML = CITIES_DIR / "dortmund" / "city.yml"


def _raw_config(city: str = "dortmund") -> dict:
    return yaml.safe_load((CITIES_DIR / city / "city.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def doms(reports) -> dict[int, Node]:
    return {cycle: Dom(path.read_text(encoding="utf-8")).root for cycle, path in reports.items()}


def test_both_shipped_cities_declare_a_synthetic_publisher():
    for city in ("dortmund", "berlin"):
        publisher = CityConfig.from_file(CITIES_DIR / city / "city.yml").publisher
        raw = _raw_config(city)["publisher"]
        assert publisher is not None and publisher.synthetic is True, city
        assert (publisher.name, list(publisher.address), publisher.email) == (raw["name"], raw["address"],
                                                                             raw["email"])
        assert "synthetisch" in publisher.name and publisher.email.endswith(".example.org")


_PUBLISHER_KEYS = ["name", "address", "email", "imprint", "sources", "residents"]
_WRONG = st.one_of(st.none(), st.integers(), st.just(""), st.just("   "), st.lists(st.integers(), max_size=2),
                   st.just({}), st.just([]))


@given(key=st.sampled_from([*_PUBLISHER_KEYS, "phone", "synthetic"]), wrong=_WRONG,
       how=st.sampled_from(["drop", "wrong", "unknown"]))
def test_a_missing_or_invalid_publisher_is_an_error_naming_city_yml_and_the_key(tmp_path_factory, key, wrong, how):
    raw = _raw_config()
    publisher = dict(raw["publisher"])
    if how == "drop":
        if key not in _PUBLISHER_KEYS:
            publisher.pop(key)  # optional keys may go
            assert CityConfig.from_file(_write_city(tmp_path_factory, raw, publisher)).publisher is not None
            return
        publisher.pop(key)
    elif how == "wrong":
        if key == "synthetic" and isinstance(wrong, bool):
            return
        publisher[key] = wrong
    else:
        publisher[f"{key}_x"] = "?"
    path = _write_city(tmp_path_factory, raw, publisher)
    with pytest.raises(ValueError) as error:
        CityConfig.from_file(path)
    message = str(error.value)
    assert message.startswith(f"{path}: publisher"), message
    assert (f"{key}_x" if how == "unknown" else key) in message


def _write_city(tmp_path_factory, raw: dict, publisher: dict | None) -> Path:
    folder = tmp_path_factory.mktemp("publisher")
    changed = {k: v for k, v in raw.items() if k != "publisher"}
    if publisher is not None:
        changed["publisher"] = publisher
    path = folder / "city.yml"
    path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
    return path


def test_a_city_without_a_publisher_block_gets_no_report(tmp_path_factory, published):
    path = _write_city(tmp_path_factory, _raw_config(), None)
    assert CityConfig.from_file(path).publisher is None  # the pipeline runs; the report needs it
    folder = tmp_path_factory.mktemp("ohne_herausgeber")
    shutil.copytree(CITIES_DIR / "dortmund", folder / "stadt")
    shutil.copy(path, folder / "stadt" / "city.yml")
    with pytest.raises(ValueError, match=r"city\.yml: publisher: missing; the report names its Herausgeber"):
        generate_report(published["path"], folder / "out", city_dir=folder / "stadt")
    assert not (folder / "out").exists()


def _source_text(node: Node) -> str:
    return " ".join(node.text().split())


def test_every_report_names_its_publisher_data_date_contact_and_the_source_under_every_map_and_table(doms):
    raw = _raw_config()["publisher"]
    source = " ".join(raw["sources"].split())
    for cycle, dom in doms.items():
        header = next(dom.iter("header")).text()
        assert raw["name"] in header and raw["email"] in header and f"Stand der Daten: 31.12.{cycle}" in header
        assert next(dom.iter("p", id="hinweis-beispieldaten"), None) is not None  # the sample says it is synthetic
        imprint = next(dom.iter("section", id="impressum"))
        text = " ".join(imprint.text().split())
        for part in [raw["name"], *raw["address"], raw["email"], raw["phone"], " ".join(raw["imprint"].split()),
                     source, f"Stichtag 31.12.{cycle}"]:
            assert part in text, (cycle, part)
        # every table: the next element beside it is its source; every map and chart: a source inside its figure
        tables = figures = 0
        for node in dom.iter():
            siblings = [c for c in node.children]
            for i, child in enumerate(siblings):
                if child.tag == "table":
                    tables += 1
                    following = siblings[i + 1] if i + 1 < len(siblings) else None
                    assert following is not None and following.attrs.get("class") == "quelle", (cycle, child.attrs)
                    assert _source_text(following) == f"Quelle: {source}. Stand der Daten: 31.12.{cycle}."
        for figure in dom.iter("figure"):
            figures += 1
            assert any(p.attrs.get("class") == "quelle" for p in figure.iter("p")), (cycle, figure.attrs)
        maps = len(list(dom.iter("svg", class_="map")))
        assert tables > 3 * 39 and figures >= maps + 39 > 100  # tables, maps, charts and locators all counted


def test_the_methods_chapter_states_the_rules_methods_definitions_and_disclosure_as_configured(doms, published):
    raw = _raw_config()
    with duckdb.connect(str(published["path"]), read_only=True) as con:
        definitions = dict(con.execute("select indicator_id, description_de from indicators").fetchall())
    names = published["names"]
    for dom in doms.values():
        methods = next(dom.iter("section", id="methoden"))
        rule = " ".join(next(methods.iter("p", id="regel-aktionsraeume")).text().split())
        action = raw["action_areas"]
        assert f"mindestens {action['min_indicators_worse']} der {len(action['indicators'])} Regelindikatoren" in rule
        assert all(names[i] in rule for i in action["indicators"]) and names[action["quartier_indicator"]] in rule
        shown = {d.attrs["data-method"]: " ".join(d.text().split())
                 for d in methods.iter("div", class_="method-definition")}
        assert sorted(shown) == sorted(m["id"] for m in raw["classification_methods"])
        for method in raw["classification_methods"]:
            assert method["name_de"] in shown[method["id"]] and method["source"] in shown[method["id"]]
        custom = next(m for m in raw["classification_methods"] if m["id"] == "transfer_deviation")
        for dimension in custom["dimensions"]:  # as configured: its name, indicators, weights and classes
            assert dimension["name_de"] in shown["transfer_deviation"]
            for entry in dimension["indicators"]:
                assert names[entry["id"]] in shown["transfer_deviation"]
            for spec in dimension["classes"]:
                assert spec["label"] in shown["transfer_deviation"]
        assert "Transferleistungsquote (Gewicht 2)" in shown["transfer_deviation"]
        assert not re.search(r"\b[a-z]+_[a-z_0-9]+\b", " ".join(shown.values()))  # no internal ids
        rows = {r.attrs["data-indicator"]: [td.text() for td in r.iter("td")]
                for r in next(methods.iter("table", id="indikatoren-definitionen")).iter("tr")
                if "data-indicator" in r.attrs}
        assert rows.keys() == definitions.keys()
        assert all(rows[i][0] == names[i] and rows[i][1] == definitions[i] for i in rows)
        secrecy = " ".join(next(methods.iter("p", id="regel-geheimhaltung")).text().split())
        numbers = raw["publication"]
        assert f"Fallzahlen von 1 bis {numbers['min_count'] - 1}" in secrecy
        assert f"weniger als {numbers['min_population_for_rates']} Einwohnerinnen und Einwohnern" in secrecy
        assert f"kleinste veröffentlichte Fallzahl ist {numbers['min_count']}" in secrecy


def _german(text: str) -> float:
    return float(text.replace("\u2009", "").replace("\u2212", "-").replace(",", "."))


def _bounds(label: str) -> tuple[float, float, bool, int]:
    """(low, high, low included, decimals) of a legend label: "a bis b", "über a bis b" or a single value."""
    match = re.fullmatch(r"(über )?([−\d\u2009,]+)(?: bis ([−\d\u2009,]+))?", label)
    assert match, label
    low, high = match.group(2), match.group(3) or match.group(2)
    decimals = len(high.split(",")[1]) if "," in high else 0
    return _german(low), _german(high), match.group(1) is None, decimals


def test_map_classes_are_fixed_across_cycles_distinct_and_never_empty_and_counts_are_circles(doms, published):
    with duckdb.connect(str(published["path"]), read_only=True) as con:
        values = {(c, lv, a, i): v for c, lv, a, i, v in con.execute(
            "select report_cycle, area_level, area_id, indicator_id, value from area_indicators "
            "where suppression is null and value is not null").fetchall()}
        top_level = con.execute("select count(*) from areas where area_level = 'stadtbezirk'").fetchone()[0]
    classes: dict[tuple[str, str], dict[str, str]] = {}  # (indicator, level) -> label -> colour, over the cycles
    circle_scale: dict[tuple[str, str], set[tuple[float, float]]] = {}
    for cycle, dom in doms.items():
        for figure in dom.iter("figure", class_="choropleth"):
            indicator, level = figure.attrs["data-indicator"], figure.attrs["data-level"]
            svg = next(figure.iter("svg"))
            # furniture: a label per area, the Stadtbezirke's outlines, a scale bar and a north arrow
            area_ids = [p.attrs["data-area-id"] for p in svg.iter("path") if "data-area-id" in p.attrs]
            assert sorted(t.text() for t in svg.iter("text", class_="label")) == sorted(area_ids)
            assert len(list(svg.iter("path", class_="outline"))) == top_level
            assert next(svg.iter("g", class_="scale-bar"), None) is not None
            assert next(svg.iter("g", class_="north-arrow"), None) is not None
            legend = next(figure.iter("ul", class_="legend"))
            if legend.attrs["data-kind"] == "symbols":
                circles = {c.attrs["data-area-id"]: float(c.attrs["r"]) for c in svg.iter("circle", class_="symbol")}
                assert not list(legend.iter("li", class_="class"))
                for area_id, radius in circles.items():  # (radius, value) of every circle, over the cycles
                    circle_scale.setdefault((indicator, level), set()).add(
                        (radius, values[(cycle, level, area_id, indicator)]))
                published_ids = {a for (c, lv, a, i) in values if (c, lv, i) == (cycle, level, indicator)}
                # circles show counts only: whole numbers, none negative (a change or a rate is never a circle)
                assert all(values[(cycle, level, a, indicator)] >= 0 and
                           float(values[(cycle, level, a, indicator)]).is_integer() for a in published_ids), indicator
                assert set(circles) == published_ids & set(area_ids)
                continue
            entries = [(li.attrs["data-label"], li.attrs["data-colour"], int(next(li.iter("span", class_="areas"))
                        .text().strip("()"))) for li in legend.iter("li", class_="class")]
            labels = [label for label, _, _ in entries]
            assert len(set(labels)) == len(labels) and len({c for _, c, _ in entries}) == len(entries)
            assert all(n > 0 for _, _, n in entries), (cycle, indicator, level, entries)
            seen = classes.setdefault((indicator, level), {})
            for label, colour, _ in entries:
                assert seen.setdefault(label, colour) == colour, (indicator, level, label)
            # each area's fill is the class its published value falls in, and the counts add up
            counted = dict.fromkeys(labels, 0)
            for path in svg.iter("path"):
                value = values.get((cycle, level, path.attrs.get("data-area-id"), indicator))
                if value is None:
                    continue
                fitting = [(label, colour) for label, colour, _ in entries
                           if _in_class(value, *_bounds(label))]
                assert len(fitting) == 1 and path.attrs["fill"] == fitting[0][1], (cycle, indicator, value, entries)
                counted[fitting[0][0]] += 1
            assert counted == {label: n for label, _, n in entries}
    assert len(classes) > 50 and circle_scale
    for key, labels in classes.items():  # over the cycles the classes never overlap: the breaks are fixed
        intervals = sorted(_bounds(label)[:2] for label in labels)
        assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:], strict=False)), (key, labels)
    for key, circles in circle_scale.items():
        # the circle's area is proportional to the value on one scale for every cycle: the largest circle gives the
        # scale, every other radius is that of its value (up to the two decimals the SVG writes)
        largest_radius, largest_value = max(circles)
        for radius, value in circles:
            assert abs(radius - largest_radius * math.sqrt(value / largest_value)) <= 0.006, (key, radius, value)


def _in_class(value: float, low: float, high: float, low_included: bool, decimals: int) -> bool:
    shown = round(value, decimals)
    return (low <= shown if low_included else low < shown) and shown <= high


@given(values=st.lists(st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
                                 st.sampled_from([0.0, 0.04, 0.05, 1.0, 2.25])), min_size=1, max_size=60),
       decimals=st.sampled_from([0, 1]), direction=st.sampled_from(["neutral", "higher_is_worse",
                                                                   "higher_is_better"]))
def test_fixed_classes_have_distinct_bounds_and_no_empty_class(values, decimals, direction):
    from social_monitor.report.maps import Classes

    classes = Classes.fixed(values, direction, decimals=decimals)
    labels = classes.labels()
    assert 1 <= len(labels) <= 5 and len(set(labels)) == len(labels)
    assert len(set(classes.colours)) == len(classes.colours)
    members = [0] * len(labels)
    for value in values:
        fitting = [i for i, label in enumerate(labels) if _in_class(value, *_bounds(label))]
        assert fitting == [classes.index(value)], (value, labels)
        members[fitting[0]] += 1
    assert all(members), (labels, members)
    legend = classes.legend(values)
    assert [n for _, _, n in legend] == members


RESIDENTS_WORDS = re.compile(r"\bEinwohner(?:innen)?n?\b")


def test_the_catalogue_speaks_one_german_without_internal_names():
    rows = _csv(CATALOGUE_CSV)
    for row in rows:
        for column in ("name_de", "description_de", "unit"):
            text = row[column]
            assert not re.search(r"\b[a-z]+_[a-z0-9_]+\b|\.ya?ml\b|city\.yml", text), (row["indicator_id"], text)
            # one residents term: always the pair, never "Einwohner" alone
            plain = re.sub(r"Einwohnerinnen und Einwohnern?\b", "", text)
            assert not RESIDENTS_WORDS.search(plain), (row["indicator_id"], column, text)
        assert not re.match(r"Anteil (unter|ab) \d", row["name_de"]), row["name_de"]  # "Anteil der unter 18-Jährigen"
        assert not re.match(r"Anteil [A-ZÄÖÜ][a-zäöüß]+e\b", row["name_de"]), row["name_de"]  # "Anteil der ..."
    names = {r["indicator_id"]: r["name_de"] for r in rows}
    assert names["share_age_0_17"] == "Anteil der unter 18-Jährigen"


def test_the_city_sets_the_residents_term_once_and_table_headers_hyphenate(published, tmp_path, reports):
    folder = copy_city("dortmund", tmp_path / "stadt", publisher={
        **_raw_config()["publisher"], "residents": {"plural": "Bewohnerinnen und Bewohner",
                                                    "dative": "Bewohnerinnen und Bewohnern"}})
    cycle = max(published["cycles"])
    written = generate_report(published["path"], tmp_path / "out", cycles=[cycle], city_dir=folder)
    text = written[0].read_text(encoding="utf-8").replace("\u00ad", "")  # without the soft hyphens
    assert not RESIDENTS_WORDS.search(text), RESIDENTS_WORDS.search(text).group(0)
    assert "Bewohnerinnen und Bewohner" in text and "weniger als 100 Bewohnerinnen und Bewohnern" in text
    assert "und Bewohnerinnen und" not in text
    # the shipped term, in the report of the shipped city, once (never "Einwohnerinnen und Einwohnerinnen und ...")
    shipped = reports[cycle].read_text(encoding="utf-8").replace("\u00ad", "")
    assert "Einwohnerinnen und Einwohner" in shipped and "und Einwohnerinnen und" not in shipped

    dom = Dom(reports[cycle].read_text(encoding="utf-8")).root
    assert dom.children[0].tag == "html" and dom.children[0].attrs["lang"] == "de"
    css = (Path(generate_report.__code__.co_filename).parent / "templates" / "bericht.css").read_text()
    assert re.search(r"table\.data th \{[^}]*hyphens: auto", css)
    headers = [th.text() for th in next(dom.iter("table", id="tabelle-gebiete")).iter("th")]
    long_words = [w for h in headers for w in re.findall(r"[\w\u00ad]+", h) if len(w.replace("\u00ad", "")) >= 12]
    assert long_words and all("\u00ad" in w for w in long_words), long_words
    # the soft hyphens sit between syllables: removing them gives the catalogue's name back (and a unit other
    # than % in brackets after it)
    assert {re.sub(r" \((je [^)]*)\)$", "", h.replace("\u00ad", "")) for h in headers[1:]} <= \
        set(published["names"].values())


def test_the_steckbrief_trend_is_a_chart_of_the_area_and_the_city(doms, published):
    with duckdb.connect(str(published["path"]), read_only=True) as con:
        shown = {(c, a, i) for c, a, i in con.execute(
            "select report_cycle, area_id, indicator_id from area_indicators where area_level = 'sozialraum' "
            "and suppression is null and value is not null").fetchall()}
        names = dict(con.execute("select indicator_id, name_de from indicators").fetchall())
    trend_indicators = ["transfer_rate", "transfer_rate_age_0_14", "sgb2_rate", "transfer_rate_age_65_plus"]
    for cycle, dom in doms.items():
        cycles = [c for c in published["cycles"] if c <= cycle]
        for article in dom.iter("article", class_="steckbrief"):
            area = article.attrs["data-area"]
            chart = next(article.iter("svg", class_="trend"))
            for indicator in trend_indicators:
                own = [p for p in chart.iter("polyline", class_="gebiet")
                       if p.attrs["data-indicator"] == names[indicator]]
                city = [p for p in chart.iter("polyline", class_="stadt")
                        if p.attrs["data-indicator"] == names[indicator]]
                points = sum(len(p.attrs["points"].split()) for p in own)
                assert points == sum((c, area, indicator) in shown for c in cycles), (cycle, area, indicator)
                assert sum(len(p.attrs["points"].split()) for p in city) == len(cycles)


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install chromium): no PDF printed")
def test_the_report_command_prints_a_pdf_beside_the_html(published, tmp_path, capsys, monkeypatch):
    cycle = min(published["cycles"])
    out = tmp_path / "bericht"
    assert cli_main(["report", "--published", str(published["path"]), "--out", str(out), "--cycle", str(cycle),
                     "--pdf", "auto"]) == 0  # as `make report` calls it
    pdf = out / f"bericht_{cycle}.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert pages > 39  # a page per Steckbrief at least
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "Impressum" in text and f"Bericht zur sozialen Lage {cycle}" in text
        # no page ends with a heading (the print styles keep a heading with what follows it)
        dom = Dom((out / f"bericht_{cycle}.html").read_text(encoding="utf-8")).root
        def texts(*tags: str) -> set[str]:
            return {" ".join(node.text().replace("\u00ad", "").split()) for tag in tags for node in dom.iter(tag)}

        # a heading's text that is also a table cell's (a map's title is an indicator's name) tells nothing
        headings = texts("h2", "h3", "h4") - texts("td", "th")
        pages = [[line.strip() for line in page.splitlines() if line.strip()] for page in text.split("\f")]
        endings = [page[-1] for page in pages if page]
        assert len(endings) > 39 and not [line for line in endings if line in headings], \
            [line for line in endings if line in headings]
    # without a chromium the command says so and writes the HTML only
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    other = tmp_path / "ohne"
    assert cli_main(["report", "--published", str(published["path"]), "--out", str(other), "--cycle", str(cycle),
                     "--pdf", "auto"]) == 0
    assert "no PDF: chromium is not installed" in capsys.readouterr().out
    assert [p.name for p in other.iterdir()] == [f"bericht_{cycle}.html"]


# --- issue 13, the report's wording: units of differences, comparisons as printed, reasons, names, print ----------

def _number(text: str) -> float:
    """A number as the report prints it (thin space thousands, decimal comma, the minus sign) back to a float."""
    return float(text.replace("\u2009", "").replace(".", "").replace(",", ".").replace("\u2212", "-")
                 .replace("+", ""))


def _indicator_rows(dom: Node):
    for table in dom.iter("table", class_="indicators"):
        for row in table.iter("tr"):
            if "data-indicator" in row.attrs:
                yield table, row, [td for td in row.children if td.tag == "td"]


def test_the_difference_to_the_city_is_in_the_unit_of_its_indicator_and_compares_the_printed_values(doms, published):
    with duckdb.connect(str(published["path"]), read_only=True) as con:
        meta = {r[0]: r[1:] for r in con.execute("select indicator_id, unit, direction from indicators").fetchall()}
    seen_units, equal = set(), 0
    for cycle, dom in doms.items():
        for table in dom.iter("table", class_="indicators"):
            header = " ".join(th.text().replace("\u00ad", "") for th in next(table.iter("thead")).iter("th"))
            assert "Prozentpunkte" not in header and "Differenz zur Stadt" in header
        for _table, row, tds in _indicator_rows(dom):
            indicator = row.attrs["data-indicator"]
            unit, direction = meta[indicator]
            own, city, difference = (td.text() for td in tds[1:4])
            marked = "worse" in (tds[1].attrs.get("class") or "").split()
            if not difference:
                continue
            if difference == "wie die Stadt":  # equal as printed: never marked worse
                equal += 1
                assert own == city and not marked, (cycle, indicator, own, city)
                continue
            number, _, shown_unit = difference.partition(" ")
            # percentages differ by percentage points, anything else (je 1.000, je 100 ...) in its own unit
            assert shown_unit == ("%-Punkte" if unit == "%" else unit), (indicator, difference, unit)
            seen_units.add(unit)
            # the difference of the printed values, not of the unrounded ones
            assert own != city and abs(_number(number) - (_number(own) - _number(city))) < 1e-9, (own, city, number)
            worse = {"higher_is_worse": _number(own) > _number(city),
                     "higher_is_better": _number(own) < _number(city)}.get(direction, False)
            assert marked == worse, (cycle, indicator, own, city, direction)
    assert {"%", "je 1.000"} <= seen_units and equal > 0, (seen_units, equal)
    # the table of all areas is "in %" where its header names no other unit
    for dom in doms.values():
        headers = {th.attrs["data-indicator"]: th.text().replace("\u00ad", "")
                   for th in next(dom.iter("table", id="tabelle-gebiete")).iter("th") if "data-indicator" in th.attrs}
        assert {meta[i][0] for i in headers} > {"%"}
        for indicator, header in headers.items():
            unit = meta[indicator][0]
            assert (unit == "%" and "(" not in header) or unit in header, (indicator, header, unit)


@given(shown=st.integers(-20_000, 20_000), decimals=st.sampled_from([0, 1, 2]),
       offsets=st.tuples(*[st.sampled_from([-0.5, -0.49999, 0.0, 0.49999, 0.5, 0.50001]) for _ in range(2)]),
       step=st.integers(-2, 2), direction=st.sampled_from(["higher_is_worse", "higher_is_better", "neutral"]))
def test_comparisons_use_the_values_as_printed_near_the_rounding_border(shown, decimals, offsets, step, direction):
    from social_monitor.report.maps import german_number
    from social_monitor.report.wording import compare_as_shown

    unit = 10.0 ** -decimals
    value = (shown + offsets[0]) * unit  # around the border between two printed numbers
    city = (shown + step + offsets[1]) * unit
    relation, difference = compare_as_shown(value, city, decimals, direction)
    printed_value, printed_city = german_number(value, decimals), german_number(city, decimals)
    if printed_value == printed_city:
        assert (relation, difference) == ("equal", 0.0), (printed_value, printed_city)
        return
    expected = _number(printed_value) - _number(printed_city)
    assert abs(difference - expected) < unit / 1000, (printed_value, printed_city, difference)
    higher = _number(printed_value) > _number(printed_city)
    assert relation == {"higher_is_worse": "worse" if higher else "better",
                        "higher_is_better": "better" if higher else "worse",
                        "neutral": "higher" if higher else "lower"}[direction]


def _genitive_of(base: str, phrase: str) -> bool:
    """True when ``phrase`` is ``base`` in the genitive: "der" + the name as it is (a feminine or plural head:
    "der SGB-II-Quote unter 15 Jahren"), or "des" + the name with one word taking -s/-es (a masculine or neuter
    head: "des Arbeitslosenanteils", "des Anteils der Langzeitarbeitslosen")."""
    article, _, rest = phrase.partition(" ")
    if article == "der":
        return rest == base
    words, inflected = base.split(), rest.split()
    if article != "des" or len(words) != len(inflected):
        return False
    changed = [(w, v) for w, v in zip(words, inflected, strict=True) if w != v]
    return len(changed) == 1 and changed[0][1] in (changed[0][0] + "s", changed[0][0] + "es")


def test_every_change_names_its_base_indicator_as_the_base_is_named():
    rows = {r["indicator_id"]: r for r in _csv(CATALOGUE_CSV)}
    changes = [r for r in rows.values() if r["change_of_indicator"]]
    assert len(changes) >= 4
    for row in changes:
        base = rows[row["change_of_indicator"]]["name_de"]
        name = row["name_de"]
        assert name.startswith("Veränderung ") and _genitive_of(base, name.removeprefix("Veränderung ")), (name, base)
    # the check itself tells a wrong name from a right one
    assert not _genitive_of("Arbeitslosenanteil", "der Arbeitslosenquote")
    assert _genitive_of("Arbeitslosenanteil", "des Arbeitslosenanteils")


NUMBER = r"[+\u2212-]?[\d.]+,\d+"
REASON_PART = re.compile(rf"(?P<name>[^;:|()]+?) (?P<value>{NUMBER}) % \(Stadt (?P<city>{NUMBER}) %"
                         rf"(?:; (?P<deviation>{NUMBER}) %-Punkte(?:, Gewicht \d+)?)?\)")


def test_every_reason_line_quotes_the_numbers_that_put_the_area_in_its_class(doms, published):
    """The action areas' reasons name indicators worse than the city as printed; a transfer_deviation line names
    the indicators on its class's side of the city value (a class-1 area, better than the city, never quotes a
    value worse than the city), with value - city = the printed deviation."""
    method = next(m for m in _raw_config()["classification_methods"] if m.get("id") == "transfer_deviation")
    lines = {"action": 0, "better": 0, "worse": 0}
    for cycle, dom in doms.items():
        for td in next(dom.iter("section", id="aktionsraeume")).iter("td", class_="reasons"):
            for part in td.text().split("; "):
                if not part:
                    continue
                found = REASON_PART.fullmatch(part.strip())
                assert found, (cycle, part)
                assert _number(found["value"]) > _number(found["city"]), (cycle, part)  # the rule's indicators
                lines["action"] += 1
        for p in dom.iter("p", class_="method"):
            head = next(p.iter("strong")).text()
            if head != f"{method['name_de']}:":
                continue
            text = " ".join(p.text().replace(head, "", 1).split())  # the line after the method's name
            index = re.search(rf"\(({NUMBER})\)", text)
            if index is None:  # the reasons withheld where the publication suppressed a value: no number at all
                assert not REASON_PART.search(text) and "unterdrückt" in text, text
                continue
            side = _number(index[1])
            rest = text[index.end():]
            parts = list(REASON_PART.finditer(rest.removeprefix(": ")))
            assert "; ".join(found[0].strip() for found in parts) == rest.removeprefix(": ").strip(), text
            if side != 0:
                assert parts, text  # the numbers that triggered the class are quoted
            for found in parts:
                deviation = _number(found["value"]) - _number(found["city"])
                assert abs(deviation - _number(found["deviation"])) < 1e-6, text
                assert deviation * side > 0, text  # on the class's side of the city value
                lines["better" if side < 0 else "worse"] += 1
    assert lines["action"] and lines["better"] and lines["worse"], lines


def test_a_class_one_area_with_one_worse_indicator_is_explained_by_its_better_ones():
    from social_monitor.classification import classify, parse_method

    method = parse_method(next(m for m in _raw_config()["classification_methods"] if m.get("id")
                               == "transfer_deviation"))
    # the area is far below the city on the transfer rate (weight 2) and the rate under 15, and a little above
    # on the rate from 65: weighted mean (2 * -6 - 5 + 1) / 4 = -4, class 1 (below -2)
    values = {"transfer_rate": (10.0, 16.0), "transfer_rate_age_0_14": (25.0, 30.0),
              "transfer_rate_age_65_plus": (8.0, 7.0)}
    rows = [{"report_cycle": 2025, "area_id": area, "indicator_id": i, "value": v + shift, "city_value": c}
            for area, shift in (("A", 0.0), ("B", 12.0)) for i, (v, c) in values.items()]
    names = {"transfer_rate": ("Transferleistungsquote", "%"), "transfer_rate_age_0_14": ("unter 15", "%"),
             "transfer_rate_age_65_plus": ("ab 65", "%")}
    result = classify(pl.DataFrame(rows, schema_overrides={"report_cycle": pl.Int32}), method,
                      indicator_names=names)
    reasons = dict(result.areas.select("area_id", "reasons").iter_rows())
    assert reasons["A"].startswith("Abweichung vom Stadtwert günstiger als die Stadt (-4,00): ")
    assert "Transferleistungsquote 10,0 % (Stadt 16,0 %; -6,0 %-Punkte, Gewicht 2)" in reasons["A"]
    assert "unter 15 25,0 % (Stadt 30,0 %; -5,0 %-Punkte)" in reasons["A"]
    assert "ab 65" not in reasons["A"]  # worse than the city: not a reason for a class better than the city
    assert "ab 65 20,0 % (Stadt 7,0 %; +13,0 %-Punkte)" in reasons["B"]


def test_print_styles_keep_headings_with_what_follows_and_figures_whole(reports):
    style = re.search(r"<style>(.*?)</style>", reports[max(reports)].read_text(encoding="utf-8"), re.S)[1]
    prints = "".join(re.findall(r"@media print \{(.*?)\n\}", style, re.S))
    rules = {selector.strip(): body for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", prints)
             for selector in selectors.split(",")}
    for heading in ("h2", "h3", "h4"):
        assert "break-after: avoid" in rules.get(heading, ""), heading
    for block in ("figure", "table.data tr", ".quelle", "figcaption", ".legend"):
        assert "break-inside: avoid" in rules.get(block, ""), block


def _materialize_report(published: Path, cycle: int) -> dict:
    result = dg.materialize([report_bericht], resources={"pipeline": PipelineSettings(
        landing_dir=str(published.parent), published_path=str(published),
        config_path=str(load_settings({}).config_path))},
        run_config={"ops": {"report__bericht": {"config": {"cycles": [cycle]}}}})
    assert result.success
    return result.asset_materializations_for_node("report__bericht")[0].metadata


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install chromium): no PDF printed")
def test_the_asset_prints_the_pdf_or_removes_the_older_one_and_the_check_finds_a_stale_pdf(published, tmp_path,
                                                                                           monkeypatch):
    from orchestration.checks import every_published_cycle_has_its_report

    copy = tmp_path / "published" / "marts.duckdb"
    copy.parent.mkdir()
    shutil.copy(published["path"], copy)
    cycle = min(published["cycles"])
    html, pdf = copy.parent / "report" / f"bericht_{cycle}.html", copy.parent / "report" / f"bericht_{cycle}.pdf"
    pdf.parent.mkdir()
    pdf.write_bytes(b"%PDF-1.4 an older report\n%%EOF\n")
    os.utime(pdf, (1_000_000_000, 1_000_000_000))
    monkeypatch.delenv("SOCIAL_MONITOR_REPORT_PDF", raising=False)
    pipeline = PipelineSettings(landing_dir=str(tmp_path), published_path=str(copy),
                                config_path=str(load_settings({}).config_path))

    # with chromium (as `make run` and `make report-cycle` run it): the cycle's HTML and a new PDF after it
    metadata = _materialize_report(copy, cycle)
    assert metadata["pdf"].value == "printed 1 PDF(s)"
    assert pdf.read_bytes().startswith(b"%PDF-") and b"an older report" not in pdf.read_bytes()
    assert pdf.stat().st_mtime_ns >= html.stat().st_mtime_ns
    assert metadata[f"pdf_bytes_bericht_{cycle}"].value == pdf.stat().st_size
    assert every_published_cycle_has_its_report(pipeline=pipeline).metadata[str(cycle)].value == \
        f"bericht_{cycle}.html: ok"

    # a PDF older than its HTML fails the check, naming it
    os.utime(pdf, (html.stat().st_mtime - 60, html.stat().st_mtime - 60))
    check = every_published_cycle_has_its_report(pipeline=pipeline)
    assert not check.passed and check.metadata[str(cycle)].value == \
        f"bericht_{cycle}.html: bericht_{cycle}.pdf older than the HTML"
    assert str(cycle) in check.metadata["cycles_to_rerun"].value

    # without chromium: the HTML alone, the older PDF removed, and the metadata says so
    monkeypatch.setenv("PATH", str(tmp_path / "no-chromium"))
    metadata = _materialize_report(copy, cycle)
    assert not pdf.exists() and html.exists()
    assert metadata["pdf"].value.startswith("no PDF: chromium is not installed")
    assert f"removed the PDF(s) older than their new HTML: bericht_{cycle}.pdf" in metadata["pdf"].value
    assert every_published_cycle_has_its_report(pipeline=pipeline).metadata[str(cycle)].value == \
        f"bericht_{cycle}.html: ok"
