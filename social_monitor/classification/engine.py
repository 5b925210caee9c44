"""The classification engine: an indicator table and a method in, classes, index values and reasons out.

Plain Python on polars frames, no Dagster. ``classify`` takes a long indicator table with the columns

- ``report_cycle`` (int), ``area_id`` (text), ``indicator_id`` (text), ``value`` (number), and optionally
- ``population`` (residents, for ``min_population``), ``is_valid`` (false leaves the area out),
  ``city_value`` (for ``deviation_from_city`` and ``worse_than_city``) and ``area_name``,

and a :class:`~social_monitor.classification.methods.Method`. It returns a :class:`Classification` with
three tables: one row per cycle and area (included or the reason it is not, the combined class, the flag
and its change since the previous cycle, fragility, the reasons in German), one row per cycle, area and
dimension (index, class, previous class, distance to the nearest class border), and one row per cycle,
area and indicator (value, mean, SD, standardised value, weight, contribution), so every class can be
traced back to its inputs.

A change (``change_of``) compares an area's value with its value in the base cycle by area id. Where the
base cycle lies on another geography version than the cycle, ``restated`` (:class:`Restated`) gives the base
cycle's values restated on the cycle's version (the pipeline: ``marts.area_indicators_harmonised``); the
change then compares on that version, and a note names the version and how many base values are estimates.

A value, city value or population that is not a finite number (NaN, +inf, -inf) is refused with a
``DataError`` naming its cycle, area, indicator and column, unless the method has
``missing_values: exclude_area``: then it is read as missing (a note counts them). No index is computed
from a non-finite number: an index that is not finite (values too large for floating point) is refused too.
Problems with the table raise ``DataError``; problems with the method itself ``MethodError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from social_monitor.classification.methods import Dimension, IndicatorSpec, Method

NUMBER_COLUMNS = ("value", "city_value", "population")  # checked for NaN and infinities
REQUIRED = {"report_cycle": pl.Int32, "area_id": pl.Utf8, "indicator_id": pl.Utf8, "value": pl.Float64}
OPTIONAL = {"population": pl.Float64, "is_valid": pl.Boolean, "city_value": pl.Float64, "area_name": pl.Utf8}
FLAG_CHANGES = ("first_cycle", "kept", "new", "released", "not_flagged")
CLASS_CHANGES = ("no_previous", "same", "better", "worse")
MAX_LISTED = 5
# dimension column -> suffix of its column in the wide form (``status_index``, ``status_class`` …)
WIDE_COLUMNS = {"index_value": "index", "class_code": "class", "class_label": "label",
                "previous_class_code": "previous_class", "class_change": "change",
                "distance_to_border": "distance_to_border", "is_fragile": "is_fragile"}


@dataclass(frozen=True)
class Restated:
    """Values of report cycles restated on one geography version (the harmonised series), for the changes of
    the cycles on that version whose base cycle lies on another. ``version``: the version's first report
    cycle; ``cycles``: the report cycles on that version; ``values``: report_cycle, area_id, indicator_id,
    value, city_value and is_estimate (the restated value rests on a split area's assumed share)."""

    version: int
    cycles: frozenset[int]
    values: pl.DataFrame


class DataError(ValueError):
    """An indicator table the method cannot classify: missing, non-finite or constant values, absent
    indicators, a cycle without any area to classify. (``MethodError`` is for the method itself.)"""


@dataclass(frozen=True)
class Classification:
    method: Method
    areas: pl.DataFrame  # one row per report cycle and area
    dimensions: pl.DataFrame  # one row per report cycle, area and dimension (included areas)
    indicators: pl.DataFrame  # one row per report cycle, area, dimension and indicator (included areas)
    notes: tuple[str, ...] = ()  # what the engine left out, e.g. an indicator without values in a cycle

    def summary(self) -> pl.DataFrame:
        """Per cycle: areas, included, flagged, new, released and fragile."""
        return self.areas.group_by("report_cycle").agg(
            pl.len().alias("areas"), pl.col("is_included").sum().alias("included"),
            pl.col("is_flagged").sum().alias("flagged"),
            (pl.col("change_since_previous") == "new").sum().alias("new"),
            (pl.col("change_since_previous") == "released").sum().alias("released"),
            pl.col("is_fragile").sum().alias("fragile"),
        ).sort("report_cycle")

    def wide(self) -> pl.DataFrame:
        """One row per cycle and area with ``<dimension>_index``, ``_class``, ``_label`` … side by side."""
        wide = self.areas
        for dimension in self.method.dimensions:
            columns = self.dimensions.filter(pl.col("dimension_id") == dimension.id).select(
                "report_cycle", "area_id",
                *[pl.col(source).alias(f"{dimension.id}_{target}") for source, target in WIDE_COLUMNS.items()])
            wide = wide.join(columns, on=["report_cycle", "area_id"], how="left")
        return wide.sort("report_cycle", "area_id")


def classify(table: pl.DataFrame, method: Method, *,
             indicator_names: Mapping[str, tuple[str, str]] | None = None,
             restated: Restated | None = None) -> Classification:
    """Classify every area of every report cycle in ``table`` by ``method``.

    ``indicator_names`` maps indicator ids to (German name, unit) for the reasons, where the method does not
    name them itself (the pipeline passes its indicator catalogue). A cycle in which every area is left out
    (``min_population``, ``exclude_areas``, marked invalid, missing values) raises ``DataError``: a cycle
    without classes is no result. So do non-finite values (NaN, ±inf), unless ``missing_values: exclude_area``
    reads them as missing. ``restated``: the base values of changes across a geography reform (see above).
    """
    notes: list[str] = []
    table = _non_finite(_prepare(table), method, notes)
    cycles = sorted(table["report_cycle"].unique().to_list())
    present = set(table["indicator_id"].unique().to_list())
    unknown = [i for i in method.indicator_ids if i not in present]
    if unknown:
        raise DataError(
            f"method {method.id!r} names indicator(s) {', '.join(unknown)}, which the table does not hold "
            f"(it holds: {', '.join(sorted(present)) or 'nothing'})")
    if method.min_population > 0 and table["population"].is_null().all():
        raise DataError(f"method {method.id!r} leaves out areas under {method.min_population:g} residents, but "
                        "the table has no population; give the population column or set min_population: 0")

    areas = _areas(table, method)
    observations = _observations(table, method, cycles, restated, notes)
    observations, areas = _check_values(observations, areas, method, notes)
    _refuse_cycles_without_areas(areas, method)
    included = areas.filter("is_included").select("report_cycle", "area_id")
    observations = observations.join(included, on=["report_cycle", "area_id"], how="semi")

    indicators = pl.concat([_standardise(observations.filter(pl.col("dimension_id") == d.id), d, method)
                            for d in method.dimensions], how="vertical")
    dimensions = pl.concat([_dimension_classes(indicators.filter(pl.col("dimension_id") == d.id), d, method)
                            for d in method.dimensions], how="vertical")
    areas = _flag(areas, dimensions, method, cycles)
    for previous, cycle in zip(cycles, cycles[1:], strict=False):
        ids = [set(table.filter(pl.col("report_cycle") == c)["area_id"].to_list()) for c in (previous, cycle)]
        if not ids[0] & ids[1]:
            notes.append(f"{cycle}: no area id of {previous} recurs (a new geography?); every area counts as "
                         "first_cycle, with no previous class")
    areas = areas.join(_reasons(dimensions, indicators, method, indicator_names or {}),
                       on=["report_cycle", "area_id"], how="left")
    areas = areas.select(
        pl.lit(method.id).alias("method_id"), "report_cycle", "area_id", "area_name", "population", "is_included",
        "exclusion_reason", "combined_class", "is_flagged", "change_since_previous", "is_fragile", "reasons",
    ).sort("report_cycle", "area_id")
    return Classification(
        method=method,
        areas=areas,
        dimensions=dimensions.select(pl.lit(method.id).alias("method_id"), pl.all()).sort(
            "report_cycle", "area_id", "dimension_id"),
        indicators=indicators.select(
            pl.lit(method.id).alias("method_id"), "report_cycle", "area_id", "dimension_id", "indicator_id",
            "source_indicator_id", "value", "city_value", "mean", "sd", "standardised", "weight", "contribution",
        ).sort("report_cycle", "area_id", "dimension_id", "indicator_id"),
        notes=tuple(notes),
    )


def _prepare(table: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise DataError(f"the indicator table lacks column(s) {', '.join(missing)}")
    try:
        table = table.with_columns(*[pl.col(c).cast(t) for c, t in REQUIRED.items()],
                                   *[(pl.col(c) if c in table.columns else pl.lit(None)).cast(t).alias(c)
                                     for c, t in OPTIONAL.items()])
    except pl.exceptions.PolarsError as error:
        raise DataError(f"the indicator table has a column of the wrong type: {error}") from error
    for column in ("report_cycle", "area_id", "indicator_id"):
        if table[column].null_count():
            raise DataError(f"the indicator table has {table[column].null_count()} row(s) without {column}")
    duplicates = table.filter(pl.struct("report_cycle", "area_id", "indicator_id").is_duplicated())
    if duplicates.height:
        first = duplicates.row(0, named=True)
        raise DataError(f"the indicator table holds {duplicates.height} rows for repeated (cycle, area, "
                        f"indicator), e.g. {first['report_cycle']}, {first['area_id']}, {first['indicator_id']}")
    # a fixed row order: sums and standard deviations of floats then come out bit for bit the same on
    # every run, whatever order the rows were read in (DuckDB's parallel scans have none)
    return table.select(*REQUIRED, *OPTIONAL).sort("report_cycle", "area_id", "indicator_id")


def _non_finite(table: pl.DataFrame, method: Method, notes: list[str]) -> pl.DataFrame:
    """Refuse NaN and infinite values, city values and populations, or read them as missing
    (``missing_values: exclude_area``). Left in, one NaN makes every z-score of its cycle NaN, and polars
    orders NaN above every number, so every area would land in the worst class."""
    counts = {}
    for column in NUMBER_COLUMNS:
        bad = table.filter(~pl.col(column).is_finite())  # null is not checked here: it is missing, not bad
        if not bad.height:
            continue
        if method.missing_values == "error":
            first = bad.row(0, named=True)
            raise DataError(
                f"method {method.id!r}: {bad.height} value(s) of column {column} are not finite numbers (NaN or "
                f"infinite), e.g. cycle {first['report_cycle']}, area {first['area_id']}, indicator "
                f"{first['indicator_id']}: {first[column]}; correct them, or set missing_values: exclude_area "
                "to read them as missing")
        counts[column] = bad.height
    if not counts:
        return table
    notes.append("non-finite numbers (NaN or infinite) read as missing (missing_values: exclude_area): "
                 + ", ".join(f"{count} in {column}" for column, count in counts.items()))
    return table.with_columns(pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in NUMBER_COLUMNS)


def _areas(table: pl.DataFrame, method: Method) -> pl.DataFrame:
    """One row per cycle and area: included, or the reason it is left out (in German)."""
    areas = table.group_by("report_cycle", "area_id", maintain_order=True).agg(
        pl.col("area_name").drop_nulls().first(),
        pl.col("population").drop_nulls().first(),
        (pl.col("is_valid") == False).any().alias("marked_invalid"),  # noqa: E712 - null means valid
    )
    reason = (
        pl.when(pl.col("marked_invalid")).then(pl.lit("in den Eingangsdaten als ungültig markiert"))
        .when(pl.col("area_id").is_in(list(method.exclude_areas)))
        .then(pl.lit("in der Methode ausgeschlossen (exclude_areas)"))
    )
    if method.min_population > 0:
        reason = (reason.when(pl.col("population").is_null()).then(pl.lit("Einwohnerzahl fehlt"))
                  .when(pl.col("population") < method.min_population)
                  .then(pl.lit(f"weniger als {format_number(method.min_population, digits=0)} Einwohner")))
    return (areas.with_columns(reason.otherwise(None).alias("exclusion_reason"))
            .with_columns(pl.col("exclusion_reason").is_null().alias("is_included"))
            .drop("marked_invalid"))


def _observations(table: pl.DataFrame, method: Method, cycles: list[int], restated: Restated | None,
                  notes: list[str]) -> pl.DataFrame:
    """Long frame: one row per dimension, indicator, cycle and area, derived (change) indicators computed."""
    grid = table.select("report_cycle", "area_id").unique(maintain_order=True)
    frames = []
    for dimension in method.dimensions:
        for spec in dimension.indicators:
            values, base_of = _indicator_values(table, spec, cycles, restated, notes)
            used = grid.filter(pl.col("report_cycle").map_elements(spec.used_in, return_dtype=pl.Boolean))
            frames.append(
                used.join(values, on=["report_cycle", "area_id"], how="left").with_columns(
                    pl.lit(dimension.id).alias("dimension_id"),
                    pl.lit(spec.id).alias("indicator_id"),
                    pl.lit(spec.source).alias("source_indicator_id"),
                    pl.lit(spec.weight).alias("weight"),
                    pl.lit(spec.direction).alias("direction"),
                    (pl.lit(True) if base_of is None else pl.col("report_cycle").is_in(list(base_of)))
                    .alias("has_base_cycle"),
                )
            )
    return pl.concat(frames, how="vertical").select(
        "dimension_id", "indicator_id", "source_indicator_id", "report_cycle", "area_id", "value", "city_value",
        "weight", "direction", "has_base_cycle").sort("dimension_id", "indicator_id", "report_cycle", "area_id")


def _indicator_values(table: pl.DataFrame, spec: IndicatorSpec, cycles: list[int], restated: Restated | None,
                      notes: list[str]) -> tuple[pl.DataFrame, dict[int, int] | None]:
    """The indicator's values per cycle and area; for a change, also which base cycle each cycle uses. A cycle
    on the restated version whose base cycle is not compares with the base cycle's restated values."""
    source = table.filter(pl.col("indicator_id") == spec.source).select(
        "report_cycle", "area_id", "value", "city_value")
    if spec.change_of is None:
        return source, None
    base_of = {}
    for position, cycle in enumerate(cycles):
        base = cycle - spec.change_years if spec.change_years else (cycles[position - 1] if position else None)
        if base in cycles:
            base_of[cycle] = base
    across = {} if restated is None else {
        cycle: base for cycle, base in base_of.items() if cycle in restated.cycles and base not in restated.cycles}
    bases = pl.DataFrame({"report_cycle": list(base_of), "base_cycle": list(base_of.values()),
                          "is_restated": [cycle in across for cycle in base_of]},
                         schema={"report_cycle": pl.Int32, "base_cycle": pl.Int32, "is_restated": pl.Boolean})
    base_values = source.with_columns(pl.lit(False).alias("is_restated"))
    if across:
        restated_source = restated.values.filter(
            (pl.col("indicator_id") == spec.source) & pl.col("report_cycle").is_in(list(across.values())))
        base_values = pl.concat([base_values, restated_source.select(
            pl.col("report_cycle").cast(pl.Int32), pl.col("area_id").cast(pl.Utf8),
            pl.col("value").cast(pl.Float64), pl.col("city_value").cast(pl.Float64),
            pl.lit(True).alias("is_restated"))], how="vertical")
        for cycle, base in sorted(across.items()):
            used = restated_source.filter(pl.col("report_cycle") == base)
            notes.append(
                f"{cycle}: {spec.id} compares with {base} restated on the geography version of {restated.version} "
                f"(harmonised series; {used['is_estimate'].sum()} of {used.height} base values are estimates "
                "because an area was split)")
    changes = (
        source.join(bases, on="report_cycle", how="inner")
        .join(base_values.rename({"report_cycle": "base_cycle", "value": "base_value",
                                  "city_value": "base_city_value"}),
              on=["base_cycle", "area_id", "is_restated"], how="left")
        .select("report_cycle", "area_id", (pl.col("value") - pl.col("base_value")).alias("value"),
                (pl.col("city_value") - pl.col("base_city_value")).alias("city_value"))
    )
    return changes, base_of


def _check_values(observations: pl.DataFrame, areas: pl.DataFrame, method: Method, notes: list[str]
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Leave out indicators without any value in a cycle (where allowed); refuse or exclude missing values."""
    included = areas.filter("is_included").select("report_cycle", "area_id")
    seen = observations.join(included, on=["report_cycle", "area_id"], how="semi")
    coverage = seen.group_by("dimension_id", "indicator_id", "report_cycle", "has_base_cycle").agg(
        pl.col("value").is_not_null().sum().alias("with_value"), pl.len().alias("areas"))
    policy = {d.id: d.absent_indicators for d in method.dimensions}
    absent = coverage.filter(pl.col("with_value") == 0).sort("report_cycle", "dimension_id", "indicator_id")
    for row in absent.iter_rows(named=True):
        where = f"{row['report_cycle']}, {row['dimension_id']}: {row['indicator_id']}"
        if not row["has_base_cycle"]:
            notes.append(f"{where} needs a cycle before {row['report_cycle']} that the table does not hold; "
                         "left out")
        elif policy[row["dimension_id"]] == "skip":
            notes.append(f"{where} has no values in this cycle; left out (absent_indicators: skip)")
        else:
            raise DataError(f"method {method.id!r}: indicator {row['indicator_id']} has no values in cycle "
                            f"{row['report_cycle']} (dimension {row['dimension_id']}); supply it, or set "
                            "absent_indicators: skip to leave it out where it is absent")
    observations = observations.join(absent.select("dimension_id", "indicator_id", "report_cycle"),
                                     on=["dimension_id", "indicator_id", "report_cycle"], how="anti")

    gaps = (observations.join(included, on=["report_cycle", "area_id"], how="semi")
            .filter(pl.col("value").is_null()).sort("report_cycle", "area_id", "indicator_id"))
    if gaps.height and method.missing_values == "error":
        listed = "; ".join(f"{r['report_cycle']} {r['area_id']} {r['indicator_id']}"
                           for r in gaps.head(MAX_LISTED).iter_rows(named=True))
        raise DataError(f"method {method.id!r}: {gaps.height} missing value(s) for included areas, e.g. {listed}; "
                        "fill them, exclude the areas, or set missing_values: exclude_area")
    if gaps.height:
        reasons = gaps.group_by("report_cycle", "area_id").agg(
            pl.col("indicator_id").unique().sort().str.join(", ").alias("gap"))
        areas = (areas.join(reasons, on=["report_cycle", "area_id"], how="left").with_columns(
            pl.when(pl.col("is_included") & pl.col("gap").is_not_null())
            .then(pl.lit("fehlender Wert: ") + pl.col("gap")).otherwise(pl.col("exclusion_reason"))
            .alias("exclusion_reason"))
            .with_columns(pl.col("exclusion_reason").is_null().alias("is_included")).drop("gap"))
        notes.append(f"{reasons.height} area-cycle(s) left out for missing values (missing_values: exclude_area)")
    return observations, areas


def _refuse_cycles_without_areas(areas: pl.DataFrame, method: Method) -> None:
    """A cycle in which every area is left out would have no classes at all: that is no result, so refuse it
    (even when other cycles have areas) and say why the areas were left out."""
    empty = (areas.group_by("report_cycle").agg(pl.col("is_included").any().alias("any_included"))
             .filter(~pl.col("any_included"))["report_cycle"].sort().to_list())
    if not empty:
        return
    problems = []
    for cycle in empty:
        reasons = (areas.filter(pl.col("report_cycle") == cycle).group_by("exclusion_reason").len()
                   .sort(["len", "exclusion_reason"], descending=[True, False]))
        listed = "; ".join(f"{r['len']} {r['exclusion_reason']}" for r in reasons.iter_rows(named=True))
        problems.append(f"cycle {cycle}: no area left to classify, all {reasons['len'].sum()} areas are left out "
                        f"({listed})")
    rules = [f"min_population ({method.min_population:g})"] if method.min_population > 0 else []
    rules += ["exclude_areas"] if method.exclude_areas else []
    rules += ["missing_values: exclude_area"] if method.missing_values == "exclude_area" else []
    hint = f"; check {', '.join(rules)} against the table" if rules else ""
    raise DataError(f"method {method.id!r}, " + "; ".join(problems) + hint)


def _zscore(column: str, by: list[str], ddof: int) -> pl.Expr:
    return (pl.col(column) - pl.col(column).mean().over(by)) / pl.col(column).std(ddof=ddof).over(by)


def _standardise(observations: pl.DataFrame, dimension: Dimension, method: Method) -> pl.DataFrame:
    group = ["indicator_id", "report_cycle"]
    sign = pl.when(pl.col("direction") == "higher_is_better").then(-1.0).otherwise(1.0)
    frame = observations.with_columns(
        pl.col("value").mean().over(group).alias("mean"),
        pl.col("value").std(ddof=dimension.ddof).over(group).alias("sd"),
    )
    if dimension.standardisation == "z_score":
        overflow = frame.filter(~pl.col("mean").is_finite() | ~pl.col("sd").is_finite())
        if overflow.height:  # the inputs are finite, so only a floating-point overflow gets here
            first = overflow.row(0, named=True)
            raise DataError(f"method {method.id!r}, dimension {dimension.id}: the mean or SD of indicator "
                            f"{first['indicator_id']} in cycle {first['report_cycle']} is not a finite number; the "
                            "values are too large to compute with (check their unit)")
        flat = frame.filter((pl.col("sd") == 0) | pl.col("sd").is_null()).select(group).unique().sort(group)
        if flat.height:
            first = flat.row(0, named=True)
            raise DataError(f"method {method.id!r}, dimension {dimension.id}: indicator {first['indicator_id']} "
                            f"has zero variance in cycle {first['report_cycle']} over the included areas, so it "
                            "cannot be z-standardised; drop it from the method or use deviation_from_city")
        standardised = (pl.col("value") - pl.col("mean")) / pl.col("sd")
    else:
        no_city = frame.filter(pl.col("city_value").is_null()).select(group).unique().sort(group)
        if no_city.height:
            first = no_city.row(0, named=True)
            raise DataError(f"method {method.id!r}, dimension {dimension.id}: {dimension.standardisation} needs "
                            f"the city value, which is missing for {first['indicator_id']} in cycle "
                            f"{first['report_cycle']}; give the city value column")
        standardised = pl.col("value") - pl.col("city_value")
    if dimension.standardisation == "worse_than_city":
        # 1 when worse than the city value by the indicator's direction, else 0
        standardised = ((pl.col("value") - pl.col("city_value")) * sign > 0).cast(pl.Float64)
        near = (pl.col("value") - pl.col("city_value")).abs() <= dimension.sensitivity_margin * pl.col(
            "city_value").abs()
        return frame.with_columns(standardised.alias("standardised"), near.alias("is_near_city")).with_columns(
            (pl.col("standardised") * pl.col("weight")).alias("contribution"))
    return frame.with_columns((standardised * sign).alias("standardised"), pl.lit(False).alias("is_near_city")
                              ).with_columns((pl.col("standardised") * pl.col("weight")).alias("contribution"))


def _class_expr(dimension: Dimension, column: str) -> pl.Expr:
    expr = None
    for spec in dimension.classes[:-1]:
        condition = pl.col(column) < spec.below if spec.below is not None else pl.col(column) <= spec.up_to
        expr = (pl.when(condition) if expr is None else expr.when(condition)).then(pl.lit(spec.code))
    return expr.otherwise(pl.lit(dimension.classes[-1].code)).cast(pl.Int32)


def _dimension_classes(indicators: pl.DataFrame, dimension: Dimension, method: Method) -> pl.DataFrame:
    combined = pl.col("contribution").sum()
    if dimension.combine == "mean":
        combined = combined / pl.col("weight").sum()
    frame = indicators.group_by("report_cycle", "area_id", maintain_order=True).agg(
        combined.alias("raw_index"),
        pl.len().cast(pl.Int32).alias("indicator_count"),
        (pl.col("weight") * (pl.col("is_near_city") & (pl.col("standardised") > 0))).sum().alias("near_worse"),
        (pl.col("weight") * (pl.col("is_near_city") & (pl.col("standardised") <= 0))).sum().alias("near_better"),
    )
    if dimension.restandardise:
        flat = frame.group_by("report_cycle").agg(pl.col("raw_index").std(ddof=dimension.ddof).alias("sd")).filter(
            (pl.col("sd") == 0) | pl.col("sd").is_null())
        if flat.height:
            raise DataError(f"method {method.id!r}, dimension {dimension.id}: the combined index has zero variance "
                            f"in cycle {flat['report_cycle'][0]}, so it cannot be z-standardised again")
        frame = frame.with_columns(_zscore("raw_index", ["report_cycle"], dimension.ddof).alias("index_value"))
    else:
        frame = frame.with_columns(pl.col("raw_index").alias("index_value"))
    overflow = frame.filter(~pl.col("index_value").is_finite() | pl.col("index_value").is_null())
    if overflow.height:  # the inputs are finite, so only a floating-point overflow gets here
        first = overflow.row(0, named=True)
        raise DataError(f"method {method.id!r}, dimension {dimension.id}: the index of {overflow.height} area(s) is "
                        f"not a finite number, e.g. cycle {first['report_cycle']}, area {first['area_id']}; the "
                        "values are too large to compute with (check their unit)")

    margin = dimension.sensitivity_margin
    if dimension.standardisation == "worse_than_city":
        low, high = pl.col("index_value") - pl.col("near_worse"), pl.col("index_value") + pl.col("near_better")
    else:
        low, high = pl.col("index_value") - margin, pl.col("index_value") + margin
    bounds = [c.bound for c in dimension.classes[:-1]]
    labels = {c.code: c.label for c in dimension.classes}
    frame = frame.with_columns(low.alias("low"), high.alias("high")).with_columns(
        _class_expr(dimension, "index_value").alias("class_code"),
        _class_expr(dimension, "low").alias("class_low"),
        _class_expr(dimension, "high").alias("class_high"),
        pl.min_horizontal(*[(pl.col("index_value") - b).abs() for b in bounds]).alias("distance_to_border"),
    ).with_columns(
        pl.col("class_code").replace_strict(labels, return_dtype=pl.Utf8).alias("class_label"),
        ((pl.col("class_low") != pl.col("class_code")) | (pl.col("class_high") != pl.col("class_code")))
        .alias("is_fragile"),
        pl.when(pl.col("class_high") != pl.col("class_code")).then(pl.col("class_high"))
        .when(pl.col("class_low") != pl.col("class_code")).then(pl.col("class_low"))
        .alias("alternative_class_code"),
    )
    # the previous cycle in which this dimension was computed, and the area's class there
    computed = sorted(frame["report_cycle"].unique().to_list())
    previous = pl.DataFrame({"report_cycle": computed[1:], "previous_cycle": computed[:-1]},
                            schema={"report_cycle": pl.Int32, "previous_cycle": pl.Int32})
    before = frame.select(pl.col("report_cycle").alias("previous_cycle"), "area_id",
                          pl.col("class_code").alias("previous_class_code"))
    frame = (frame.join(previous, on="report_cycle", how="left")
             .join(before, on=["previous_cycle", "area_id"], how="left")
             .with_columns(
                 pl.when(pl.col("previous_class_code").is_null()).then(pl.lit("no_previous"))
                 .when(pl.col("class_code") == pl.col("previous_class_code")).then(pl.lit("same"))
                 .when(pl.col("class_code") < pl.col("previous_class_code")).then(pl.lit("better"))
                 .otherwise(pl.lit("worse")).alias("class_change")))
    return frame.select(
        "report_cycle", "area_id", pl.lit(dimension.id).alias("dimension_id"), "indicator_count", "raw_index",
        "index_value", "class_code", "class_label", "previous_cycle", "previous_class_code", "class_change",
        "distance_to_border", "is_fragile", "alternative_class_code",
    )


def _flag(areas: pl.DataFrame, dimensions: pl.DataFrame, method: Method, cycles: list[int]) -> pl.DataFrame:
    wide = dimensions.pivot(on="dimension_id", index=["report_cycle", "area_id"], values="class_code")
    for dimension in method.dimensions:
        if dimension.id not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Int32).alias(dimension.id))
    shorts = {d.id: {c.code: c.short for c in d.classes} for d in method.dimensions}
    combined = pl.concat_str(
        [pl.col(d.id).replace_strict(shorts[d.id], default=None, return_dtype=pl.Utf8).fill_null("")
         for d in method.dimensions])
    fragile = dimensions.group_by("report_cycle", "area_id").agg(pl.col("is_fragile").any())
    wide = wide.with_columns(pl.when(combined != "").then(combined).alias("combined_class"))
    if method.flag_any_of:
        flag = pl.any_horizontal(*[
            pl.all_horizontal(*[pl.col(dimension_id).is_in(list(codes)).fill_null(False)
                                for dimension_id, codes in condition.items()])
            for condition in method.flag_any_of])
        wide = wide.with_columns(flag.alias("is_flagged"))
    else:
        wide = wide.with_columns(pl.lit(None, dtype=pl.Boolean).alias("is_flagged"))
    areas = (areas.join(wide.select("report_cycle", "area_id", "combined_class", "is_flagged"),
                        on=["report_cycle", "area_id"], how="left")
             .join(fragile, on=["report_cycle", "area_id"], how="left"))
    previous = pl.DataFrame({"report_cycle": cycles[1:], "previous_cycle": cycles[:-1]},
                            schema={"report_cycle": pl.Int32, "previous_cycle": pl.Int32})
    before = areas.select(pl.col("report_cycle").alias("previous_cycle"), "area_id",
                          pl.col("is_flagged").alias("was_flagged"))
    return (areas.join(previous, on="report_cycle", how="left")
            .join(before, on=["previous_cycle", "area_id"], how="left")
            .with_columns(
                pl.when(pl.col("is_flagged").is_null()).then(pl.lit(None, dtype=pl.Utf8))
                .when(pl.col("was_flagged").is_null()).then(pl.lit("first_cycle"))
                .when(pl.col("is_flagged") & pl.col("was_flagged")).then(pl.lit("kept"))
                .when(pl.col("is_flagged")).then(pl.lit("new"))
                .when(pl.col("was_flagged")).then(pl.lit("released"))
                .otherwise(pl.lit("not_flagged")).alias("change_since_previous"))
            .drop("previous_cycle", "was_flagged"))


# The unit of a difference of two values (an area's and the city's, or a value and its previous cycle's) by the
# values' unit: two percentages differ by percentage points; every other unit is the difference's own. Declared
# once: the reasons here and the report (social_monitor/report/wording.py) read it.
DIFFERENCE_UNIT_DE = {"%": "%-Punkte"}


def difference_unit(unit: str) -> str:
    """The unit of a difference of two values in ``unit``."""
    return DIFFERENCE_UNIT_DE.get(unit, unit)


def change_name_de(base_name: str) -> str:
    """The German name of a change a method declares itself (``change_of``, without its own ``name_de``): the base
    indicator's name as it is, then "(Veränderung)", which needs no genitive of the name ("SGB-II-Quote
    (Veränderung)"; the catalogue names its own changes "Veränderung der SGB-II-Quote unter 15 Jahren")."""
    return f"{base_name} (Veränderung)"


def format_number(value: float | None, unit: str = "", digits: int = 1, signed: bool = False) -> str:
    """German number format: 1.234,5 %."""
    if value is None:
        return "–"
    text = f"{value:{'+' if signed else ''},.{digits}f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return f"{text} {unit}".strip()


def shown_difference(value: float, other: float, digits: int) -> float:
    """The difference of ``value`` and ``other`` as printed with ``digits`` decimals (each rounded as
    ``format_number`` prints it, then subtracted): the difference a reader computes from the printed numbers."""
    return round(float(f"{value:.{digits}f}") - float(f"{other:.{digits}f}"), digits)


def telling_digits(value: float, other: float, digits: int = 1, most: int = 3) -> int:
    """The decimals that print ``value`` and ``other`` apart: ``digits``, or more (up to ``most``) where they would
    print alike although they differ, so that a reason never reads "20,0 % (Stadt 20,0 %)" for a value the rule
    found worse than the city's."""
    while digits < most and value != other and f"{value:.{digits}f}" == f"{other:.{digits}f}":
        digits += 1
    return digits


def _reasons(dimensions: pl.DataFrame, indicators: pl.DataFrame, method: Method,
             indicator_names: Mapping[str, tuple[str, str]]) -> pl.DataFrame:
    """German text per cycle and area: the class of each dimension and the indicators that put it there, with the
    numbers the method used. ``worse_than_city``: every indicator worse than the city (value and city value);
    otherwise the index and the (up to three) indicators that moved it most towards its side of zero, i.e. the
    class: a class below the city's names the indicators better than the city, never one worse than it. A
    ``deviation_from_city`` indicator shows its deviation from the city value (and its weight); a ``z_score`` one its
    z-score."""
    specs = {(d.id, i.id): i for d in method.dimensions for i in d.indicators}
    by_id = {d.id: d for d in method.dimensions}
    details: dict[tuple[int, str, str], list[dict]] = {}
    for row in indicators.filter(pl.col("contribution").is_not_null() & (pl.col("contribution") != 0)).sort(
            "contribution", descending=True).iter_rows(named=True):
        details.setdefault((row["report_cycle"], row["area_id"], row["dimension_id"]), []).append(row)

    def name_unit(dimension_id: str, indicator_id: str) -> tuple[str, str]:
        spec = specs[(dimension_id, indicator_id)]
        fallback = indicator_names.get(spec.source, (spec.source, ""))
        name = spec.name_de or (change_name_de(fallback[0]) if spec.change_of else fallback[0])
        unit = spec.unit or (difference_unit(fallback[1]) if spec.change_of else fallback[1])
        return name, unit

    def value_and_city(r: dict, unit: str) -> tuple[str, str, str]:
        """The value, the city value and their difference as printed (the difference of the printed values)."""
        digits = telling_digits(r["value"], r["city_value"]) if r["city_value"] is not None else 1
        if r["city_value"] is None:
            return format_number(r["value"], unit, digits), "–", "–"
        shown = shown_difference(r["value"], r["city_value"], digits)
        return (format_number(r["value"], unit, digits), format_number(r["city_value"], unit, digits),
                format_number(shown, difference_unit(unit), digits, signed=True))

    texts: dict[tuple[int, str], list[str]] = {}
    order = {d.id: position for position, d in enumerate(method.dimensions)}
    ordered = dimensions.with_columns(pl.col("dimension_id").replace_strict(order, return_dtype=pl.Int32)
                                      .alias("position")).sort("report_cycle", "area_id", "position")
    for row in ordered.iter_rows(named=True):
        dimension = by_id[row["dimension_id"]]
        rows = details.get((row["report_cycle"], row["area_id"], dimension.id), [])
        if dimension.standardisation == "worse_than_city":
            parts = []
            for r in sorted((r for r in rows if r["contribution"] > 0), key=lambda r: r["indicator_id"]):
                n, u = name_unit(dimension.id, r["indicator_id"])
                value, city, _ = value_and_city(r, u)
                parts.append(f"{n} {value} (Stadt {city})")
            head = row["class_label"]
        else:
            # the indicators on the index's side of zero, strongest first: those that put the area in its class
            index = row["index_value"] or 0.0
            side = (index > 0) - (index < 0)
            strongest = sorted((r for r in rows if r["contribution"] * side > 0),
                               key=lambda r: abs(r["contribution"]), reverse=True)
            parts = []
            for r in strongest[:3]:
                n, u = name_unit(dimension.id, r["indicator_id"])
                if dimension.standardisation == "z_score":
                    parts.append(f"{n} {format_number(r['value'], u)} "
                                 f"(z {format_number(r['standardised'], digits=2, signed=True)})")
                    continue
                value, city, deviation = value_and_city(r, u)
                weight = f", Gewicht {format_number(r['weight'], digits=0)}" if r["weight"] != 1 else ""
                parts.append(f"{n} {value} (Stadt {city}; {deviation}{weight})")
            head = (f"{dimension.name_de} {row['class_label']} "
                    f"({format_number(row['index_value'], digits=2, signed=True)})")
        texts.setdefault((row["report_cycle"], row["area_id"]), []).append(
            head + (": " + "; ".join(parts) if parts else ""))
    return pl.DataFrame(
        {"report_cycle": [k[0] for k in texts], "area_id": [k[1] for k in texts],
         "reasons": [" | ".join(v) for v in texts.values()]},
        schema={"report_cycle": pl.Int32, "area_id": pl.Utf8, "reasons": pl.Utf8})
