"""Adding a level is a change to data only (issue 11, part 2): a copy of the sample city gets a level
"Bezirksregion" between Stadtbezirk and the city (two regions, by data in its geography folder only, and a map of
it in the report by its city.yml), the pipeline runs end to end on the copy, and the new level is in the
published marts, adds up, is covered by the disclosure control and is mapped in the report."""

from __future__ import annotations

import csv
import re

import duckdb
import pytest
import yaml

from social_monitor.publish import read_hierarchy
from social_monitor.settings import DEFAULT_CITY, copy_city
from tests.pipeline_env import BIN, BUILD_MARTS, INGEST, SCALE, environment, sh

NORTH = {"04", "05", "06", "07", "08", "09", "10", "11"}  # Stadtbezirke of region 1 (chosen here, not computed)


def add_region_level(folder) -> None:
    geography = folder / "geography"
    levels = yaml.safe_load((geography / "levels.yml").read_text(encoding="utf-8"))
    for level in levels["levels"]:
        if level["id"] == "stadtbezirk":
            level["parent"] = "bezirksregion"
    levels["levels"].insert(0, {"id": "bezirksregion", "name_de": "Bezirksregion", "plural_de": "Bezirksregionen",
                                "parent": "city", "key_pattern": "[0-9]", "areas": "bezirksregionen.csv"})
    (geography / "levels.yml").write_text(yaml.safe_dump(levels, allow_unicode=True, sort_keys=False),
                                          encoding="utf-8")
    (geography / "bezirksregionen.csv").write_text("area_id,area_name\n1,Nord\n2,Süd\n", encoding="utf-8")
    with open(geography / "stadtbezirke.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(geography / "stadtbezirke.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, [*rows[0], "parent_id"])
        writer.writeheader()
        writer.writerows({**row, "parent_id": "1" if row["area_id"] in NORTH else "2"} for row in rows)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("added_level")
    city = copy_city(DEFAULT_CITY, root / "city",
                     report={"map_levels": ["sozialraum", "statistischer_bezirk", "bezirksregion"]})
    add_region_level(city)
    env = {**environment(root), "SOCIAL_MONITOR_CITY": str(city)}
    sh(env, str(BIN / "social-monitor"), "generate", "--out", str(root / "data" / "landing"), "--scale", SCALE)
    sh(env, *INGEST, "--partition-range", "2007...2025")
    sh(env, *BUILD_MARTS)
    return {"published": root / "data" / "published" / "marts.duckdb",
            "report": root / "data" / "published" / "report" / "bericht_2025.html"}


def test_the_added_level_is_published_adds_up_and_is_protected(run):
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        levels = con.execute("select area_level, name_de, parent_level from area_levels "
                             "order by level_order").fetchall()
        regions = con.execute("select area_id, area_name from areas where area_level = 'bezirksregion' "
                              "order by 1").fetchall()
        per_cycle = con.execute("select report_cycle, count(distinct area_id) from area_indicators "
                                "where area_level = 'bezirksregion' group by 1 order by 1").fetchall()
        # residents of each region = the sum over its Stadtbezirke as written above (where both are published)
        sums = con.execute(
            """
            select r.report_cycle, r.area_id, r.numerator,
                   sum(s.numerator) filter (where (s.area_id in ?) = (r.area_id = '1')) as from_stadtbezirke,
                   count(*) filter (where (s.area_id in ?) = (r.area_id = '1') and s.numerator is null) as hidden
            from area_indicators r join area_indicators s
              on s.report_cycle = r.report_cycle and s.indicator_id = r.indicator_id and s.area_level = 'stadtbezirk'
            where r.area_level = 'bezirksregion' and r.indicator_id = 'residents'
            group by all
            """, [sorted(NORTH), sorted(NORTH)]).fetchall()
        hierarchy = dict(con.execute("select area_id, container_id from area_hierarchy where area_level = "
                                     "'stadtbezirk' and container_level = 'bezirksregion'").fetchall())
        audit = con.execute("select sum(recoverable_by_subtraction + recoverable_by_linear_program "
                            "+ narrower_than_protection), count(*) from disclosure_audit").fetchone()
        steps = [(part, total) for part, total, _ in read_hierarchy(con).steps]
    assert levels[:3] == [("city", "Gesamtstadt", None), ("bezirksregion", "Bezirksregion", "city"),
                          ("stadtbezirk", "Stadtbezirk", "bezirksregion")]
    assert regions == [("1", "Nord"), ("2", "Süd")]
    assert per_cycle == [(2007, 2), (2012, 2), (2018, 2), (2025, 2)]
    assert hierarchy == {s: "1" if s in NORTH else "2" for s in hierarchy}
    assert len(hierarchy) == 12
    checked = [(c, a, n, total) for c, a, n, total, hidden in sums if n is not None and hidden == 0]
    assert checked and all(n == total for _, _, n, total in checked)
    assert audit == (0, 4)  # the audit ran over every cycle with the new level's relations; nothing recoverable
    # the disclosure control adds Stadtbezirke up to their region and regions up to the city
    assert ("stadtbezirk", "bezirksregion") in steps and ("bezirksregion", "city") in steps
    assert ("stadtbezirk", "city") not in steps


def test_the_added_level_is_mapped_in_the_report(run):
    """The report draws a map of the new level per indicator: its two regions, dissolved from the boundaries of
    the base areas, named with the level's German plural."""
    html = run["report"].read_text(encoding="utf-8")
    maps = re.findall(r'<figure class="choropleth" data-level="bezirksregion".*?</figure>', html, flags=re.S)
    assert maps and all(sorted(set(re.findall(r'data-area-id="([^"]+)"', m))) == ["1", "2"] for m in maps)
    assert "Bezirksregionen" in html
