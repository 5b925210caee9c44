"""The city's geography is declared once (issue 11, part 2): levels.yml and one areas file per level."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from social_monitor.geography import GeographyError, geography_dir, load_geography
from social_monitor.settings import DEFAULT_CITY, city_dir, shared_candidates

DORTMUND_MD = next((shared / "reference" / "dortmund.md" for shared in shared_candidates()
                    if (shared / "reference" / "dortmund.md").is_file()), None)
DORTMUND = city_dir(DEFAULT_CITY)


def published_counts() -> dict[str, int]:
    """The numbers of areas per level as published (shared/reference/dortmund.md), by the plural name."""
    text = DORTMUND_MD.read_text(encoding="utf-8")
    found = {}
    for plural in ("Stadtbezirke", "statistische Bezirke", "Unterbezirke", "Sozialräume"):
        match = re.search(rf"(\d+) (?:statistische )?{plural}", text)
        assert match, plural
        found[plural] = int(match.group(1))
    return found


@pytest.mark.skipif(DORTMUND_MD is None, reason="THE DORTMUND ORACLE DID NOT RUN: no reference/dortmund.md in "
                    f"{', '.join(map(str, shared_candidates()))}; set SOCIAL_MONITOR_SHARED_DIR")
def test_the_dortmund_sample_has_the_published_number_of_areas_per_level():
    geography = load_geography(DORTMUND)
    counts = Counter(area.level for area in geography.areas)
    by_plural = {level.plural_de: counts[level.id] for level in geography.levels}
    assert by_plural == published_counts()
    assert geography.base.plural_de == "Unterbezirke"


def test_every_base_area_lies_in_exactly_one_area_of_every_level():
    geography = load_geography(DORTMUND)
    memberships = list(geography.memberships(2018))
    per_base_and_level = Counter((base, level) for base, level, _ in memberships)
    assert set(per_base_and_level.values()) == {1}
    levels = {level for _, level, _ in memberships}
    assert levels == {"city"} | {level.id for level in geography.levels}
    # the Unterbezirk key's first two digits are its statistischer Bezirk (dortmund.md)
    assert all(area == base[:2] for base, level, area in memberships if level == "statistischer_bezirk")


def test_the_geography_agrees_with_the_benchmark_copy_until_the_baselines_read_it():
    """Interim: the benchmark's baselines still read a copy in dbt_project/seeds/reference (dbt no longer
    loads it); both must hold the same areas."""
    seeds = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "reference"
    if not seeds.is_dir():
        pytest.skip("dbt reads the geography of the city folder")
    geography = load_geography(DORTMUND)
    for level, seed, key in (("unterbezirk", "unterbezirke", "unterbezirk_id"),
                             ("statistischer_bezirk", "statistische_bezirke", "bezirk_id"),
                             ("sozialraum", "sozialraeume", "sozialraum_id"),
                             ("stadtbezirk", "stadtbezirke", "stadtbezirk_id")):
        with open(seeds / f"{seed}.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert sorted(row[key] for row in rows) == sorted(a.area_id for a in geography.areas_of(level))


def copy_of_geography(tmp_path: Path) -> Path:
    target = tmp_path / "city"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(DORTMUND, target)
    return target


FILES = ["stadtbezirke.csv", "statistische_bezirke.csv", "sozialraeume.csv", "unterbezirke.csv"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=st.sampled_from(FILES), line=st.integers(min_value=0, max_value=200), column=st.integers(0, 6),
       value=st.one_of(st.text(max_size=12), st.sampled_from(["", "001", "99", "2030", "abc", "01,02", '"'])))
def test_a_damaged_areas_file_is_refused_naming_the_file(tmp_path, file, line, column, value):
    """Any cell of any areas file replaced by anything: it still loads (the value was valid) or a
    GeographyError names the file; never another exception, never a half-read geography."""
    folder = copy_of_geography(tmp_path)
    path = geography_dir(folder) / file
    lines = path.read_text(encoding="utf-8").splitlines()
    index = min(line, len(lines) - 1)
    fields = lines[index].split(",")
    fields[min(column, len(fields) - 1)] = value
    lines[index] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        geography = load_geography(folder)
    except GeographyError as error:
        assert str(path) in str(error)
        assert "\n" not in str(error)
    else:
        counts = Counter(area.level for area in geography.areas)
        assert sum(counts.values()) == sum(len(p.read_text(encoding="utf-8").splitlines()) - 1
                                           for p in geography_dir(folder).glob("*.csv"))


@pytest.mark.parametrize("change, expected", [
    (lambda t: t.replace("    base: true\n", ""), "exactly one level must be `base: true`"),
    (lambda t: t.replace("parent: stadtbezirk", "parent: landkreis"), "parent 'landkreis' is not a level"),
    (lambda t: t.replace("groups: unterbezirk", "groups: stadtbezirk"), "`groups` must name the base level"),
    (lambda t: t.replace("parent: city", "parent: statistischer_bezirk"), "form a cycle"),
    (lambda t: t.replace("areas: sozialraeume.csv", "areas: ../sozialraeume.csv"), "must be a file name"),
    (lambda t: t.replace('key_pattern: "[0-9]{3}"', 'key_pattern: "[0-9]{4}"'), "line 2, column area_id"),
])
def test_a_wrong_level_declaration_is_refused_with_one_line(tmp_path, change, expected):
    folder = copy_of_geography(tmp_path)
    levels = geography_dir(folder) / "levels.yml"
    levels.write_text(change(levels.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(GeographyError, match=re.escape(expected)):
        load_geography(folder)
