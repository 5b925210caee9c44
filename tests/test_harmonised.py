"""The Berlin sample end to end, and the harmonised series across a geography reform (issue 11, parts 3 and 4):
the Berlin sample city with one cycle on each LOR version (2018 on the 447 Planungsräume, 2020 on the 542),
ingested, built by dbt, classified, published (each cycle on its own version and on the current one), exported
and reported by real Dagster runs (`build_marts`, as `make run` does) into real DuckDB files.

Oracles, never the models under test: the persons as delivered (``raw.register``, main residence), the
conversion table read here with csv (config/berlin/geography/conversion.csv) and the placement rule written
out here in Python (the MD5 of the person key against the cumulative weights of the old area's rows, ordered
by new key).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections import Counter, defaultdict

import duckdb
import pytest
import yaml

from social_monitor.catalogue import read_catalogue
from social_monitor.disclosure import Catalogue, DisclosureRule
from social_monitor.publish import read_audit
from social_monitor.settings import PROJECT_DIR, city_dir, dbt_vars_json, load_settings
from tests.pipeline_env import BIN, BUILD_MARTS, INGEST, environment, sh

BERLIN = city_dir("berlin")
OLD, NEW = 2018, 2020
SCALE = "0.05"  # the generator's smallest scale


def conversion() -> dict[str, list[tuple[str, float]]]:
    """Old Planungsraum -> [(new Planungsraum, weight)], as the city folder's file says."""
    rows: dict[str, list[tuple[str, float]]] = defaultdict(list)
    with open(BERLIN / "geography" / "conversion.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["old_area_id"]].append((row["new_area_id"], float(row["weight"])))
    return rows


def placed(person_key: str, targets: list[tuple[str, float]]) -> str:
    number = int(hashlib.md5(person_key.encode()).hexdigest()[:15], 16) / 16**15
    upper = 0.0
    for position, (new_id, weight) in enumerate(sorted(targets)):
        upper += weight
        if number < upper or position == len(targets) - 1:
            return new_id
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("harmonised")
    env = {**environment(root), "SOCIAL_MONITOR_CITY": "berlin"}
    sh(env, str(BIN / "social-monitor"), "generate", "--out", str(root / "data" / "landing"), "--scale", SCALE,
       "--cycles", str(OLD), str(NEW), "-q")
    sh(env, *INGEST, "--partition-range", f"{OLD}...{NEW}")
    logs = sh(env, *BUILD_MARTS)
    with duckdb.connect(str(root / "data" / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        persons = con.execute("select report_cycle, person_key, unterbezirk_id from raw.register "
                              "where residence_type = 'H'").fetchall()
        own = con.execute("select report_cycle, area_level, area_id, numerator from marts.area_indicators "
                          "where indicator_id = 'residents'").fetchall()
        harmonised = con.execute(
            "select report_cycle, area_level, area_id, numerator, is_estimate, geography_version "
            "from marts.area_indicators_harmonised where indicator_id = 'residents'").fetchall()
        dynamics = con.execute(
            "select count(*) from classification.area_classification_dimensions "
            "where method_id = 'berlin_mss' and report_cycle = ? and dimension_id = 'dynamics' "
            "and index_value is not null", [NEW]).fetchone()[0]
        # D1 of 2020 (marts) beside the two rates it should be the difference of: 2020 on its own version and
        # 2018 restated on it (area_indicators_harmonised); the change is computed in dbt
        changes = con.execute(
            "select c.area_id, c.value, n.value, h.value from marts.area_indicators c "
            "join marts.area_indicators n on n.report_cycle = c.report_cycle and n.area_level = c.area_level "
            " and n.area_id = c.area_id and n.indicator_id = 'unemployment_rate' "
            "join marts.area_indicators_harmonised h on h.report_cycle = ? and h.area_level = c.area_level "
            " and h.area_id = c.area_id and h.indicator_id = 'unemployment_rate' "
            "where c.report_cycle = ? and c.area_level = 'planungsraum' "
            "and c.indicator_id = 'unemployment_rate_change'", [OLD, NEW]).fetchall()
    return {"root": root, "env": env, "logs": logs, "persons": persons, "own": {(c, lv, a): n for c, lv, a, n in own},
            "harmonised": {(c, lv, a): (n, est, version) for c, lv, a, n, est, version in harmonised},
            "dynamics": dynamics, "changes": changes}


def test_own_version_counts_are_the_delivered_persons(warehouse):
    """Each cycle on its own version: residents per Planungsraum = main residents delivered with its key."""
    for cycle in (OLD, NEW):
        delivered = Counter(area for c, _, area in warehouse["persons"] if c == cycle)
        own = {a: n for (c, level, a), n in warehouse["own"].items() if c == cycle and level == "planungsraum"}
        assert {a: n for a, n in own.items() if n} == delivered
        assert len(own) == {OLD: 447, NEW: 542}[cycle]


def test_harmonised_2018_is_every_person_placed_by_the_conversion(warehouse):
    """2018 on the LOR of 2021: each 2018 resident counted in the successor the rule picks from its key."""
    rows = conversion()
    expected = Counter(placed(key, rows[area]) for c, key, area in warehouse["persons"] if c == OLD)
    harmonised = {a: n for (c, level, a), (n, _, _) in warehouse["harmonised"].items()
                  if c == OLD and level == "planungsraum"}
    assert len(harmonised) == 542
    assert {a: n for a, n in harmonised.items() if n} == expected


def test_harmonised_2018_keeps_the_city_and_bezirk_totals(warehouse):
    """Nobody is lost or invented: the city and every Bezirk (no Planungsraum moves between Bezirke in the
    conversion) hold as many 2018 residents restated on the new version as on the old one."""
    assert all(old[:2] == new[:2] for old, targets in conversion().items() for new, _ in targets)
    for level in ("city", "bezirk"):
        own = {a: n for (c, lv, a), n in warehouse["own"].items() if c == OLD and lv == level}
        harmonised = {a: n for (c, lv, a), (n, _, _) in warehouse["harmonised"].items() if c == OLD and lv == level}
        assert harmonised == own, level
    assert sum(n for (c, lv, _), (n, _, _) in warehouse["harmonised"].items()
               if c == OLD and lv == "planungsraum") == warehouse["own"][(OLD, "city", "city")]


def test_a_renamed_planungsraum_keeps_its_count_and_is_exact(warehouse):
    """An old Planungsraum converted whole onto a new one that nothing else feeds: same count, no estimate."""
    rows = conversion()
    fed_by = Counter(new for targets in rows.values() for new, _ in targets)
    renamed = {old: targets[0][0] for old, targets in rows.items() if len(targets) == 1 and fed_by[targets[0][0]] == 1}
    assert len(renamed) > 300
    for old, new in renamed.items():
        count, is_estimate, _ = warehouse["harmonised"][(OLD, "planungsraum", new)]
        assert (count, is_estimate) == (warehouse["own"][(OLD, "planungsraum", old)], False), (old, new)


def test_estimates_are_flagged_exactly_where_a_split_feeds(warehouse):
    """A Planungsraum of 2021 is an estimate for 2018 exactly when part of a split old one goes to it; the
    Bezirke (holding every part of each split) and the city are exact; 2020 (the current version) is never an
    estimate; every row names the version 2020."""
    split_parts = {new for targets in conversion().values() if len(targets) > 1 for new, _ in targets}
    flagged = {a for (c, lv, a), (_, est, _) in warehouse["harmonised"].items()
               if c == OLD and lv == "planungsraum" and est}
    assert flagged == split_parts
    assert not any(est for (c, lv, _), (_, est, _) in warehouse["harmonised"].items()
                   if c == NEW or lv in ("city", "bezirk"))
    assert {version for _, _, version in warehouse["harmonised"].values()} == {NEW}


def test_the_dynamics_of_2020_compare_with_2018_on_the_new_version(warehouse):
    """The change since 2018 of the Planungsräume of 2021 (D1, a catalogue indicator computed in dbt) is the
    rate of 2020 minus the rate of 2018 restated on the LOR of 2021, for every Planungsraum of 2021, and the
    MSS method classifies the dynamics of 2020 from it."""
    assert warehouse["dynamics"] > 200
    changes = warehouse["changes"]
    assert len(changes) == 542
    with_value = [(change, now, then) for _, change, now, then in changes if now is not None and then is not None]
    assert len(with_value) > 500
    assert all(abs(change - (now - then)) < 1e-9 for change, now, then in with_value)


def test_a_changed_conversion_recounts_the_placement(warehouse, tmp_path):
    """int_base_area_counts is incremental: a changed weight of a split (here the two weights of one old area
    swapped, on a copy of the warehouse) recounts, and the persons of that area follow the new weights."""
    rows = conversion()
    old, targets = next((old, targets) for old, targets in sorted(rows.items())
                        if len(targets) == 2 and abs(targets[0][1] - targets[1][1]) > 0.2)
    swapped = [(new, weight) for (new, _), (_, weight) in zip(targets, reversed(targets), strict=True)]
    copy = tmp_path / "warehouse.duckdb"  # the file name is the catalogue dbt writes to
    shutil.copy(warehouse["root"] / "data" / "warehouse" / "warehouse.duckdb", copy)
    with duckdb.connect(str(copy)) as con:
        for new, weight in swapped:
            con.execute("update reference.area_conversion set weight = ? where old_area_id = ? and new_area_id = ?",
                        [weight, old, new])
    sh({**warehouse["env"], "SOCIAL_MONITOR_WAREHOUSE": str(copy)}, str(BIN / "dbt"), "run", "--project-dir",
       str(PROJECT_DIR / "dbt_project"), "--profiles-dir", str(PROJECT_DIR / "dbt_project"),
       "-s", "int_base_area_successors", "int_base_area_counts",
       "--vars", dbt_vars_json(load_settings(warehouse["env"])))
    with duckdb.connect(str(copy), read_only=True) as con:
        counted = dict(con.execute("select current_base_area_id, sum(residents) from intermediate.int_base_area_counts "
                                   "where report_cycle = ? and base_area_id = ? group by 1", [OLD, old]).fetchall())
    expected = Counter(placed(key, swapped) for c, key, area in warehouse["persons"] if c == OLD and area == old)
    assert counted == expected
    before = Counter(placed(key, targets) for c, key, area in warehouse["persons"] if c == OLD and area == old)
    assert expected != before


def areas_valid(cycle: int, file: str = "planungsraeume.csv") -> set[str]:
    """The keys of a level valid in ``cycle``, read here from the city folder's file."""
    with open(BERLIN / "geography" / file, encoding="utf-8", newline="") as handle:
        return {row["area_id"] for row in csv.DictReader(handle)
                if (not row["valid_from"] or int(row["valid_from"]) <= cycle)
                and (not row["valid_to"] or cycle <= int(row["valid_to"]))}


def published(warehouse, sql: str, *args) -> list[tuple]:
    with duckdb.connect(str(warehouse["root"] / "data" / "published" / "marts.duckdb"), read_only=True) as con:
        return con.execute(sql, list(args)).fetchall()


def test_the_old_cycle_is_published_on_its_own_version_and_on_the_current_one(warehouse):
    """2018 is published twice: on the Planungsräume of its own LOR (area_indicators, version 2018) and on
    those of the LOR of 2021 (area_indicators_harmonised, version 2020, estimates marked); 2020 once on its
    own, the same in both tables."""
    own = published(warehouse, "select report_cycle, any_value(geography_version), list(distinct area_id) "
                               "from area_indicators where area_level = 'planungsraum' group by 1 order by 1")
    assert [(c, v, set(ids)) for c, v, ids in own] == [(OLD, OLD, areas_valid(OLD)), (NEW, NEW, areas_valid(NEW))]
    harmonised = published(warehouse, "select report_cycle, any_value(geography_version), list(distinct area_id), "
                                      "count(*) filter (where is_estimate) from area_indicators_harmonised "
                                      "where area_level = 'planungsraum' group by 1 order by 1")
    assert [(c, v, set(ids)) for c, v, ids, _ in harmonised] == [(OLD, NEW, areas_valid(NEW)),
                                                                 (NEW, NEW, areas_valid(NEW))]
    assert harmonised[0][3] > 0 and harmonised[1][3] == 0
    differing = published(warehouse, """
        select count(*) from area_indicators o join area_indicators_harmonised h
          using (report_cycle, area_level, area_id, indicator_id)
        where report_cycle = ? and (o.numerator is distinct from h.numerator or o.suppression is distinct from
              h.suppression or o.value is distinct from h.value)""", NEW)
    assert differing == [(0,)]
    # where both publish a Bezirk's residents of 2018, they are the same persons
    pairs = published(warehouse, """
        select o.numerator, h.numerator from area_indicators o join area_indicators_harmonised h
          using (report_cycle, area_level, area_id, indicator_id)
        where report_cycle = ? and area_level in ('bezirk', 'city') and indicator_id = 'residents'""", OLD)
    assert len(pairs) == 13 and all(o == h for o, h in pairs if o is not None and h is not None)


def test_the_publication_passes_every_check_with_berlins_levels(warehouse):
    """The run's asset checks all pass (the disclosure audit over both publications among them), the published
    levels are Berlin's, the conversion is published for readers, and no city count is withheld."""
    assert "ASSET_CHECK_EVALUATION" in warehouse["logs"] and "did not pass" not in warehouse["logs"]
    levels = published(warehouse, "select area_level, name_de from area_levels order by level_order")
    assert levels == [("city", "Berlin"), ("bezirk", "Bezirk"), ("prognoseraum", "Prognoseraum"),
                      ("bezirksregion", "Bezirksregion"), ("planungsraum", "Planungsraum")]
    with open(BERLIN / "geography" / "conversion.csv", encoding="utf-8", newline="") as handle:
        assert published(warehouse, "select count(*) from area_conversion") == [(sum(1 for _ in handle) - 1,)]
    assert published(warehouse, "select count(*) from area_indicators_harmonised where area_level = 'city' "
                                "and suppression is not null") == [(0,)]


def test_the_report_and_the_exports_speak_berlins_levels(warehouse):
    """Each cycle's report names Berlin's levels and none of Dortmund's; the exports hold both publications."""
    folder = warehouse["root"] / "data" / "published"
    for cycle in (OLD, NEW):
        html = (folder / "report" / f"bericht_{cycle}.html").read_text(encoding="utf-8")
        assert "Bezirksregion" in html and "Planungsr" in html
        assert not any(word in html for word in ("Sozialraum", "Unterbezirk", "Stadtbezirk"))
        exported = {p.name for p in (folder / "exports" / str(cycle)).iterdir()}
        assert {"area_indicators.parquet", "area_indicators_harmonised.parquet",
                "area_conversion.parquet"} <= exported


def test_a_change_is_published_only_beside_both_its_published_rates(warehouse, tmp_path):
    """D1 of 2020 is the rate of 2020 minus 2018 restated on the LOR of 2021: published only where both are
    (SQL here is the oracle), suppressed elsewhere; a file that shows a suppressed one fails the audit."""
    path = warehouse["root"] / "data" / "published" / "marts.duckdb"
    rows = published(warehouse, """
        select c.area_id, c.suppression is null, n.suppression is null and h.suppression is null
        from area_indicators c
        join area_indicators n on n.report_cycle = c.report_cycle and n.area_level = c.area_level
         and n.area_id = c.area_id and n.indicator_id = 'unemployment_rate'
        join area_indicators_harmonised h on h.report_cycle = ? and h.area_level = c.area_level
         and h.area_id = c.area_id and h.indicator_id = 'unemployment_rate'
        where c.report_cycle = ? and c.indicator_id = 'unemployment_rate_change'""", OLD, NEW)
    assert len(rows) > 542
    assert all(shown == both for _, shown, both in rows)
    hidden = [area for area, shown, _ in rows if not shown]
    assert hidden and len(hidden) < len(rows)
    # a tampered copy that shows one suppressed change fails the audit, as a cell recoverable by subtraction
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(path, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("update area_indicators set suppression = null, value = 0.5 where report_cycle = ? "
                    "and indicator_id = 'unemployment_rate_change' and area_id = ?", [NEW, hidden[0]])
    rule = DisclosureRule.from_config(yaml.safe_load((BERLIN / "city.yml").read_text(encoding="utf-8"))["publication"])
    catalogue = Catalogue.from_rows(read_catalogue())
    assert read_audit(path, catalogue, rule).passed
    tampered = read_audit(copy, catalogue, rule)
    assert not tampered.passed and sum(tampered.by_subtraction.values()) >= 1
