"""The migration background as a city declares it (city.yml ``migration_background``): read once into the
city's settings, passed to dbt as the var ``migration_background``, and refused with a message naming
city.yml when it is missing or wrong."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from social_monitor.settings import CITY_FILE, MIGRATION_BACKGROUND_CRITERIA, CityConfig, city_dir, copy_city

EXAMPLES = int(os.environ.get("SOCIAL_MONITOR_HYPOTHESIS_EXAMPLES", "15"))

CRITERIA = sorted(MIGRATION_BACKGROUND_CRITERIA)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return copy_city("dortmund", tmp_path_factory.mktemp("city") / "c")


def _with(city, value, *, drop: bool = False):
    path = city / CITY_FILE
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if drop:
        config.pop("migration_background")
    else:
        config["migration_background"] = value
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_the_shipped_cities_declare_all_three_criteria():
    for name in ("dortmund", "berlin"):
        config = CityConfig.from_file(city_dir(name) / CITY_FILE)
        assert config.migration_background == ("born_abroad", "non_german", "second_nationality")
        assert json.loads(json.dumps(config.dbt_vars())) == {"migration_background": list(config.migration_background)}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=st.fixed_dictionaries({name: st.booleans() for name in CRITERIA}))
def test_the_declared_criteria_are_passed_to_dbt(city, flags):
    path = _with(city, flags)
    if not any(flags.values()):
        with pytest.raises(ValueError, match=rf"^{path}: migration_background: at least one criterion"):
            CityConfig.from_file(path)
        return
    config = CityConfig.from_file(path)
    assert config.dbt_vars() == {"migration_background": sorted(name for name, on in flags.items() if on)}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(
    st.none(), st.integers(), st.text(max_size=8), st.lists(st.sampled_from(CRITERIA), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=12), st.booleans(), min_size=1, max_size=4),
    st.fixed_dictionaries({name: st.one_of(st.integers(), st.text(max_size=3), st.none()) for name in CRITERIA}),
))
def test_a_wrong_declaration_is_refused_naming_city_yml(city, value):
    """Anything but a mapping of every criterion to true or false (at least one true) is refused with one
    message that starts with the path of city.yml and names the key."""
    path = _with(city, value)
    with pytest.raises(ValueError) as refused:
        CityConfig.from_file(path)
    assert str(refused.value).startswith(f"{path}: migration_background")


def test_a_missing_declaration_is_refused_naming_city_yml(city):
    path = _with(city, None, drop=True)
    with pytest.raises(ValueError, match=rf"^{path}: missing migration_background"):
        CityConfig.from_file(path)
