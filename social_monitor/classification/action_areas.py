"""Aktionsräume (action areas): areas whose social situation is below the city average, per report cycle.

The Dortmund rule, as configuration: an area is an action area in a cycle when at least
``min_indicators_worse`` of the rule's ``indicators`` are worse than the city value of that cycle, "worse"
following each indicator's direction in the catalogue (``higher_is_worse`` or ``higher_is_better``).
For every area the result records the values, the city values and which indicators put it in; each cycle
is compared with the previous one (kept, new, released); and inside each action area the Quartiere (the
areas of the base level, Dortmund's Unterbezirke) still worse than the city on ``quartier_indicator`` are
named.

The decision itself runs through the classification engine (``ActionAreaRule.to_method`` is the rule as a
``worse_than_city`` method), so the action areas here and the method ``dortmund_action_areas`` in the
published ``area_classifications`` cannot disagree. Plain Python on polars frames, no Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from social_monitor.classification.engine import Classification, classify, format_number, telling_digits
from social_monitor.classification.methods import Method, parse_method

METHOD_ID = "dortmund_action_areas"
DIRECTIONS = ("higher_is_worse", "higher_is_better")


class RuleError(ValueError):
    """A classification rule that cannot be applied to the given indicators."""


@dataclass(frozen=True)
class ActionAreaRule:
    indicators: tuple[str, ...]
    min_indicators_worse: int
    area_level: str = "sozialraum"
    quartier_indicator: str | None = "transfer_rate"

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ActionAreaRule:
        known = {"indicators", "min_indicators_worse", "area_level", "quartier_indicator"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise RuleError(f"unknown key(s) in the action-area rule: {', '.join(unknown)}")
        indicators = tuple(config.get("indicators") or ())
        if not indicators:
            raise RuleError("the action-area rule names no indicators")
        minimum = config.get("min_indicators_worse", len(indicators))
        if not isinstance(minimum, int) or isinstance(minimum, bool):
            raise RuleError(f"min_indicators_worse must be a whole number, not {minimum!r}")
        if not 1 <= minimum <= len(indicators):
            raise RuleError(f"min_indicators_worse must lie between 1 and {len(indicators)}, not {minimum}")
        return cls(
            indicators=indicators,
            min_indicators_worse=minimum,
            area_level=str(config.get("area_level", "sozialraum")),
            quartier_indicator=config.get("quartier_indicator", "transfer_rate"),
        )

    def to_method(self, directions: Mapping[str, str]) -> Method:
        """The rule as an engine method: 1 point per indicator worse than the city; flagged from the minimum."""
        return parse_method({
            "id": METHOD_ID,
            "name_de": "Aktionsräume (Dortmund, Bericht zur sozialen Lage)",
            "source": "city.yml: action_areas",
            "description": f"Aktionsraum, wenn mindestens {self.min_indicators_worse} von {len(self.indicators)} "
                           "Indikatoren schlechter als der Stadtwert sind.",
            "area_level": self.area_level,
            "missing_values": "exclude_area",
            "dimensions": [{
                "id": "action_area", "name_de": "Aktionsraum", "standardisation": "worse_than_city",
                "combine": "sum", "sensitivity_margin": 0.05,
                "indicators": [{"id": i, "direction": directions[i]} for i in self.indicators],
                "classes": [{"code": 0, "label": "kein Aktionsraum", "short": "-",
                             "below": self.min_indicators_worse},
                            {"code": 1, "label": "Aktionsraum", "short": "A"}],
            }],
            "flag": {"label": "Aktionsraum", "any_of": [{"action_area": [1]}]},
        }, where="action_areas in city.yml")


@dataclass(frozen=True)
class ActionAreaResult:
    areas: pl.DataFrame  # one row per cycle and area
    indicators: pl.DataFrame  # one row per cycle, area and rule indicator: value, city value, is worse
    quartiere: pl.DataFrame  # one row per cycle and base area inside an action area
    classification: Classification  # the engine's result of the same rule, for area_classifications


def classify_action_areas(
    area_indicators: pl.DataFrame,
    catalogue: pl.DataFrame,
    rule: ActionAreaRule,
    *,
    area_names: Mapping[str, str] | None = None,
    quartier_indicators: pl.DataFrame | None = None,
    quartier_areas: Mapping[str, str] | None = None,
    quartier_names: Mapping[str, str] | None = None,
) -> ActionAreaResult:
    """Classify the areas of ``area_indicators``.

    ``area_indicators``: report_cycle, area_id, indicator_id, value, city_value (one area level).
    ``catalogue``: indicator_id, name_de, unit, direction.
    ``quartier_indicators``: the same columns for the areas of the base level, and ``quartier_areas`` maps
    each base area to its area; both optional.
    """
    directions = rule_directions(catalogue, rule)
    names = dict(zip(catalogue["indicator_id"], catalogue["name_de"], strict=True))
    units = dict(zip(catalogue["indicator_id"], catalogue["unit"], strict=True))
    _check_table(area_indicators, rule)
    table = area_indicators.select("report_cycle", "area_id", "indicator_id", "value", "city_value")
    if area_names:
        table = table.with_columns(
            pl.col("area_id").replace_strict(area_names, default=None, return_dtype=pl.Utf8).alias("area_name"))
    classification = classify(table, rule.to_method(directions),
                              indicator_names={i: (names[i], units[i]) for i in names})
    details = classification.indicators.select(
        pl.col("report_cycle").cast(area_indicators.schema["report_cycle"]), "area_id", "indicator_id", "value",
        "city_value", (pl.col("standardised") > 0).alias("is_worse"))
    decisions = classification.areas.join(
        classification.dimensions.select("report_cycle", "area_id", "raw_index"), on=["report_cycle", "area_id"],
        how="left")

    areas = (
        decisions.select(
            pl.col("report_cycle").cast(area_indicators.schema["report_cycle"]), "area_id",
            pl.col("raw_index").fill_null(0).cast(pl.Int32).alias("indicators_worse_count"),
            pl.col("is_flagged").fill_null(False).alias("is_action_area"),
            pl.col("change_since_previous").replace({"not_flagged": "not_action_area"})
            .fill_null("not_action_area").alias("change_since_previous"),
        )
        .join(details.filter("is_worse").group_by("report_cycle", "area_id").agg(
            pl.col("indicator_id").sort().str.join(", ").alias("indicators_worse")),
            on=["report_cycle", "area_id"], how="left")
    )
    reasons = _reasons(details, names, units)
    areas = (
        areas.join(reasons, on=["report_cycle", "area_id"], how="left")
        .with_columns(
            pl.col("area_id").replace_strict(area_names or {}, default=None).alias("area_name"),
            pl.lit(rule.area_level).alias("area_level"),
            pl.lit(rule.min_indicators_worse).cast(pl.Int32).alias("min_indicators_worse"),
        )
        .select(
            "report_cycle", "area_level", "area_id", "area_name", "is_action_area", "change_since_previous",
            "indicators_worse_count", "min_indicators_worse", "indicators_worse", "reasons",
        )
        .sort("report_cycle", "area_id")
    )

    quartiere = _quartiere(areas, quartier_indicators, quartier_areas, quartier_names, rule, directions)
    return ActionAreaResult(areas=areas, indicators=details.sort("report_cycle", "area_id", "indicator_id"),
                            quartiere=quartiere, classification=classification)


def rule_directions(catalogue: pl.DataFrame, rule: ActionAreaRule) -> dict[str, str]:
    known = dict(zip(catalogue["indicator_id"], catalogue["direction"], strict=True))
    wanted = list(rule.indicators) + ([rule.quartier_indicator] if rule.quartier_indicator else [])
    for indicator in wanted:
        if indicator not in known:
            raise RuleError(f"indicator {indicator!r} of the action-area rule is not in the indicator catalogue")
        if known[indicator] not in DIRECTIONS:
            raise RuleError(f"indicator {indicator!r} has direction {known[indicator]!r}; a rule needs "
                            f"{' or '.join(DIRECTIONS)}")
    return {indicator: known[indicator] for indicator in wanted}


def _worse_expr(directions: Mapping[str, str]) -> pl.Expr:
    higher_is_worse = [i for i, d in directions.items() if d == "higher_is_worse"]
    return (
        pl.when(pl.col("value").is_null() | pl.col("city_value").is_null())
        .then(False)
        .when(pl.col("indicator_id").is_in(higher_is_worse))
        .then(pl.col("value") > pl.col("city_value"))
        .otherwise(pl.col("value") < pl.col("city_value"))
    )


def _check_table(area_indicators: pl.DataFrame, rule: ActionAreaRule) -> None:
    required = {"report_cycle", "area_id", "indicator_id", "value", "city_value"}
    missing = required - set(area_indicators.columns)
    if missing:
        raise RuleError(f"the indicator table lacks column(s) {', '.join(sorted(missing))}")
    present = set(area_indicators["indicator_id"].unique().to_list())
    absent = [i for i in rule.indicators if i not in present]
    if absent:
        raise RuleError(f"the indicator table has no values for {', '.join(absent)}")


def _reasons(details: pl.DataFrame, names: Mapping[str, str], units: Mapping[str, str]) -> pl.DataFrame:
    """German text per area and cycle: the indicators worse than the city, with both values."""
    rows = []
    for (cycle, area), group in details.filter(pl.col("is_worse")).group_by("report_cycle", "area_id"):
        parts = []
        for r in group.sort("indicator_id").iter_rows(named=True):
            # printed with the decimals that tell the value from the city value (never "20,0 % (Stadt 20,0 %)")
            unit, digits = units[r["indicator_id"]], telling_digits(r["value"], r["city_value"])
            parts.append(f"{names[r['indicator_id']]} {format_number(r['value'], unit, digits)} "
                         f"(Stadt {format_number(r['city_value'], unit, digits)})")
        rows.append({"report_cycle": cycle, "area_id": area, "reasons": "; ".join(parts)})
    schema = {"report_cycle": details.schema["report_cycle"], "area_id": pl.Utf8, "reasons": pl.Utf8}
    return pl.DataFrame(rows, schema=schema)


def _quartiere(areas, quartier_indicators, quartier_areas, quartier_names, rule, directions) -> pl.DataFrame:
    schema = {
        "report_cycle": areas.schema["report_cycle"], "area_id": pl.Utf8, "base_area_id": pl.Utf8,
        "base_area_name": pl.Utf8, "indicator_id": pl.Utf8, "value": pl.Float64, "city_value": pl.Float64,
        "is_worse_than_city": pl.Boolean,
    }
    if quartier_indicators is None or not rule.quartier_indicator or not quartier_areas:
        return pl.DataFrame(schema=schema)
    mapping = pl.DataFrame(
        {"base_area_id": list(quartier_areas), "area_id": list(quartier_areas.values())},
        schema={"base_area_id": pl.Utf8, "area_id": pl.Utf8},
    )
    action = areas.filter("is_action_area").select("report_cycle", "area_id")
    # as in the rule itself (missing_values: exclude_area): NaN and infinities are missing, never "worse"
    finite = [pl.when(pl.col(c).cast(pl.Float64).is_finite()).then(pl.col(c).cast(pl.Float64)).alias(c)
              for c in ("value", "city_value")]
    return (
        quartier_indicators.filter(pl.col("indicator_id") == rule.quartier_indicator).with_columns(finite)
        .rename({"area_id": "base_area_id"})
        .join(mapping, on="base_area_id", how="inner")
        .join(action, on=["report_cycle", "area_id"], how="inner")
        .with_columns(
            _worse_expr(directions).alias("is_worse_than_city"),
            pl.col("base_area_id").replace_strict(quartier_names or {}, default=None).alias("base_area_name"),
        )
        .select(list(schema))
        .cast(schema)
        .sort("report_cycle", "area_id", "base_area_id")
    )
