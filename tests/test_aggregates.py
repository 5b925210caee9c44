"""Aggregate deliveries of partner offices (schemas/aggregates.py): the layouts, the contract on good and hostile
deliveries through the real loader and DuckDB, and the sample city's aggregate deliveries against its register.

The hostile deliveries are generated with hypothesis: a good delivery (every area of the level valid in the cycle,
every measure of the layout, whole numbers from 0) with one fault of a kind drawn at a drawn row. The expected
verdict is computed here from the geography and the layout, not by the loader."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from social_monitor.deliveries import find_manifest, reference_date_of, write_manifest
from social_monitor.geography import load_geography
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.layouts import AggregateLayout, LayoutError, load_layouts
from social_monitor.sample_city.aggregates import base_area_counts, level_values, write_aggregates
from social_monitor.sample_city.calibration import AGES, plan_cycle
from social_monitor.settings import CITIES_DIR

DORTMUND, BERLIN = CITIES_DIR / "dortmund", CITIES_DIR / "berlin"
GEOGRAPHY = {DORTMUND: load_geography(DORTMUND), BERLIN: load_geography(BERLIN)}
LAYOUTS = {DORTMUND: load_layouts(DORTMUND), BERLIN: load_layouts(BERLIN)}
# (city, aggregate delivery, cycle): a text file at a level above the base (Dortmund), and one on a level whose
# keys changed with the 2020 geography reform (Berlin: the 2019 keys are retired in 2020)
CASES = [(DORTMUND, "schuleingang", 2018), (BERLIN, "einschulung", 2020)]
FAULTS = ["wrong_level", "retired_key", "negative", "duplicate", "unknown_measure", "not_a_number", "missing_area",
          "declared_gap"]


def _write(folder: Path, layout: AggregateLayout, cycle: int, rows: list[tuple[str, str, str]]) -> Path:
    """A delivery in the layout's format: rows of (area key, city measure code, value as text)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / layout.file_name(reference_date_of(cycle))
    order = {"area_id": 0, "measure": 1, "value": 2}
    lines = [layout.separator.join(layout.file_columns)]
    lines += [layout.separator.join(row[order[column]] for column in layout.headers) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(layout.encoding))
    write_manifest(path, layout, reference_date_of(cycle), len(rows))
    return path


def _good_rows(layout: AggregateLayout, keys: tuple[str, ...], values: list[int]) -> list[tuple[str, str, str]]:
    codes = list(layout.codes["measure"])
    return [(key, code, str(values[(i * len(codes) + j) % len(values)]))
            for i, key in enumerate(keys) for j, code in enumerate(codes)]


def _load(folder: Path, layout: AggregateLayout, cycle: int, city: Path, policy: str = "fail"):
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        result = load_delivery(con, find_manifest(folder, layout, cycle), policy=policy,
                               area_keys=layout.area_keys(GEOGRAPHY[city], cycle))
        stored = con.execute("select area_level, delivery, count(*) from raw.aggregates group by all").fetchall()
    return result, stored


@st.composite
def hostile_deliveries(draw):
    """(case, rows, fault, the line the fault is on or None for the file as a whole, gaps to declare)."""
    city, name, cycle = draw(st.sampled_from(CASES))
    layout = LAYOUTS[city][name]
    geography = GEOGRAPHY[city]
    keys = layout.area_keys(geography, cycle)
    values = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
    rows = _good_rows(layout, keys, values)
    fault = draw(st.sampled_from(FAULTS))
    event(fault)
    index = draw(st.integers(0, len(rows) - 1))
    area, code, _ = rows[index]
    line = len(rows) + 2  # an appended row: after the header and every good row
    gaps: dict[str, str] = {}
    if fault == "wrong_level":  # a key of another level of the city that is no key of this level
        others = sorted({a.area_id for a in geography.areas if a.level != layout.level} - set(keys))
        rows.append((draw(st.sampled_from(others)), code, "1"))
    elif fault == "retired_key":  # a key of this level that is not valid in the cycle (another version)
        retired = sorted({a.area_id for a in geography.areas_of(layout.level)} - set(keys))
        if not retired:
            retired = ["99999999"]  # a key of no version at all
        rows.append((draw(st.sampled_from(retired)), code, "1"))
    elif fault == "negative":
        rows[index] = (area, code, str(-draw(st.integers(1, 10**6))))
        line = index + 2
    elif fault == "not_a_number":
        rows[index] = (area, code, draw(st.sampled_from(["1.5", "x", "1e3", "1 000"])))
        line = index + 2
    elif fault == "duplicate":
        rows.append(rows[index])
        line = index + 2  # the first of the two lines (both are reported)
    elif fault == "unknown_measure":
        unknown = draw(st.text(st.characters(min_codepoint=65, max_codepoint=90), min_size=1, max_size=8)
                       .filter(lambda c: c not in layout.codes["measure"]))
        rows.append((area, unknown, "1"))
    else:  # missing_area, declared_gap: every row of an area left out
        rows = [row for row in rows if row[0] != area]
        line = None
        if fault == "declared_gap":
            gaps = {area: "keine Grundschule im Gebiet"}
    return (city, name, cycle), rows, fault, line, gaps


@given(hostile_deliveries())
def test_hostile_aggregate_delivery_is_refused_naming_file_line_and_column(tmp_path_factory, delivery):
    (city, name, cycle), rows, fault, line, gaps = delivery
    folder = tmp_path_factory.mktemp("aggregate")
    layout = dataclasses.replace(LAYOUTS[city][name], gaps=gaps)
    path = _write(folder, layout, cycle, rows)
    if fault == "declared_gap":  # a declared gap is no fault: loaded, every row accepted
        result, stored = _load(folder, layout, cycle, city)
        assert (result.rows_in, result.rows_accepted, result.rows_rejected) == (len(rows), len(rows), 0)
        assert stored == [(layout.level, name, len(rows))]
        return
    with pytest.raises(DeliveryError) as refused:
        _load(folder, layout, cycle, city)
    message = str(refused.value)
    assert message.startswith(f"{path.name}: delivery refused")
    if line is None:  # coverage: the file as a whole, naming the missing area and the layout's gaps
        assert f"{path.name}, column {layout.headers['area_id']}: no row of measure" in message
        assert "gaps" in message
    else:
        column = layout.headers["measure" if fault == "unknown_measure" else
                                "value" if fault in ("negative", "not_a_number") else "area_id"]
        assert f"{path.name}, line {line}, column {column}:" in message, message
    # values are counts, but still never quoted; a value equal to one of the layout's measure codes is left out
    # (the message lists the allowed codes, e.g. isin(['1', '2']), which are the layout's, not a delivered value)
    for value in {row[2] for row in rows} - {"0", "1"} - set(layout.codes["measure"]):
        assert f"'{value}'" not in message


@given(hostile_deliveries())
def test_quarantine_counts_every_row_of_an_aggregate_delivery(tmp_path_factory, delivery):
    """Under quarantine a row-level fault is held back and counted (rows in = accepted + rejected); a fault of
    the file as a whole (a missing area) refuses it; nothing of a refused delivery is stored."""
    (city, name, cycle), rows, fault, line, gaps = delivery
    folder = tmp_path_factory.mktemp("aggregate")
    layout = dataclasses.replace(LAYOUTS[city][name], gaps=gaps)
    _write(folder, layout, cycle, rows)
    if fault == "missing_area":
        with pytest.raises(DeliveryError):
            _load(folder, layout, cycle, city, policy="quarantine")
        return
    result, stored = _load(folder, layout, cycle, city, policy="quarantine")
    rejected = {"duplicate": 2, "declared_gap": 0}.get(fault, 1)
    assert (result.rows_in, result.rows_rejected) == (len(rows), rejected)
    assert result.rows_in == result.rows_accepted + result.rows_rejected
    assert stored == [(layout.level, name, result.rows_accepted)]


def test_reload_replaces_only_its_own_delivery_and_cycle(tmp_path):
    city, cycle = DORTMUND, 2018
    schule, wohnen = LAYOUTS[city]["schuleingang"], LAYOUTS[city]["wohnungen"]
    geography = GEOGRAPHY[city]
    _write(tmp_path, schule, cycle, _good_rows(schule, schule.area_keys(geography, cycle), [3]))
    _write(tmp_path, wohnen, cycle, _good_rows(wohnen, wohnen.area_keys(geography, cycle), [5]))
    _load(tmp_path, schule, cycle, city)
    _load(tmp_path, wohnen, cycle, city)
    _write(tmp_path, schule, cycle, _good_rows(schule, schule.area_keys(geography, cycle), [4]))
    _, stored = _load(tmp_path, schule, cycle, city)
    assert sorted(stored) == [("statistischer_bezirk", "schuleingang", 124), ("unterbezirk", "wohnungen", 340)]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert con.execute("select distinct value from raw.aggregates where delivery = 'schuleingang'").fetchall() \
            == [(4,)]
        assert con.execute("select count(*) from raw.deliveries").fetchone()[0] == 2


# --- layouts ------------------------------------------------------------------------------------------------

ENTRY = """
aggregates:
  - id: schuleingang
    file_name: schuleingang_{reference_date}.csv
    format: csv
    encoding: utf-8
    separator: ";"
    level: statistischer_bezirk
    headers: {area_id: Bezirk, measure: Merkmal, value: Anzahl}
    measures: {U: school_entry_examined, N: school_entry_normal_weight}
"""


def _city_with(tmp_path: Path, entry: str) -> Path:
    city = tmp_path / "city"
    city.mkdir(parents=True)
    person_level = (DORTMUND / "deliveries.yml").read_text(encoding="utf-8").split("\naggregates:")[0]
    (city / "deliveries.yml").write_text(person_level + textwrap.dedent(entry), encoding="utf-8")
    return city


@pytest.mark.parametrize(("change", "key", "says"), [
    (("school_entry_examined", "school_entry_examnied"), "aggregates.schuleingang.measures.U",
     "named by no indicator of the catalogue"),
    (("N: school_entry_normal_weight", "N: school_entry_examined"), "aggregates.schuleingang.measures.N",
     "given two codes"),
    (("id: schuleingang", "id: Schule Eingang"), "aggregates[1].id", "lower-case"),
    (("id: schuleingang", "id: register"), "aggregates.register.id", "person-level source"),
    (("value: Anzahl", "wert: Anzahl"), "aggregates.schuleingang.headers.wert", "not a column of the contract"),
    (("    level: statistischer_bezirk\n", ""), "aggregates.schuleingang.level", "missing"),
    (("measures: {U", "measures: {U: {measure: school_entry_examined, additive: maybe}, X"),
     "aggregates.schuleingang.measures.U", "additive"),
])
def test_bad_aggregate_layout_names_file_and_key(tmp_path, change, key, says):
    city = _city_with(tmp_path, ENTRY.replace(*change))
    with pytest.raises(LayoutError) as bad:
        load_layouts(city)
    assert f"deliveries.yml: {key}: " in str(bad.value) and says in str(bad.value), str(bad.value)


def test_one_measure_has_one_delivery_and_an_unknown_level_is_named(tmp_path):
    twice = ENTRY + textwrap.indent(textwrap.dedent(ENTRY).split("aggregates:\n")[1].replace(
        "id: schuleingang", "id: zweite").replace("schuleingang_", "zweite_"), "")
    with pytest.raises(LayoutError, match="delivered by schuleingang too"):
        load_layouts(_city_with(tmp_path, twice))
    layout = load_layouts(_city_with(tmp_path / "b", ENTRY.replace("statistischer_bezirk", "bezirk")))["schuleingang"]
    with pytest.raises(LayoutError, match="'bezirk' is not a level of the city's geography"):
        layout.area_keys(GEOGRAPHY[DORTMUND], 2018)


# --- the sample city ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("city", "cycle"), [(DORTMUND, 2018), (BERLIN, 2020), (BERLIN, 2018)])
def test_sample_aggregates_agree_with_the_register_and_are_deterministic(tmp_path, city, cycle):
    """Every aggregate delivery of the city's layout is written at its level for every area valid in the cycle;
    the counts are bounded by the register's residents of their age groups, per base area and therefore at every
    level; the rates are plausible (assumed); the same seed writes the same bytes; the files load."""
    plan = plan_cycle(city, cycle, 0.1)
    counts = base_area_counts(plan, seed=7)
    residents = plan.residents

    def aged(low, high):
        return residents[:, (AGES >= low) & (AGES <= high)].sum(axis=1)

    assert (counts["employees_residence"] <= aged(18, 64)).all()
    assert (counts["youth_welfare_cases"] <= aged(0, 20)).all()
    assert (counts["school_entry_examined"] <= aged(5, 6)).all()
    assert (counts["pupils_transition"] <= aged(10, 10)).all()
    assert (counts["school_entry_normal_weight"] <= counts["school_entry_examined"]).all()
    assert (counts["pupils_transition_gymnasium"] <= counts["pupils_transition"]).all()
    assert (counts["dwellings_vacant"] <= counts["dwellings"]).all()
    total = residents.sum()
    assert 0.5 < counts["employees_residence"].sum() / aged(18, 64).sum() < 0.7
    assert 0.015 < counts["youth_welfare_cases"].sum() / aged(0, 20).sum() < 0.05
    assert 1.6 < total / counts["dwellings"].sum() < 2.3
    assert 0.02 < counts["dwellings_vacant"].sum() / counts["dwellings"].sum() < 0.06

    layouts = LAYOUTS[city]
    first = write_aggregates(tmp_path / "a", plan, 7, city_dir=city, layouts=layouts)
    again = write_aggregates(tmp_path / "b", plan, 7, city_dir=city, layouts=layouts)
    assert [p.read_bytes() for p, _ in first] == [p.read_bytes() for p, _ in again]
    aggregate_layouts = [layout for layout in layouts.values() if layout.is_aggregate]
    assert len(first) == len(aggregate_layouts) == 6
    geography = GEOGRAPHY[city]
    for layout in aggregate_layouts:
        values = level_values(plan, geography, layout, 7)
        for measure, by_area in values.items():
            assert list(by_area) == list(layout.area_keys(geography, cycle))
            if measure != "income_index":  # counts add up to the city's
                assert sum(by_area.values()) == counts[measure].sum()
        result, _ = _load(tmp_path / "a", layout, cycle, city)
        assert result.rows_rejected == 0 and result.rows_in == sum(len(v) for v in values.values())
    index = level_values(plan, geography, next(lay for lay in aggregate_layouts if "income_index" in lay.measures),
                         7)["income_index"]
    assert 85 <= np.median(list(index.values())) <= 115 and min(index.values()) > 0


# --- wiring: Dagster assets, checks and the delivery sensor -------------------------------------------------


def test_every_aggregate_delivery_is_a_raw_asset_with_its_check_and_the_sensor_picks_it_up(tmp_path, monkeypatch):
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.jobs import new_delivery_sensor

    graph = defs.get_repository_def().asset_graph
    city = DORTMUND  # the suite's selected city
    for name, layout in LAYOUTS[city].items():
        if not layout.is_aggregate:
            continue
        node = graph.get(dg.AssetKey(["raw", name]))
        assert node.group_name == "raw" and node.partitions_def is not None
        assert "schemas.aggregates.AggregateCounts" in node.description
        assert dg.AssetCheckKey(dg.AssetKey(["raw", name]), "rows_in_equal_accepted_plus_rejected") in \
            graph.asset_check_keys
    monkeypatch.setenv("SOCIAL_MONITOR_LANDING_DIR", str(tmp_path))
    layout = LAYOUTS[city]["schuleingang"]
    _write(tmp_path, layout, 2018, _good_rows(layout, layout.area_keys(GEOGRAPHY[city], 2018), [4]))
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        requests = new_delivery_sensor(context)
    # the delivery's raw asset, and the cycle's delivery log and aggregates table downstream of it
    assert [(r.partition_key, r.asset_selection) for r in requests] == [
        ("2018", [dg.AssetKey(["raw", "schuleingang"]), dg.AssetKey(["raw", "deliveries"]),
                  dg.AssetKey(["raw", "aggregates"])])]


# --- disclosure control -------------------------------------------------------------------------------------


def test_disclosure_declares_an_aggregates_relations_from_its_level_up_and_protects_its_small_counts():
    """Cases delivered per statistischer Bezirk (B1 2 cases, B2 40) exist for the Bezirke, their Stadtbezirk and
    the city only: the declared relations are S = B1 + B2 and city = S, none with Unterbezirke or Sozialräume
    (their counts do not exist); the small count of B1 is suppressed and B2 with it (else S - B2 gives B1), and
    the audit finds nothing recoverable. The disclosure code is unchanged: the relations follow from the keys."""
    import polars as pl

    from social_monitor.disclosure import Catalogue, DisclosureRule, apply, audit, declared_relations
    from tests.test_disclosure import TREE, hierarchy_of

    catalogue = Catalogue.from_rows([{"indicator_id": "cases", "numerator_measure": "cases"}])
    counts = {("statistischer_bezirk", "B1"): 2, ("statistischer_bezirk", "B2"): 40, ("stadtbezirk", "S"): 42,
              ("city", "city"): 42}
    cells = pl.DataFrame(
        [{"report_cycle": 2018, "area_level": level, "area_id": area, "indicator_id": "cases", "numerator": n,
          "denominator": None, "value": float(n), "city_value": 42.0} for (level, area), n in counts.items()],
        schema={"report_cycle": pl.Int32, "area_level": pl.Utf8, "area_id": pl.Utf8, "indicator_id": pl.Utf8,
                "numerator": pl.Int64, "denominator": pl.Int64, "value": pl.Float64, "city_value": pl.Float64})
    hierarchy = hierarchy_of(TREE)
    keys = [(2018, level, area, "cases") for level, area in counts]
    relations = sorted(sorted((k[1], k[2], c) for k, c in r.terms) for r in declared_relations(keys, hierarchy,
                                                                                              catalogue))
    assert relations == [[("city", "city", 1), ("stadtbezirk", "S", -1)],
                         [("stadtbezirk", "S", 1), ("statistischer_bezirk", "B1", -1),
                          ("statistischer_bezirk", "B2", -1)]]
    rule = DisclosureRule(min_count=3, min_population_for_rates=0)
    published = apply(cells.with_columns(pl.lit(1000).alias("area_population")), hierarchy, rule, catalogue)
    reasons = dict(zip(published["area_id"], published["suppression"], strict=True))
    assert reasons == {"B1": "small_count", "B2": "secondary", "S": None, "city": None}
    assert audit(published, hierarchy, catalogue, rule).passed


def test_an_aggregate_delivery_loads_through_dagster_without_the_person_key_warning(tmp_path, monkeypatch):
    """Counts per area carry no person key: under the development key the person-level sources warn that their
    keys are pseudonymised with it; an aggregate delivery neither warns nor records a pseudonym key."""
    import dagster as dg

    from orchestration.assets.raw import raw_assets
    from orchestration.resources import PipelineSettings, WarehouseResource
    from social_monitor.pseudonyms import KEY_ENV, PseudonymKey

    monkeypatch.delenv(KEY_ENV, raising=False)
    layout = LAYOUTS[DORTMUND]["schuleingang"]
    rows = _good_rows(layout, layout.area_keys(GEOGRAPHY[DORTMUND], 2018), [4])
    _write(tmp_path, layout, 2018, rows)
    asset = next(a for a in raw_assets if a.key == dg.AssetKey(["raw", "schuleingang"]))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [asset], partition_key="2018", instance=instance,
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
                   "pipeline": PipelineSettings(landing_dir=str(tmp_path), published_path=str(tmp_path / "p.duckdb"),
                                                config_path=str(DORTMUND / "city.yml"))})
    [materialization] = result.asset_materializations_for_node(asset.op.name)
    assert materialization.metadata["rows_accepted"].value == len(rows)
    assert "pseudonym_key" not in materialization.metadata
    messages = [record.user_message for record in instance.all_logs(result.run_id)]
    assert any("schuleingang" in message for message in messages)  # the run's own log lines are read
    assert not any(PseudonymKey.from_env({}).description in message for message in messages)
