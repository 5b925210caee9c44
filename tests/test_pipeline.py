"""A full materialisation of every asset for every cycle, as `make run` does it (tests/pipeline_env.py),
and then its outputs are checked."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance

from social_monitor.catalogue import read_catalogue
from social_monitor.disclosure import Catalogue, DisclosureRule
from social_monitor.publish import read_audit
from social_monitor.settings import DBT_PROJECT_DIR, dbt_vars_json, load_settings
from tests.deliveries import AGGREGATE_LAYOUTS, ALL_LAYOUTS
from tests.pipeline_env import BIN, build, sh

AKTIONSRAEUME_2007 = {
    "Bodelschwingh/Westerfilde", "Dorstfelder Brücke", "Eving/Kemminghausen", "Eving/Lindenhorst", "Hörde",
    "Marten", "Nette", "Hafen", "Borsigplatz", "Nordmarkt", "Scharnhorst-Ost", "Alt-Scharnhorst", "Wickede",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return build(tmp_path_factory.mktemp("pipeline"))


def test_dbt_unit_tests_pass(run, tmp_path):
    """The models' unit tests, which the pipeline's dbt step leaves out (--exclude-resource-type unit_test),
    pass against the built warehouse; the pipeline's own dbt build ran every data test but no unit test."""
    manifest = json.loads(next((run["root"] / "data" / "dbt_target").glob("*/manifest.json")).read_text())
    declared = set(manifest["unit_tests"])
    assert ("unit_test.social_monitor.int_base_area_counts."
            "households_in_a_split_base_area_count_once_in_their_oldest_members_successor") in declared
    step = json.loads(next((run["root"] / "data" / "dbt_target").glob("dbt_models-*/run_results.json")).read_text())
    ran_in_pipeline = {r["unique_id"] for r in step["results"]}
    assert not ran_in_pipeline & declared
    assert any(unique_id.startswith("test.") for unique_id in ran_in_pipeline)

    env = {**run["env"], "SOCIAL_MONITOR_WAREHOUSE": str(run["warehouse"]), "DBT_TARGET_PATH": str(tmp_path)}
    sh(env, str(BIN / "dbt"), "test", "--select", "test_type:unit", "--project-dir", str(DBT_PROJECT_DIR),
       "--profiles-dir", str(DBT_PROJECT_DIR), "--vars", dbt_vars_json(load_settings(env)))
    results = json.loads((tmp_path / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in results} == declared
    assert {r["status"] for r in results} == {"pass"}


def _instance(run) -> DagsterInstance:
    return DagsterInstance.from_config(str(run["root"] / "dagster_home"))


def test_every_asset_is_materialised(run):
    with _instance(run) as instance:
        keys = instance.get_asset_keys()
        names = {"/".join(key.path) for key in keys}
        for expected in ("raw/register", "raw/sgb2", "raw/sgb12", "raw/asylblg", "marts/area_indicators",
                         "marts/areas", "marts/indicators", "classification/action_areas",
                         "classification/area_classifications", "published/marts"):
            assert expected in names
            assert instance.get_latest_materialization_event(next(k for k in keys if "/".join(k.path) == expected))
        raw = next(k for k in keys if k.path == ["raw", "register"])
        partitions = instance.get_materialized_partitions(raw)
        assert partitions == {"2007", "2012", "2018", "2025"}


def test_every_asset_check_passed(run):
    with _instance(run) as instance:
        evaluations = _check_evaluations(instance)
    assert len(evaluations) > 30  # dbt tests and our own checks
    failed = [e.check_name for e in evaluations if not e.passed]
    assert failed == []
    names = {e.check_name for e in evaluations}
    assert {"rows_in_equal_accepted_plus_rejected", "only_aggregated_tables", "no_suppressed_cell_recoverable",
            "every_area_classified_in_every_cycle", "every_method_classifies_every_cycle",
            "assert_every_level_adds_up_to_the_city", "assert_no_person_draws_sgb2_and_asylblg"} <= names


def _check_evaluations(instance: DagsterInstance):
    evaluations = []
    for run_record in instance.get_run_records():
        for entry in instance.all_logs(run_record.dagster_run.run_id,
                                       of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluations.append(entry.dagster_event.event_specific_data)
    return evaluations


def test_action_areas_per_cycle(run):
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        found = {
            cycle: set(names)
            for cycle, names in con.execute(
                "select report_cycle, list(area_name) from action_areas where is_action_area group by 1"
            ).fetchall()
        }
        changes = dict(con.execute(
            "select area_name, change_since_previous from action_areas where report_cycle = 2012").fetchall())
    assert found[2007] == AKTIONSRAEUME_2007
    assert found[2018] == AKTIONSRAEUME_2007 | {"Dorstfeld", "Bövinghausen/Westrich"}
    assert changes["Nordmarkt"] == "kept" and changes["City"] == "not_action_area"
    assert "Berichtsjahr 2018: 15 Aktionsräume" in run["printed"]


def test_only_one_quartier_still_high_in_alt_scharnhorst_and_wickede_2018(run):
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        rows = con.execute(
            """
            select a.area_name, list(q.base_area_name order by q.base_area_id)
            from action_area_quartiere q join action_areas a using (report_cycle, area_id)
            where q.report_cycle = 2018 and q.is_worse_than_city group by 1
            """
        ).fetchall()
    high = dict(rows)
    assert high["Alt-Scharnhorst"] == ["Wambeler Heide"]
    assert high["Wickede"] == ["Meylantviertel"]


def test_counts_add_up_and_rates_come_from_counts(run):
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        mismatches = con.execute(
            """
            with levels as (
                select report_cycle, area_level, indicator_id, sum(numerator) as total
                from area_indicators
                where indicator_id in ('residents', 'recipients_transfer', 'residents_age_0_14',
                                       'recipients_sgb2')
                group by all
                having bool_and(suppression is null)  -- a level with a suppressed cell cannot add up here
            )
            select l.*, c.numerator
            from levels l join area_indicators c
              on c.area_level = 'city' and c.report_cycle = l.report_cycle and c.indicator_id = l.indicator_id
            where l.total <> c.numerator
            """
        ).fetchall()
        compared = con.execute(
            """
            select count(*) from (
                select report_cycle, area_level, indicator_id from area_indicators
                where indicator_id in ('residents', 'recipients_transfer', 'residents_age_0_14', 'recipients_sgb2')
                group by all having bool_and(suppression is null))
            """).fetchone()[0]
        wrong_rates = con.execute(
            "select count(*) from area_indicators ai join indicators i using (indicator_id) "
            "where ai.denominator > 0 and abs(ai.value - i.scale * ai.numerator / ai.denominator) > 1e-9"
        ).fetchone()[0]
        levels = dict(con.execute(
            "select area_level, count(distinct area_id) from area_indicators group by 1").fetchall())
        city_rate = con.execute(
            "select value from area_indicators where area_level = 'city' and indicator_id = 'transfer_rate' "
            "and report_cycle = 2007").fetchone()[0]
    assert compared >= 20 and mismatches == []
    assert wrong_rates == 0
    assert levels == {"city": 1, "stadtbezirk": 12, "statistischer_bezirk": 62, "sozialraum": 39,
                      "unterbezirk": 170}
    assert 15.5 < city_rate < 17.0


def test_unemployment_indicators_are_published_with_plausible_values(run):
    """The unemployment delivery's indicators reach the published marts for every cycle: the city's share of
    unemployed in 2007 is the calibrated 10.71 % of residents 15-64 (published 15.3 % × assumed 0.70; whole
    persons at scale 0.1: ±0.05 pp), the long-term share below it, the SGB II and SGB III unemployed add up to
    the unemployed, S3 (transfer recipients not unemployed) lies below the transfer rate by the SGB II
    unemployed, and Grundsicherung im Alter is a few % of residents 65+."""
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        city = {(cycle, indicator): (value, numerator) for cycle, indicator, value, numerator in con.execute(
            "select report_cycle, indicator_id, value, numerator from area_indicators where area_level = 'city'"
        ).fetchall()}
        areas = con.execute(
            "select count(distinct area_id) from area_indicators where indicator_id = 'unemployment_rate' "
            "and area_level = 'unterbezirk' and report_cycle = 2018 and value is not null").fetchone()[0]
    cycles = sorted({cycle for cycle, _ in city})
    assert cycles == [2007, 2012, 2018, 2025]
    assert city[(2007, "unemployment_rate")][0] == pytest.approx(15.3 * 0.70, abs=0.05)
    for cycle in cycles:
        unemployed, long_term = city[(cycle, "unemployment_rate")][0], city[(cycle, "long_term_unemployment_rate")][0]
        assert 5 < unemployed < 12 and 0 < long_term < unemployed
        assert 3 < city[(cycle, "youth_unemployment_rate")][0] < 20
        by_basis = city[(cycle, "unemployed_sgb2")][1] + city[(cycle, "unemployed_sgb3")][1]
        assert city[(cycle, "unemployed")][1] == by_basis
        not_unemployed = city[(cycle, "transfer_rate_not_unemployed")][1]
        # S3 = transfer recipients - AsylbLG - SGB II unemployed (in the sample every SGB II unemployed draws SGB II)
        assert not_unemployed == (city[(cycle, "recipients_transfer")][1] - city[(cycle, "recipients_asylblg")][1]
                                  - city[(cycle, "unemployed_sgb2")][1])
        assert 25 < city[(cycle, "sgb2_rate_age_0_14")][0] < 40
        assert 2 < city[(cycle, "gsi_rate_age_65_plus")][0] < 10
    assert areas > 150  # published for the Unterbezirke (a few suppressed at most)


def test_published_file_holds_only_aggregates_and_opens_read_only(run):
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_type = 'BASE TABLE'").fetchall()}
        columns = {r[0] for r in con.execute("select column_name from information_schema.columns").fetchall()}
    assert tables == {"areas", "area_levels", "area_hierarchy", "indicators", "area_indicators",
                      "area_indicators_harmonised", "area_conversion", "action_areas",
                      "action_area_indicators", "action_area_quartiere", "classification_methods",
                      "area_classifications", "area_classification_dimensions", "area_classification_indicators",
                      "publication", "disclosure_audit"}
    assert not any("person" in c or "birth" in c for c in columns)
    assert not Path(str(run["published"]) + ".tmp").exists()


def test_every_configured_method_is_published_for_every_cycle(run):
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        methods = dict(con.execute("select method_id, area_level from classification_methods").fetchall())
        per_cycle = con.execute(
            "select method_id, report_cycle, count(*), count(*) filter (where is_included) "
            "from area_classifications group by all order by all").fetchall()
        dimensions = dict(((m, d), cycles) for m, d, cycles in con.execute(
            "select method_id, dimension_id, list(distinct report_cycle order by report_cycle) "
            "from area_classification_dimensions group by all").fetchall())
        # the Dortmund rule through the engine names exactly the action areas of the report
        disagree = con.execute(
            "select count(*) from area_classifications c join action_areas a using (report_cycle, area_id) "
            "where c.method_id = 'dortmund_action_areas' and c.is_flagged <> a.is_action_area").fetchone()[0]
        # every index is the sum (or weighted mean) of its contributions, re-standardised where configured
        unexplained = con.execute(
            """
            select count(*) from area_classification_dimensions d
            join (select method_id, report_cycle, area_id, dimension_id, sum(contribution) as total,
                         sum(weight) as weights
                  from area_classification_indicators group by all) i
              using (method_id, report_cycle, area_id, dimension_id)
            where abs(d.raw_index - case when d.method_id = 'transfer_deviation' then i.total / i.weights
                                         else i.total end) > 1e-9
            """).fetchone()[0]
    assert methods == {"dortmund_action_areas": "sozialraum", "mss_style": "unterbezirk",
                       "transfer_deviation": "sozialraum"}
    expected_areas = {"dortmund_action_areas": 39, "mss_style": 170, "transfer_deviation": 39}
    assert [(m, c) for m, c, _, _ in per_cycle] == [(m, c) for m in sorted(methods) for c in (2007, 2012, 2018, 2025)]
    assert all(areas == expected_areas[m] and included > 1 for m, _, areas, included in per_cycle)
    assert dimensions[("mss_style", "status")] == [2007, 2012, 2018, 2025]
    assert dimensions[("mss_style", "dynamics")] == [2012, 2018, 2025]  # no cycle before 2007
    assert disagree == 0
    assert unexplained == 0


def test_published_file_is_protected_by_disclosure_control(run):
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        small = con.execute("select count(*) from area_indicators where numerator between 1 and 2 "
                            "or denominator between 1 and 2").fetchone()[0]
        suppressed = dict(con.execute("select suppression, count(*) from area_indicators "
                                      "where suppression is not null group by 1").fetchall())
        # a published total never has exactly one suppressed part (it would give it by subtraction)
        exposed = con.execute(
            """
            with parts as (  -- the sample city's additive relations, written out here
                select area_level, area_id, container_level as parent_level, container_id as parent_id
                from area_hierarchy
                where (area_level, container_level) in (('unterbezirk', 'statistischer_bezirk'),
                    ('unterbezirk', 'sozialraum'), ('statistischer_bezirk', 'stadtbezirk'), ('stadtbezirk', 'city'),
                    ('sozialraum', 'city'))
            )
            select count(*) from (
                select v.report_cycle, v.indicator_id, p.parent_level, p.parent_id,
                       count(*) filter (where v.suppression is not null) as hidden
                from area_indicators v join parts p using (area_level, area_id)
                group by all
            ) g
            join area_indicators t on t.report_cycle = g.report_cycle and t.indicator_id = g.indicator_id
             and t.area_level = g.parent_level and t.area_id = g.parent_id
            where g.hidden = 1 and t.suppression is null
            """).fetchone()[0]
    with duckdb.connect(str(run["warehouse"]), read_only=True) as con:
        private_small = con.execute("select count(*) from marts.area_indicators "
                                    "where numerator between 1 and 2").fetchone()[0]
    assert private_small > 0  # the sample city has small cells, so the check below could fail
    assert small == 0
    assert suppressed.get("small_count", 0) >= private_small and suppressed.get("secondary", 0) > 0
    assert exposed == 0


def test_no_suppressed_cell_of_the_published_file_can_be_recovered(run):
    """The audit, rerun here on the published file alone, and the figures the publication recorded."""
    catalogue = Catalogue.from_rows(read_catalogue())
    result = read_audit(run["published"], catalogue, DisclosureRule())
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        recorded = con.execute("select * from disclosure_audit order by report_cycle").pl()
        # a transfer-recipient scheme suppressed in an Unterbezirk never sits beside a published total
        # and three published other schemes (the subtraction that undid the old suppression)
        beside = con.execute(
            """
            select count(*) from area_indicators s
            where s.suppression is not null and s.indicator_id in
                  ('recipients_sgb2', 'recipients_sgb12_hlu', 'recipients_sgb12_gsi', 'recipients_asylblg')
              and (select count(*) from area_indicators o
                   where o.report_cycle = s.report_cycle and o.area_level = s.area_level and o.area_id = s.area_id
                     and o.suppression is null and o.indicator_id in ('recipients_transfer', 'recipients_sgb2',
                         'recipients_sgb12_hlu', 'recipients_sgb12_gsi', 'recipients_asylblg')) = 4
            """).fetchone()[0]
    assert sum(result.suppressed.values()) > 0 and result.passed
    assert recorded["report_cycle"].to_list() == sorted(result.suppressed)
    assert recorded["suppressed_cells"].to_list() == [result.suppressed[c] for c in sorted(result.suppressed)]
    for column in ("recoverable_by_subtraction", "recoverable_by_linear_program", "narrower_than_protection"):
        assert recorded[column].sum() == 0, column
    assert beside == 0


def test_raw_rows_match_the_deliveries(run):
    with duckdb.connect(str(run["warehouse"]), read_only=True) as con:
        balance = con.execute(
            "select source, report_cycle, rows_in, rows_accepted, rows_rejected from raw.deliveries").fetchall()
    # 4 cycles of the 4 person-level sources and of the 6 aggregate deliveries
    assert len(balance) == 4 * len(ALL_LAYOUTS) == 4 * (5 + 6)  # 5 person-level sources, 6 aggregate deliveries
    assert all(rows_in == accepted + rejected and rejected == 0 for _, _, rows_in, accepted, rejected in balance)


def _delivered_identifiers(landing: Path) -> set[str]:
    """Every person key and household key of the delivered files, as delivered (before pseudonymisation)."""
    keys: set[str] = set()
    aggregates = {layout.file_name(dt.date(year, 12, 31)) for layout in AGGREGATE_LAYOUTS.values()
                  for year in (2007, 2012, 2018, 2025)}  # counts per area: no identifiers
    with duckdb.connect() as con:
        for path in (p for p in landing.glob("*.csv") if p.name not in aggregates):
            file = f"read_csv('{path}', delim=';', header=true, all_varchar=true, encoding='latin-1')"
            columns = [c for c in ("Personen_ID", "Haushalts_ID")  # the register carries its household key
                       if c in {r[0] for r in con.execute(f"describe select * from {file}").fetchall()}]
            keys |= {value for r in con.execute(f"select {', '.join(columns)} from {file}").fetchall()
                     for value in r if value is not None}
        for path in (p for p in landing.glob("*.parquet") if p.name not in aggregates):
            keys |= {value for r in con.execute("select Personen_ID, BG_Nummer from read_parquet(?)",
                                                [str(path)]).fetchall() for value in r}
    return keys


def test_no_delivered_identifier_in_logs_dagster_storage_models_or_the_published_file(run):
    keys = _delivered_identifiers(run["root"] / "data" / "landing")
    assert len(keys) > 10_000
    # the CLI output of every run, and every file Dagster keeps (event logs with all metadata, run storage)
    token = re.compile(rb"(?<![0-9A-Za-z])(?:BG)?[0-9a-fA-F]{16}(?![0-9A-Za-z])")
    found = {m.decode() for m in token.findall(run["logs"].encode())}
    for path in (run["root"] / "dagster_home").rglob("*"):
        if path.is_file():
            found |= {m.decode() for m in token.findall(path.read_bytes())}
    assert not found & keys
    # the warehouse keeps only pseudonyms, from raw on; the published file not even those
    for database in (run["warehouse"], run["published"]):
        with duckdb.connect(str(database), read_only=True) as con:
            con.execute("create temp table _keys (key varchar)")
            con.executemany("insert into _keys values (?)", [(k,) for k in keys])
            columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                                  "where data_type = 'VARCHAR' and table_catalog <> 'temp'").fetchall()
            hits = [(schema, table, column) for schema, table, column in columns if con.execute(
                f'select count(*) from "{schema}"."{table}" where "{column}" in (select key from _keys)').fetchone()[0]]
        assert hits == [], database


def test_register_indicators_match_the_delivered_register(run):
    """Migration background, households and moves, per Unterbezirk and cycle in the private marts, equal what
    plain SQL over the delivered register files gives (Dortmund's city.yml declares all three criteria of the
    migration background); the first cycle has no moves (absent, not zero)."""
    import yaml

    city = yaml.safe_load((Path(__file__).resolve().parent.parent / "config" / "dortmund" / "city.yml")
                          .read_text(encoding="utf-8"))
    assert city["migration_background"] == {"non_german": True, "second_nationality": True, "born_abroad": True}
    landing = run["root"] / "data" / "landing"
    with duckdb.connect() as oracle:
        parts = [f"""select {cycle} as cycle, * from read_csv('{landing}/bevoelkerung_{cycle}-12-31.csv', delim=';',
                     header=true, all_varchar=true, encoding='latin-1')""" for cycle in (2007, 2012, 2018, 2025)]
        oracle.execute("create table r as select * from (" + " union all ".join(parts) + ") "
                       "where Wohnungsstatus = 'H'")
        oracle.execute("""create table p as select cycle, Personen_ID as person, Unterbezirk as area,
                          Haushalts_ID as hh, cycle - year(strptime(Geburtsdatum, '%d.%m.%Y')) as age,
                          strptime(Zuzugsdatum, '%d.%m.%Y') as moved, strptime(Geburtsdatum, '%d.%m.%Y') as born,
                          "Staatsangehörigkeit" <> 'deutsch' or coalesce("Staatsangehörigkeit_2" <> 'deutsch', false)
                              or Geburtsland = 'Ausland' as migration
                          from r""")
        expected = set(oracle.execute("""
            with hh as (select cycle, hh, any_value(area) as area, count(distinct area) as areas,
                               count(*) filter (where age >= 18) as adults, count(*) filter (where age < 18) as kids
                        from p group by all),
                 hh_area as (select cycle, area, count(*) as households,
                                    count(*) filter (where kids > 0) as with_children,
                                    count(*) filter (where kids > 0 and adults = 1) as single_parent
                             from hh where areas = 1 group by all),
                 prev as (select * from (values (2012, 2007), (2018, 2012), (2025, 2018)) t(cycle, before)),
                 moves_in as (select p.cycle, p.area, count(*) as n from p join prev using (cycle)
                              where p.moved > make_date(prev.before, 12, 31) and p.moved <> p.born
                                and not exists (select 1 from p q where q.cycle = prev.before
                                                and q.person = p.person and q.area = p.area)
                              group by all),
                 moves_out as (select prev.cycle, q.area, count(*) as n from p q join prev on q.cycle = prev.before
                               where not exists (select 1 from p where p.cycle = prev.cycle
                                                 and p.person = q.person and p.area = q.area)
                               group by all)
            select a.cycle, a.area, a.migration, h.households, h.with_children, h.single_parent,
                   case when a.cycle > 2007 then coalesce(i.n, 0) end,
                   case when a.cycle > 2007 then coalesce(o.n, 0) end
            from (select cycle, area, count(*) filter (where migration) as migration from p group by all) a
            join hh_area h using (cycle, area)
            left join moves_in i using (cycle, area)
            left join moves_out o using (cycle, area)
        """).fetchall())
    with duckdb.connect(str(run["warehouse"]), read_only=True) as con:
        found = set(con.execute("""
            select report_cycle, area_id,
                   max(measure_value) filter (where measure_id = 'residents_migration_background'),
                   max(measure_value) filter (where measure_id = 'households'),
                   max(measure_value) filter (where measure_id = 'households_with_children'),
                   max(measure_value) filter (where measure_id = 'households_single_parent'),
                   max(measure_value) filter (where measure_id = 'moves_in'),
                   max(measure_value) filter (where measure_id = 'moves_out')
            from intermediate.int_area_measures where area_level = 'unterbezirk' group by all
        """).fetchall())
        rates = con.execute("""
            select report_cycle, count(*) filter (where indicator_id = 'move_in_rate'),
                   count(*) filter (where indicator_id = 'share_single_parent_households')
            from marts.area_indicators group by 1 order by 1
        """).fetchall()
    assert len(expected) == 4 * 170
    assert found == expected
    assert rates[0][0] == 2007 and rates[0][1] == 0 and rates[0][2] > 0  # 2007: no moves, but households
    assert all(row[1] > 0 for row in rates[1:])


def test_aggregate_deliveries_are_published_at_their_level_and_above_with_small_counts_suppressed(run):
    """The sample's aggregate deliveries went through the real raw assets, dbt and the disclosure control: the
    school-entry examinations delivered per statistischer Bezirk are indicators of statistische Bezirke,
    Stadtbezirke and the city, never of Unterbezirke or Sozialräume (which cut across Bezirk lines); the
    income index (not additive) only of statistische Bezirke; and every count of 1 or 2 of an aggregate
    delivery in the warehouse is an empty, suppressed cell in the published file."""
    aggregate = ("school_entry_examined", "school_entry_normal_weight_rate", "youth_welfare_rate", "employment_rate",
                 "vacancy_rate", "gymnasium_transition_rate")
    with duckdb.connect(str(run["warehouse"]), read_only=True) as con:
        levels = dict(con.execute(
            "select indicator_id, list(distinct area_level order by area_level) from marts.area_indicators "
            "where indicator_id in ('school_entry_normal_weight_rate', 'income_index', 'employment_rate') "
            "group by 1").fetchall())
        delivered = con.execute(
            "select count(*), count(distinct report_cycle) from raw.aggregates where delivery = 'schuleingang'"
        ).fetchone()
        small = con.execute(
            "select report_cycle, area_level, area_id, indicator_id from marts.area_indicators "
            f"where indicator_id in {aggregate} and (numerator between 1 and 2 or denominator between 1 and 2)"
        ).fetchall()
    assert delivered == (4 * 62 * 2, 4)
    assert levels["school_entry_normal_weight_rate"] == ["city", "stadtbezirk", "statistischer_bezirk"]
    assert levels["income_index"] == ["statistischer_bezirk"]
    assert levels["employment_rate"] == ["city", "sozialraum", "stadtbezirk", "statistischer_bezirk", "unterbezirk"]
    assert len(small) > 10  # the sample at scale 0.1 has small counts of examined children and HzE cases
    with duckdb.connect(str(run["published"]), read_only=True) as con:
        con.execute("create temp table small (report_cycle integer, area_level varchar, area_id varchar, "
                    "indicator_id varchar)")
        con.executemany("insert into small values (?, ?, ?, ?)", small)
        published = con.execute(
            "select count(*), count(*) filter (where p.suppression = 'small_count' and p.numerator is null "
            "and p.value is null) from small join area_indicators p using (report_cycle, area_level, area_id, "
            "indicator_id)").fetchone()
        shown = con.execute(
            f"select count(*) from area_indicators where indicator_id in {aggregate} "
            "and (numerator between 1 and 2 or denominator between 1 and 2)").fetchone()[0]
    assert published == (len(small), len(small))
    assert shown == 0
