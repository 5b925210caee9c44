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
from social_monitor.settings import CITIES_DIR, DBT_PROJECT_DIR, CityConfig, load_settings
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
    assert cli_main(["report", "--published", str(published["path"]), "--out", str(out)]) == 0
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
        header = [th.text() for th in quartiere.iter("th")]
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
        areas = [(a.level, a.area_id, a.area_name, "published") for a in geography.areas]
        areas.append(("city", "city", "Berlin", "published"))
        hierarchy = [row for row in containers(geography)]
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
            assert all(next(a.iter("svg"), None) is None for a in profiles)  # no locator on the old version
        else:
            assert missing == []
            assert "Aktionsräume 2020 (Bezirksregionen)" in text
