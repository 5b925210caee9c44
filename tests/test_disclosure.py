"""Statistical disclosure control of the published marts, on small hand-made area trees with known answers."""

from __future__ import annotations

import polars as pl
import pytest

from social_monitor.disclosure import DisclosureRule, _groups, apply, suppress

RULE = DisclosureRule(min_count=3, min_population_for_rates=100)

# city -> Stadtbezirk S -> Bezirke B1, B2 -> Unterbezirke; Sozialräume R1 (u1, u2, u4), R2 (u3, u5)
AREAS = pl.DataFrame([
    {"area_level": "city", "area_id": "city", "stadtbezirk_id": None, "bezirk_id": None, "sozialraum_id": None},
    {"area_level": "stadtbezirk", "area_id": "S", "stadtbezirk_id": "S", "bezirk_id": None, "sozialraum_id": None},
    {"area_level": "statistischer_bezirk", "area_id": "B1", "stadtbezirk_id": "S", "bezirk_id": "B1",
     "sozialraum_id": None},
    {"area_level": "statistischer_bezirk", "area_id": "B2", "stadtbezirk_id": "S", "bezirk_id": "B2",
     "sozialraum_id": None},
    {"area_level": "sozialraum", "area_id": "R1", "stadtbezirk_id": None, "bezirk_id": None, "sozialraum_id": "R1"},
    {"area_level": "sozialraum", "area_id": "R2", "stadtbezirk_id": None, "bezirk_id": None, "sozialraum_id": "R2"},
    *[{"area_level": "unterbezirk", "area_id": u, "stadtbezirk_id": "S", "bezirk_id": b, "sozialraum_id": r}
      for u, b, r in [("u1", "B1", "R1"), ("u2", "B1", "R1"), ("u3", "B1", "R2"), ("u4", "B2", "R1"),
                      ("u5", "B2", "R2")]],
])
MEMBERS = {"B1": ["u1", "u2", "u3"], "B2": ["u4", "u5"], "R1": ["u1", "u2", "u4"], "R2": ["u3", "u5"],
           "S": ["B1", "B2"], "city": ["S"]}
LEVEL = {"B1": "statistischer_bezirk", "B2": "statistischer_bezirk", "R1": "sozialraum", "R2": "sozialraum",
         "S": "stadtbezirk", "city": "city", **{f"u{i}": "unterbezirk" for i in range(1, 6)}}


def cells(counts: dict[str, int], *, indicator: str = "recipients_asylblg", residents: int = 1000) -> pl.DataFrame:
    """A count indicator on the Unterbezirke, added up to every level, plus the residents."""
    totals = dict(counts)
    for parent in ("B1", "B2", "R1", "R2"):
        totals[parent] = sum(counts[u] for u in MEMBERS[parent])
    totals["S"] = totals["B1"] + totals["B2"]
    totals["city"] = totals["S"]
    rows = [{"report_cycle": 2018, "area_level": LEVEL[a], "area_id": a, "indicator_id": indicator,
             "numerator": n, "denominator": None, "value": float(n), "city_value": float(totals["city"])}
            for a, n in totals.items()]
    rows += [{"report_cycle": 2018, "area_level": LEVEL[a], "area_id": a, "indicator_id": "residents",
              "numerator": residents, "denominator": None, "value": float(residents), "city_value": None}
             for a in totals]
    return pl.DataFrame(rows)


def reasons(frame: pl.DataFrame, indicator: str = "recipients_asylblg") -> dict[str, str | None]:
    rows = frame.filter(pl.col("indicator_id") == indicator)
    return dict(zip(rows["area_id"], rows["suppression"], strict=True))


def no_total_reveals_a_single_cell(frame: pl.DataFrame) -> bool:
    """In every group of parts whose total is published, none or at least two parts are suppressed."""
    groups = _groups(AREAS)
    members = frame.join(groups, on=["area_level", "area_id"])
    parents = frame.select("report_cycle", "indicator_id", pl.col("area_level").alias("parent_level"),
                           pl.col("area_id").alias("parent_id"), pl.col("suppression").alias("parent_suppression"))
    counted = (members.group_by("report_cycle", "indicator_id", "parent_level", "parent_id")
               .agg(pl.col("suppression").is_not_null().sum().alias("suppressed"))
               .join(parents, on=["report_cycle", "indicator_id", "parent_level", "parent_id"]))
    return counted.filter(pl.col("parent_suppression").is_null() & (pl.col("suppressed") == 1)).is_empty()


def test_counts_of_one_and_two_are_suppressed_zero_and_three_are_not():
    result = reasons(suppress(cells({"u1": 0, "u2": 2, "u3": 3, "u4": 1, "u5": 40}), AREAS, RULE))
    assert result["u1"] is None or result["u1"] == "secondary"
    assert (result["u2"], result["u4"]) == ("small_count", "small_count")
    assert result["u5"] != "small_count"


def test_a_single_suppressed_part_gets_a_secondary_partner_the_smallest_other():
    # B1 = u1 + u2 + u3 = 10 + 2 + 30: u2 alone could be recovered from B1, so u1 (the smallest other) goes too.
    # R1 = u1 + u2 + u4 then holds two suppressed parts; B2 and R2 hold none.
    result = reasons(suppress(cells({"u1": 10, "u2": 2, "u3": 30, "u4": 50, "u5": 60}), AREAS, RULE))
    assert {a: r for a, r in result.items() if r} == {"u2": "small_count", "u1": "secondary"}


def test_secondary_suppression_follows_every_grouping_until_nothing_is_exposed():
    # u3 is small; its partner in B1 is u1 (10); u1 then is alone suppressed in R1 -> u2 or u4 must follow;
    # and u3 alone in R2 -> u5 follows, which is alone in B2 -> u4 follows.
    frame = suppress(cells({"u1": 10, "u2": 11, "u3": 2, "u4": 50, "u5": 60}), AREAS, RULE)
    assert no_total_reveals_a_single_cell(frame)
    assert reasons(frame)["u3"] == "small_count"
    assert sum(r == "secondary" for r in reasons(frame).values()) >= 2


def test_a_suppressed_total_is_protected_one_level_up():
    # B2 = u4 + u5 = 1 + 1 = 2 is suppressed itself; but S = B1 + B2 is published, so B1 must go too
    # (S - B1 = B2); u4 alone in R1 = u1 + u2 + u4 takes u1 (the smallest other) with it, and u5 alone in
    # R2 = u3 + u5 takes u3.
    frame = suppress(cells({"u1": 10, "u2": 20, "u3": 30, "u4": 1, "u5": 1}), AREAS, RULE)
    result = reasons(frame)
    assert (result["u4"], result["u5"], result["B2"]) == ("small_count", "small_count", "small_count")
    assert (result["B1"], result["u1"], result["u3"]) == ("secondary", "secondary", "secondary")
    assert result["u2"] is None and result["S"] is None
    assert no_total_reveals_a_single_cell(frame)


def test_rates_of_small_areas_are_suppressed_counts_are_not():
    rate = cells({"u1": 10, "u2": 20, "u3": 30, "u4": 40, "u5": 50}, residents=80).with_columns(
        pl.when(pl.col("indicator_id") == "recipients_asylblg").then(pl.lit(80)).alias("denominator"))
    result = suppress(rate, AREAS, RULE)
    assert set(reasons(result).values()) == {"small_population"}
    assert set(reasons(result, "residents").values()) == {None}


def test_published_form_empties_numbers_and_keeps_the_row():
    published = apply(cells({"u1": 10, "u2": 2, "u3": 30, "u4": 50, "u5": 60}), AREAS, RULE)
    hidden = published.filter(pl.col("suppression").is_not_null())
    assert hidden.height == 2
    assert hidden.select(pl.col("numerator").is_null().all(), pl.col("value").is_null().all()).row(0) == (True, True)
    assert published.height == cells({"u1": 0, "u2": 0, "u3": 0, "u4": 0, "u5": 0}).height


def test_a_rule_below_the_floor_is_refused():
    with pytest.raises(ValueError, match="min_count must be at least 3"):
        DisclosureRule.from_config({"min_count": 2})
    with pytest.raises(ValueError, match="unknown key"):
        DisclosureRule.from_config({"min_cont": 3})


def test_a_total_with_a_single_part_is_suppressed_with_it():
    # B9 holds only u9. u1 is small; its partner in R1 = u1 + u9 is u9 (secondary); B9 = u9 must go too,
    # and then B9 alone among S's parts takes B1 along.
    areas = pl.DataFrame([
        {"area_level": "city", "area_id": "city", "stadtbezirk_id": None, "bezirk_id": None, "sozialraum_id": None},
        {"area_level": "stadtbezirk", "area_id": "S", "stadtbezirk_id": "S", "bezirk_id": None,
         "sozialraum_id": None},
        *[{"area_level": "statistischer_bezirk", "area_id": b, "stadtbezirk_id": "S", "bezirk_id": b,
           "sozialraum_id": None} for b in ("B1", "B9")],
        *[{"area_level": "sozialraum", "area_id": r, "stadtbezirk_id": None, "bezirk_id": None, "sozialraum_id": r}
          for r in ("R1", "R2")],
        *[{"area_level": "unterbezirk", "area_id": u, "stadtbezirk_id": "S", "bezirk_id": b, "sozialraum_id": r}
          for u, b, r in [("u1", "B1", "R1"), ("u2", "B1", "R2"), ("u9", "B9", "R1")]],
    ])
    counts = {"u1": 2, "u2": 40, "u9": 30, "B1": 42, "B9": 30, "R1": 32, "R2": 40, "S": 72, "city": 72}
    levels = {"u1": "unterbezirk", "u2": "unterbezirk", "u9": "unterbezirk", "B1": "statistischer_bezirk",
              "B9": "statistischer_bezirk", "R1": "sozialraum", "R2": "sozialraum", "S": "stadtbezirk", "city": "city"}
    frame = pl.DataFrame([{"report_cycle": 2018, "area_level": levels[a], "area_id": a, "indicator_id": "n",
                           "numerator": n, "denominator": None, "value": float(n)} for a, n in counts.items()])
    result = reasons(suppress(frame, areas, RULE), "n")
    assert {a: r for a, r in result.items() if r} == {
        "u1": "small_count", "u9": "secondary", "B9": "secondary", "B1": "secondary", "u2": "secondary",
        "R1": "secondary", "R2": "secondary"}
