"""Statistical disclosure control of the published marts: hand-made area trees with known answers, and
generated trees and counts (hypothesis) checked by an attacker written here, independently of the module."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from social_monitor import disclosure
from social_monitor.disclosure import (
    Catalogue,
    DisclosureRule,
    Hierarchy,
    Versions,
    _intervals,
    apply,
    audit,
    check_relations,
    declared_relations,
    suppress,
)

RULE = DisclosureRule(min_count=3, min_population_for_rates=100)
LEVELS = ("city", "stadtbezirk", "statistischer_bezirk", "sozialraum", "unterbezirk")

# A small catalogue of the same shape as the real one: residents and their two age groups, recipients and their
# two schemes, a rate whose denominator is another indicator's count, and a change since the previous cycle.
CATALOGUE_ROWS = [
    {"indicator_id": "residents", "numerator_measure": "residents", "numerator_sum_of": "young old"},
    {"indicator_id": "young", "numerator_measure": "young"},
    {"indicator_id": "old", "numerator_measure": "old"},
    {"indicator_id": "recipients", "numerator_measure": "recipients", "numerator_sum_of": "scheme_a scheme_b"},
    {"indicator_id": "scheme_a", "numerator_measure": "scheme_a"},
    {"indicator_id": "scheme_b", "numerator_measure": "scheme_b"},
    {"indicator_id": "rate", "numerator_measure": "recipients", "denominator_measure": "residents"},
    {"indicator_id": "rate_a_young", "numerator_measure": "scheme_a", "denominator_measure": "young"},
    {"indicator_id": "change", "numerator_measure": "residents_change", "denominator_measure": "residents_previous",
     "change_of": "residents"},
]
CATALOGUE = Catalogue.from_rows(CATALOGUE_ROWS)
BASE = ("young", "old", "scheme_a", "scheme_b")  # counts per Unterbezirk; everything else follows from them


def hierarchy_of(tree: dict[str, tuple[str, str, str]]) -> Hierarchy:
    """Unterbezirk -> (Bezirk, Sozialraum, Stadtbezirk) as the published area_levels and area_hierarchy say it:
    Unterbezirke in Bezirke in Stadtbezirke, and Sozialräume grouping Unterbezirke across Bezirk lines."""
    levels = pl.DataFrame({"area_level": ["city", "stadtbezirk", "statistischer_bezirk", "sozialraum", "unterbezirk"],
                           "parent_level": [None, "city", "stadtbezirk", None, "statistischer_bezirk"],
                           "level_order": [0, 1, 2, 3, 4]})
    rows = [("stadtbezirk", s, "city", "city", True) for s in sorted({s for _, _, s in tree.values()})]
    rows += [("sozialraum", r, "city", "city", True) for r in sorted({r for _, r, _ in tree.values()})]
    for b, s in sorted({(b, s) for b, _, s in tree.values()}):
        rows += [("statistischer_bezirk", b, "stadtbezirk", s, True),
                 ("statistischer_bezirk", b, "city", "city", False)]
    for u, (b, r, s) in sorted(tree.items()):
        rows += [("unterbezirk", u, "statistischer_bezirk", b, True), ("unterbezirk", u, "sozialraum", r, True),
                 ("unterbezirk", u, "stadtbezirk", s, False), ("unterbezirk", u, "city", "city", False)]
    hierarchy = pl.DataFrame(rows, schema=["area_level", "area_id", "container_level", "container_id", "is_direct"],
                             orient="row")
    return Hierarchy.from_tables(levels, hierarchy)


def members(tree: dict[str, tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    """(level, area) -> its Unterbezirke, written out here rather than taken from the module."""
    groups: dict[tuple[str, str], list[str]] = {("city", "city"): sorted(tree)}
    for u, (b, r, s) in tree.items():
        for key in (("unterbezirk", u), ("statistischer_bezirk", b), ("sozialraum", r), ("stadtbezirk", s)):
            groups.setdefault(key, []).append(u)
    return groups


def measures(tree, counts: dict[int, dict[str, dict[str, int]]]) -> dict[tuple, int]:
    """(cycle, level, area, measure) -> count, every level added up from the Unterbezirke."""
    out = {}
    cycles = sorted(counts)
    for cycle in cycles:
        for (level, area), units in members(tree).items():
            for m in BASE:
                out[cycle, level, area, m] = sum(counts[cycle][u][m] for u in units)
            out[cycle, level, area, "residents"] = out[cycle, level, area, "young"] + out[cycle, level, area, "old"]
            out[cycle, level, area, "recipients"] = (out[cycle, level, area, "scheme_a"]
                                                     + out[cycle, level, area, "scheme_b"])
    for before, cycle in itertools.pairwise(cycles):
        for level, area in members(tree):
            out[cycle, level, area, "residents_previous"] = out[before, level, area, "residents"]
            out[cycle, level, area, "residents_change"] = (out[cycle, level, area, "residents"]
                                                           - out[before, level, area, "residents"])
    return out


def cells_frame(tree, counts) -> pl.DataFrame:
    values = measures(tree, counts)
    rows = []
    for cycle, (level, area) in itertools.product(sorted(counts), members(tree)):
        for row in CATALOGUE_ROWS:
            num_key = (cycle, level, area, row["numerator_measure"])
            if num_key not in values:
                continue
            num = values[num_key]
            den = values.get((cycle, level, area, row["denominator_measure"])) if "denominator_measure" in row \
                else None
            value = float(num) if "denominator_measure" not in row else (100 * num / den if den else None)
            rows.append({"report_cycle": cycle, "area_level": level, "area_id": area,
                         "indicator_id": row["indicator_id"], "numerator": num, "denominator": den, "value": value,
                         "city_value": None})
    return pl.DataFrame(rows, schema={"report_cycle": pl.Int32, "area_level": pl.Utf8, "area_id": pl.Utf8,
                                      "indicator_id": pl.Utf8, "numerator": pl.Int64, "denominator": pl.Int64,
                                      "value": pl.Float64, "city_value": pl.Float64})


def attacker(tree, counts, published: pl.DataFrame, rule: DisclosureRule) -> tuple[int, int]:
    """An attack written independently of the module: every count is a sum of the Unterbezirk counts (and a
    change a difference between cycles), so the reader's unknowns are the base counts per Unterbezirk and
    cycle. Every published numerator and denominator is an equation. Returns (cells suppressed as small or
    secondary whose numbers are all pinned, small-count cells with a small count that can move by less than
    the protection interval)."""
    cycles = sorted(counts)
    units = sorted(tree)
    var = {(c, u, m): i for i, (c, u, m) in enumerate(itertools.product(cycles, units, BASE))}
    groups = members(tree)

    def row_of(cycle, level, area, measure) -> np.ndarray:
        row = np.zeros(len(var))
        parts = {"residents": [("young", 1), ("old", 1)], "recipients": [("scheme_a", 1), ("scheme_b", 1)]}
        if measure in ("residents_previous", "residents_change"):
            before = cycles[cycles.index(cycle) - 1]
            if measure == "residents_change":
                row += row_of(cycle, level, area, "residents")
            row -= row_of(before, level, area, "residents")
            return row if measure == "residents_change" else -row
        for m, sign in parts.get(measure, [(measure, 1)]):
            for u in groups[level, area]:
                row[var[cycle, u, m]] += sign
        return row

    measure_of = {r["indicator_id"]: (r["numerator_measure"], r.get("denominator_measure")) for r in CATALOGUE_ROWS}
    equations, rhs = [], []
    for r in published.filter(pl.col("suppression").is_null()).iter_rows(named=True):
        num, den = measure_of[r["indicator_id"]]
        for measure, value in ((num, r["numerator"]), (den, r["denominator"])):
            if measure:
                equations.append(row_of(r["report_cycle"], r["area_level"], r["area_id"], measure))
                rhs.append(value)
    a_eq, b_eq = (np.array(equations), np.array(rhs, dtype=float)) if equations else (None, None)

    def width(objective: np.ndarray) -> float:
        ends = []
        for sign in (1, -1):
            result = linprog(sign * objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
            ends.append(np.inf if result.status == 3 else sign * result.fun)
        return ends[1] - ends[0]

    pinned = narrow = 0
    values = measures(tree, counts)
    # rates of small areas are withheld as unreliable, their counts are published: not secret
    for r in published.filter(pl.col("suppression").is_in(["small_count", "secondary"])).iter_rows(named=True):
        num, den = measure_of[r["indicator_id"]]
        widths = [width(row_of(r["report_cycle"], r["area_level"], r["area_id"], m)) for m in (num, den) if m]
        if all(w < 0.5 for w in widths):
            pinned += 1
        if r["suppression"] == "small_count":
            small = [w for m, w in zip([m for m in (num, den) if m], widths, strict=True)
                     if 1 <= values[r["report_cycle"], r["area_level"], r["area_id"], m] < rule.min_count]
            if any(w < rule.protection - 1e-6 for w in small):
                narrow += 1
    return pinned, narrow


# city -> Stadtbezirk S -> Bezirke B1, B2 -> Unterbezirke; Sozialräume R1 (u1, u2, u4), R2 (u3, u5)
TREE = {"u1": ("B1", "R1", "S"), "u2": ("B1", "R1", "S"), "u3": ("B1", "R2", "S"), "u4": ("B2", "R1", "S"),
        "u5": ("B2", "R2", "S")}


def counts_of(scheme_b: dict[str, int], young: int = 300, old: int = 200, scheme_a: int = 40):
    return {2018: {u: {"young": young, "old": old, "scheme_a": scheme_a, "scheme_b": scheme_b[u]} for u in TREE}}


def reasons(frame: pl.DataFrame, indicator: str) -> dict[str, str | None]:
    rows = frame.filter(pl.col("indicator_id") == indicator)
    return dict(zip(rows["area_id"], rows["suppression"], strict=True))


def test_a_part_published_beside_its_total_and_siblings_is_recovered_by_subtraction_until_suppressed():
    # scheme_b of u2 is 2; recipients = scheme_a + scheme_b is published in every area: the primary suppression
    # alone leaves scheme_b(u2) = recipients(u2) - scheme_a(u2), the defect of the published file
    counts = counts_of({"u1": 10, "u2": 2, "u3": 30, "u4": 50, "u5": 60})
    cells = cells_frame(TREE, counts)
    primary_only = cells.with_columns(
        pl.when((pl.col("numerator") == 2) | (pl.col("denominator") == 2)).then(pl.lit("small_count"))
        .otherwise(None).alias("suppression"))
    primary_only = primary_only.with_columns(*[pl.when(pl.col("suppression").is_not_null()).then(None)
                                               .otherwise(pl.col(c)).alias(c) for c in ("numerator", "denominator")])
    before = audit(primary_only, hierarchy_of(TREE), CATALOGUE, RULE)
    assert before.by_subtraction == {2018: 1} and before.recoverable == {2018: 1} and not before.passed
    assert attacker(TREE, counts, primary_only, RULE)[0] == 1

    published = apply(cells, hierarchy_of(TREE), RULE, CATALOGUE)
    after = audit(published, hierarchy_of(TREE), CATALOGUE, RULE)
    assert after.passed and not after.by_subtraction and not after.recoverable and not after.under_protected
    assert attacker(TREE, counts, published, RULE) == (0, 0)
    assert reasons(published, "scheme_b")["u2"] == "small_count"
    assert reasons(published, "recipients")["u2"] is not None or reasons(published, "scheme_a")["u2"] is not None
    # economical: the 2 x 2 rectangle (u1, u2) x (scheme_a, scheme_b) and the rate that shows scheme_a
    assert published["suppression"].is_not_null().sum() == 6
    # and each secondary cell is needed: published alone again, the audit and the attacker recover cells
    flags = published["suppression"].to_list()
    for row in (i for i, reason in enumerate(flags) if reason == "secondary"):
        one_less = cells.with_columns(pl.Series("suppression", flags[:row] + [None] + flags[row + 1:]))
        one_less = one_less.with_columns(*[pl.when(pl.col("suppression").is_not_null()).then(None)
                                           .otherwise(pl.col(c)).alias(c) for c in ("numerator", "denominator")])
        assert audit(one_less, hierarchy_of(TREE), CATALOGUE, RULE).recoverable.get(2018, 0) > 0, row
        assert attacker(TREE, counts, one_less, RULE)[0] > 0, row


def test_the_linear_program_pins_what_no_single_subtraction_gives():
    # x + y = 5, x + z = 3, y + z = 4: no relation has a single unknown, yet x = 2, y = 3, z = 1
    x, y, z = (2018, "unterbezirk", "u1", "x"), (2018, "unterbezirk", "u1", "y"), (2018, "unterbezirk", "u1", "z")
    t1, t2, t3 = ((2018, "unterbezirk", "u1", name) for name in ("t1", "t2", "t3"))
    from social_monitor.disclosure import Relation
    relations = [Relation("sum_of", ((t1, 1), (x, -1), (y, -1))), Relation("sum_of", ((t2, 1), (x, -1), (z, -1))),
                 Relation("sum_of", ((t3, 1), (y, -1), (z, -1)))]
    intervals, by_subtraction = _intervals({x, y, z}, {t1: 5, t2: 3, t3: 4}, relations, frozenset())
    assert not by_subtraction
    assert {k: tuple(round(v, 6) for v in ends) for k, ends in intervals.items()} == {
        x: (2, 2), y: (3, 3), z: (1, 1)}
    # with t3 unknown as well, x can move between 0 and 3
    intervals, _ = _intervals({x, y, z, t3}, {t1: 5, t2: 3}, relations, frozenset())
    assert tuple(round(v, 6) for v in intervals[x]) == (0, 3)


def test_a_change_since_the_previous_cycle_is_a_relation_between_cycles():
    counts = {2018: counts_of({u: 20 for u in TREE})[2018], 2025: counts_of({u: 20 for u in TREE}, old=201)[2018]}
    counts[2025]["u3"]["old"] = 2  # a small age group in 2025 (residents, change and rates around it)
    published = apply(cells_frame(TREE, counts), hierarchy_of(TREE), RULE, CATALOGUE)
    assert audit(published, hierarchy_of(TREE), CATALOGUE, RULE).passed
    assert attacker(TREE, counts, published, RULE) == (0, 0)


def test_a_declared_relation_the_data_contradicts_is_refused():
    wrong = Catalogue.from_rows([dict(r, numerator_sum_of="young") if r["indicator_id"] == "residents" else r
                                 for r in CATALOGUE_ROWS])
    with pytest.raises(ValueError, match="declared sum_of relation of 'residents' does not hold in cycle 2018"):
        suppress(cells_frame(TREE, counts_of({u: 20 for u in TREE})), hierarchy_of(TREE), RULE, wrong)


def test_rates_of_small_areas_are_withheld_but_not_secret():
    counts = counts_of({u: 20 for u in TREE}, young=30, old=20)
    published = apply(cells_frame(TREE, counts), hierarchy_of(TREE), RULE, CATALOGUE)
    assert set(reasons(published, "rate").values()) == {"small_population", None}
    assert reasons(published, "rate")["u1"] == "small_population"
    assert set(reasons(published, "residents").values()) == {None}
    result = audit(published, hierarchy_of(TREE), CATALOGUE, RULE)
    assert result.passed and result.suppressed[2018] > 0 and not result.confidential


def test_the_city_value_is_emptied_with_the_city_cell():
    counts = counts_of({"u1": 1, "u2": 0, "u3": 0, "u4": 0, "u5": 0})  # the city has a single scheme_b recipient
    cells = cells_frame(TREE, counts).with_columns(pl.lit(1.0).alias("city_value"))
    published = apply(cells, hierarchy_of(TREE), RULE, CATALOGUE)
    assert published.filter(pl.col("indicator_id") == "scheme_b")["city_value"].is_null().all()
    assert published.filter(pl.col("indicator_id") == "young")["city_value"].is_not_null().all()


def test_the_rule_reads_its_numbers_from_the_configuration():
    rule = DisclosureRule.from_config({"min_count": 5, "min_population_for_rates": 250})
    assert rule.protection == 5
    assert DisclosureRule.from_config({"protection_interval": 8}).protection == 8
    texts = rule.texts_de()
    assert texts["small_counts"] == "Fallzahlen von 1 bis 4"
    assert "250 Einwohnern" in texts["small_populations"] and "5 Personen" in texts["protection"]
    assert rule.describe_de("({small_count})") == "(Fallzahl von 1 bis 4)"


def test_a_rule_below_the_floor_is_refused():
    with pytest.raises(ValueError, match="min_count must be at least 3"):
        DisclosureRule.from_config({"min_count": 2})
    with pytest.raises(ValueError, match="unknown key"):
        DisclosureRule.from_config({"min_cont": 3})
    with pytest.raises(ValueError, match="protection_interval must be at least 1"):
        DisclosureRule.from_config({"protection_interval": 0})


@st.composite
def cities(draw):
    """A small area tree (1-2 Stadtbezirke, Bezirke and Sozialräume crossing them) and small counts."""
    n_units = draw(st.integers(2, 6))
    units = [f"u{i}" for i in range(n_units)]
    bezirke = draw(st.lists(st.integers(0, 2), min_size=n_units, max_size=n_units))
    raeume = draw(st.lists(st.integers(0, 1), min_size=n_units, max_size=n_units))
    stadtbezirk = draw(st.lists(st.integers(0, 1), min_size=3, max_size=3))
    tree = {u: (f"B{b}", f"R{r}", f"S{stadtbezirk[b]}") for u, b, r in zip(units, bezirke, raeume, strict=True)}
    n_cycles = draw(st.integers(1, 2))
    count = st.integers(0, 6)
    counts = {2018 + 7 * c: {u: {"young": draw(st.integers(0, 150)), "old": draw(st.integers(0, 150)),
                                 "scheme_a": draw(count), "scheme_b": draw(count)} for u in units}
              for c in range(n_cycles)}
    return tree, counts


@given(cities())
def test_generated_cities_leave_no_suppressed_cell_recoverable(city):
    tree, counts = city
    areas = hierarchy_of(tree)
    published = apply(cells_frame(tree, counts), areas, RULE, CATALOGUE)
    assert published.filter(pl.col("numerator").is_between(1, 2) | pl.col("denominator").is_between(1, 2)).is_empty()
    result = audit(published, areas, CATALOGUE, RULE)
    assert result.passed, result.per_cycle()
    assert attacker(tree, counts, published, RULE) == (0, 0)
    # the audit can fail: without the secondary cells, something is recoverable or too narrow again
    secondary = pl.col("suppression") == "secondary"
    if published.select(secondary.any()).item():
        primary_only = cells_frame(tree, counts).with_columns(published["suppression"]).with_columns(
            pl.when(secondary).then(None).otherwise(pl.col("suppression")).alias("suppression"))
        primary_only = primary_only.with_columns(
            *[pl.when(pl.col("suppression").is_not_null()).then(None).otherwise(pl.col(c)).alias(c)
              for c in ("numerator", "denominator", "value")])
        assert not audit(primary_only, areas, CATALOGUE, RULE).passed
        assert attacker(tree, counts, primary_only, RULE) != (0, 0)


# --- geography versions: a cycle published on its own version and harmonised onto the current one ---------
# Bezirk B holds Planungsräume o1, o2 until 2019 and n1, n2, n3 from 2020; o1 became n1, o2 was split into n2
# and n3. The persons of 2018 are counted per (old, new) pair; the harmonised cells of 2018 are the same
# persons on the areas of 2020, so the two publications of 2018 are tied together.
PAIRS_2018 = {"p1": ("o1", "n1"), "p2": ("o2", "n2"), "p3": ("o2", "n3")}
VERSIONED_GROUPS = {  # (cycle, level as published to the disclosure control, area) -> its units
    **{(2018, "plr", o): [p for p, (old, _) in PAIRS_2018.items() if old == o] for o in ("o1", "o2")},
    **{(2018, "plr@2020", n): [p for p, (_, new) in PAIRS_2018.items() if new == n] for n in ("n1", "n2", "n3")},
    # the city is the city on both versions (the same persons): one count
    **{(2018, level, area): sorted(PAIRS_2018) for level, area in (("bezirk", "B"), ("city", "city"),
                                                                   ("bezirk@2020", "B"))},
    **{(2020, "plr", n): [n] for n in ("n1", "n2", "n3")},
    **{(2020, level, area): ["n1", "n2", "n3"] for level, area in (("bezirk", "B"), ("city", "city"))},
}


def versioned_cells(units: dict[str, dict[str, int]]) -> pl.DataFrame:
    def count(cycle, level, area, measure):
        if measure == "residents":
            return count(cycle, level, area, "young") + count(cycle, level, area, "old")
        if measure == "recipients":
            return count(cycle, level, area, "scheme_a") + count(cycle, level, area, "scheme_b")
        if measure in ("residents_previous", "residents_change"):  # on the version of 2020: 2018 harmonised
            before = count(2018, level if level == "city" else f"{level}@2020", area, "residents")
            return before if measure == "residents_previous" else count(cycle, level, area, "residents") - before
        return sum(units[u][measure] for u in VERSIONED_GROUPS[cycle, level, area])

    rows = []
    for cycle, level, area in VERSIONED_GROUPS:
        for row in CATALOGUE_ROWS:
            if row["numerator_measure"].startswith("residents_") and (cycle == 2018 or level.endswith("@2020")):
                continue
            num = count(cycle, level, area, row["numerator_measure"])
            den = count(cycle, level, area, row["denominator_measure"]) if "denominator_measure" in row else None
            rows.append({"report_cycle": cycle, "area_level": level, "area_id": area,
                         "indicator_id": row["indicator_id"], "numerator": num, "denominator": den,
                         "value": float(num) if den is None else (100 * num / den if den else None),
                         "city_value": None})
    return pl.DataFrame(rows, schema={"report_cycle": pl.Int32, "area_level": pl.Utf8, "area_id": pl.Utf8,
                                      "indicator_id": pl.Utf8, "numerator": pl.Int64, "denominator": pl.Int64,
                                      "value": pl.Float64, "city_value": pl.Float64})


def versioned_hierarchy() -> Hierarchy:
    levels = pl.DataFrame({"area_level": ["city", "bezirk", "plr"], "parent_level": [None, "city", "bezirk"],
                           "level_order": [0, 1, 2]})
    rows = [("bezirk", "B", "city", "city", True, None, None)]
    rows += [("plr", o, "bezirk", "B", True, None, 2019) for o in ("o1", "o2")]
    rows += [("plr", n, "bezirk", "B", True, 2020, None) for n in ("n1", "n2", "n3")]
    return Hierarchy.from_tables(levels, pl.DataFrame(rows, orient="row", schema=[
        "area_level", "area_id", "container_level", "container_id", "is_direct", "valid_from", "valid_to"]))


VERSIONS = Versions(of_cycle={2018: 2018, 2020: 2020}, base_level="plr",
                    conversion=(("o1", "n1"), ("o2", "n2"), ("o2", "n3")))


def test_the_versions_of_one_cycle_are_tied_by_the_conversion_and_each_version_adds_up_on_its_own_areas():
    cells = versioned_cells({u: {"young": 50, "old": 50, "scheme_a": 10, "scheme_b": 10}
                             for u in [*PAIRS_2018, "n1", "n2", "n3"]})
    values, _ = disclosure.counts_of(cells, CATALOGUE)
    relations = declared_relations(values, versioned_hierarchy(), CATALOGUE, VERSIONS)
    as_sets = {(r.kind, frozenset((k[1], k[2], c) for k, c in r.terms)) for r in relations
               if all(k[0] == 2018 and k[3] == "young" for k, _ in r.terms)}
    assert ("conversion", frozenset({("plr", "o1", 1), ("plr@2020", "n1", -1)})) in as_sets
    assert ("conversion", frozenset({("plr", "o2", 1), ("plr@2020", "n2", -1), ("plr@2020", "n3", -1)})) in as_sets
    # 2018 on its own version: B = o1 + o2 only; harmonised: B = n1 + n2 + n3
    assert ("hierarchy", frozenset({("bezirk", "B", 1), ("plr", "o1", -1), ("plr", "o2", -1)})) in as_sets
    assert ("hierarchy", frozenset({("bezirk@2020", "B", 1), ("plr@2020", "n1", -1), ("plr@2020", "n2", -1),
                                    ("plr@2020", "n3", -1)})) in as_sets
    # the change of 2020 is on the version of 2020: its previous count is the harmonised one of 2018
    changes = [r for r in relations if r.kind == "change_of" and r.terms[0][0][:3] == (2020, "plr", "n2")]
    assert changes and all((2018, "plr@2020", "n2", "residents") in dict(r.terms) for r in changes)
    check_relations(relations, values)  # every declared relation holds on these counts


def test_a_small_count_of_a_split_area_cannot_be_recovered_from_the_old_area_minus_its_other_part():
    units = {u: {"young": 80, "old": 70, "scheme_a": 30, "scheme_b": 20} for u in [*PAIRS_2018, "n1", "n2", "n3"]}
    units["p3"]["scheme_b"] = 1  # n3 in 2018 (harmonised) has 1 recipient of scheme b; o2 has 21, n2 20
    cells = versioned_cells(units)
    published = apply(cells, versioned_hierarchy(), RULE, CATALOGUE, VERSIONS)
    assert audit(published, versioned_hierarchy(), CATALOGUE, RULE, versions=VERSIONS).passed
    # an attacker written here: unknowns are the base counts of every unit; each published count an equation
    measure_of = {r["indicator_id"]: (r["numerator_measure"], r.get("denominator_measure")) for r in CATALOGUE_ROWS}
    var = {(u, m): i for i, (u, m) in enumerate(itertools.product([*PAIRS_2018, "n1", "n2", "n3"], BASE))}

    def row_of(cycle, level, area, measure):
        row = np.zeros(len(var))
        parts = {"residents": ["young", "old"], "recipients": ["scheme_a", "scheme_b"]}
        if measure in ("residents_previous", "residents_change"):
            row -= row_of(2018, level if level == "city" else f"{level}@2020", area, "residents")
            return -row if measure == "residents_previous" else row + row_of(cycle, level, area, "residents")
        for m in parts.get(measure, [measure]):
            for u in VERSIONED_GROUPS[cycle, level, area]:
                row[var[u, m]] += 1
        return row

    equations, rhs = [], []
    for r in published.filter(pl.col("suppression").is_null()).iter_rows(named=True):
        for measure, value in zip(measure_of[r["indicator_id"]], (r["numerator"], r["denominator"]), strict=True):
            if measure:
                equations.append(row_of(r["report_cycle"], r["area_level"], r["area_id"], measure))
                rhs.append(value)
    target = row_of(2018, "plr@2020", "n3", "scheme_b")
    ends = [sign * linprog(sign * target, A_eq=np.array(equations), b_eq=np.array(rhs, dtype=float),
                           bounds=(0, None), method="highs").fun for sign in (1, -1)]
    assert ends[1] - ends[0] >= RULE.protection - 1e-6
