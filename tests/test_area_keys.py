"""The area key of a delivery is checked against the city's geography valid in the delivery's report cycle
(issue 11, part 2): the keys are injected when a delivery is validated, not fixed in the raw contracts."""

from __future__ import annotations

import csv

import duckdb
import polars as pl
import pytest
from pandera.errors import SchemaErrors

from schemas.published import AreaIndicators, Areas, with_area_levels
from social_monitor.deliveries import find_manifest
from social_monitor.geography import load_geography
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.settings import DEFAULT_CITY, copy_city
from tests.deliveries import LAYOUTS, write_delivery

NEW_KEY = "999"  # not a Dortmund Unterbezirk; the copy's geography adds it from 2025 on


@pytest.fixture(scope="module")
def reformed(tmp_path_factory):
    """A copy of the sample city whose geography has one more Unterbezirk, valid from the cycle 2025."""
    city = copy_city(DEFAULT_CITY, tmp_path_factory.mktemp("reform") / "city")
    path = city / "geography" / "unterbezirke.csv"
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [*rows[0], "valid_from"]
    rows.append({**rows[-1], "area_id": NEW_KEY, "area_name": "Neubaugebiet", "valid_from": "2025"})
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return load_geography(city)


def _load(tmp_path, geography, cycle):
    row = {"Personen_ID": "p4", "Geburtsdatum": "07.08.1999", "Geschlecht": "m", "Unterbezirk": NEW_KEY}
    folder = tmp_path / str(cycle)
    write_delivery(folder, "asylblg", cycle, [row])
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        return load_delivery(con, find_manifest(folder, LAYOUTS["asylblg"], cycle),
                             area_keys=geography.base_keys(cycle))


def test_a_key_is_accepted_only_in_the_cycles_its_area_exists(tmp_path, reformed):
    assert NEW_KEY not in reformed.base_keys(2018) and NEW_KEY in reformed.base_keys(2025)
    with pytest.raises(DeliveryError) as refused:
        _load(tmp_path, reformed, 2018)
    # the message names file, line and column, and (a key not of the geography) shows no value
    assert "asylblg_2018-12-31.csv, line 2, column Unterbezirk: value fails isin(one of the 170 codes" in str(
        refused.value)
    assert NEW_KEY not in str(refused.value)
    assert _load(tmp_path, reformed, 2025).rows_accepted == 1


def test_published_area_levels_are_those_of_the_geography_given_at_validation():
    areas = pl.DataFrame({"area_level": ["city", "quartier"], "area_id": ["city", "1"],
                          "area_key": ["city:city", "quartier:1"], "area_name": ["S", "Q"],
                          "name_status": ["published", "published"]})
    with_area_levels(Areas, ["city", "quartier"]).validate(areas)
    with pytest.raises(SchemaErrors, match="quartier"):
        with_area_levels(Areas, ["city", "unterbezirk"]).validate(areas, lazy=True)
    # the contract itself is not changed by an injection
    assert not Areas.to_schema().columns["area_level"].checks
    assert not AreaIndicators.to_schema().columns["area_level"].checks
