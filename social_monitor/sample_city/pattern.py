"""The ``area_pattern`` planner (the Dortmund sample): a pattern of areas, each base area's share within.

``sample.yml`` names the grouping level (``pattern_level``, e.g. the statistische Bezirke), its anchor
years (``pattern_years``), the year of its population figures (``population_year``), the first report
cycle it plans (``first_cycle``) and the files:

- ``pattern_areas``: per area of the pattern level (``area_id``) its population in the population year
  (``population_<year>``) and its transfer rate in % in each pattern year (``transfer_rate_<year>``);
- ``base_areas``: per base area (``area_id``) its population weight within its pattern area and its
  transfer index in each pattern year (``transfer_index_<year>``, relative to the pattern area; empty = 1);
- ``city_series``: city anchors per year (population, transfer rate overall / under 15 / 65+, age shares,
  non-German share), interpolated linearly between anchors and held constant outside them;
- ``scheme_shares``: the split of recipients over SGB II, HLU, GSI and AsylbLG per age band;
- ``model_parameters``: the remaining model constants.

Population: city -> pattern area -> base area, each step by largest remainder. Transfer rate per base
area: pattern area rate × base area index, interpolated between the pattern years, scaled so that the city
meets its rate exactly; IPF then meets the city's rates per age band (see config/dortmund/sample/CALIBRATION.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from social_monitor.geography import Geography
from social_monitor.sample_city.calibration import (
    CitySeries,
    CyclePlan,
    SampleError,
    SampleSpec,
    SchemeShares,
    apportion,
    plan_counts,
    read_city_series,
    read_csv,
    read_parameters,
    read_scheme_shares,
    round_half_up,
)


@dataclass(frozen=True)
class Inputs:
    """The calibration data, arranged per base area (in the geography's order) for one set of base areas."""

    area_ids: tuple[str, ...]
    pattern_of: np.ndarray  # index into pattern_ids per base area
    pattern_ids: tuple[str, ...]
    pattern_population: np.ndarray
    pattern_rate: dict[int, np.ndarray]  # pattern year -> transfer rate (fraction) per pattern area
    share: np.ndarray  # population share of the base area within its pattern area
    index: dict[int, np.ndarray]  # pattern year -> transfer index, population-weighted mean 1 per pattern area
    streets: np.ndarray  # number of streets per base area
    series: CitySeries


class AreaPatternPlanner:
    def __init__(self, spec: SampleSpec, geography: Geography):
        self.spec = spec
        self.geography = geography
        self.level = str(spec.option("pattern_level"))
        geography.level(self.level)  # an unknown level is an error naming levels.yml
        self.years = tuple(int(y) for y in spec.option("pattern_years"))  # type: ignore[union-attr]
        if len(self.years) != 2 or self.years[0] >= self.years[1]:
            raise SampleError(f"{spec.path}: pattern_years must be two years, the earlier first")
        self.population_year = int(spec.option("population_year"))  # type: ignore[arg-type]
        self.first_cycle = int(spec.option("first_cycle"))  # type: ignore[arg-type]
        self.pattern_rows = {row["area_id"]: row for row in read_csv(spec.file("pattern_areas"))}
        self.base_rows = {row["area_id"]: row for row in read_csv(spec.file("base_areas"))}
        self.params = read_parameters(spec.file("model_parameters"))
        self.scheme_shares: SchemeShares = read_scheme_shares(spec.file("scheme_shares"))
        self._inputs = cache(self._read_inputs)

    def _read_inputs(self, base_ids: tuple[str, ...], pattern_ids: tuple[str, ...],
                     pattern_of_base: tuple[str, ...]) -> Inputs:
        path = self.spec.file("pattern_areas")
        missing = [a for a in pattern_ids if a not in self.pattern_rows]
        if missing:
            raise SampleError(f"{path}: lacks the {self.geography.level(self.level).plural_de} {missing}")
        pattern_pos = {a: i for i, a in enumerate(pattern_ids)}
        pattern_of = np.array([pattern_pos[a] for a in pattern_of_base])

        def base_value(area: str, column: str) -> float:
            row = self.base_rows.get(area)
            return float(row[column]) if row and row.get(column) else 1.0

        weight = np.array([base_value(a, "population_weight") for a in base_ids])
        pattern_weight = np.bincount(pattern_of, weights=weight, minlength=len(pattern_ids))
        share = weight / pattern_weight[pattern_of]

        population = np.array([float(self.pattern_rows[a][f"population_{self.population_year}"]) for a in pattern_ids])
        rates: dict[int, np.ndarray] = {}
        index: dict[int, np.ndarray] = {}
        for year in self.years:
            rates[year] = np.array([float(self.pattern_rows[a][f"transfer_rate_{year}"]) / 100 for a in pattern_ids])
            raw = np.array([base_value(a, f"transfer_index_{year}") for a in base_ids])
            mean = np.bincount(pattern_of, weights=raw * share, minlength=len(pattern_ids))
            index[year] = raw / mean[pattern_of]

        base_population = population[pattern_of] * share
        streets = np.maximum(3, np.round(base_population / self.params["persons_per_street"])).astype(np.int64)
        series = read_city_series(self.spec.file("city_series"),
                                  {"population": [(self.population_year, float(population.sum()))]})
        return Inputs(base_ids, pattern_of, pattern_ids, population, rates, share, index, streets, series)

    def inputs(self, cycle: int) -> Inputs:
        base_ids = self.geography.base_keys(cycle)
        pattern_ids = tuple(area.area_id for area in self.geography.areas_of(self.level, cycle))
        group = {base: area for base, level, area in self.geography.memberships(cycle) if level == self.level}
        return self._inputs(base_ids, pattern_ids, tuple(group[base] for base in base_ids))

    def area_rates(self, inputs: Inputs, cycle: int) -> np.ndarray:
        """Unscaled transfer rate per base area (pattern area rate × base area index, interpolated)."""
        pattern = {y: inputs.pattern_rate[y][inputs.pattern_of] * inputs.index[y] for y in self.years}
        first, last = self.years
        t = min(max((cycle - first) / (last - first), 0.0), 1.0)
        return (1 - t) * pattern[first] + t * pattern[last]

    def plan(self, cycle: int, scale: float) -> CyclePlan:
        if cycle < self.first_cycle:
            raise ValueError(f"report cycle {cycle}: the sample city starts in {self.first_cycle} ({self.spec.path})")
        inputs = self.inputs(cycle)
        p = self.params
        n_areas = len(inputs.area_ids)

        # Population: city -> pattern area -> base area (each level by largest remainder).
        city_total = round_half_up(inputs.series.value("population", cycle) * scale)
        pattern_total = apportion(city_total, inputs.pattern_population)
        totals = np.zeros(n_areas, dtype=np.int64)
        for g in range(len(inputs.pattern_ids)):
            members = np.flatnonzero(inputs.pattern_of == g)
            totals[members] = apportion(int(pattern_total[g]), inputs.share[members])

        # Transfer rate per base area, scaled so that the city meets its rate exactly.
        raw_rate = self.area_rates(inputs, cycle)
        city_rate = inputs.series.value("transfer_rate", cycle)
        rate = raw_rate * city_rate * totals.sum() / max((totals * raw_rate).sum(), 1e-12)
        relative = np.clip(raw_rate / np.average(raw_rate, weights=np.maximum(totals, 1)), 1e-6, None)

        rate_child = inputs.series.value("transfer_rate_under15", cycle)
        rate_old = inputs.series.value("transfer_rate_65plus", cycle)
        return plan_counts(
            cycle, scale, inputs.area_ids, totals, rate, relative, p,
            age_shares=(inputs.series.value("share_under15", cycle), inputs.series.value("share_65plus", cycle)),
            non_german_share=inputs.series.value("non_german_share", cycle),
            band_rates=np.array([rate_child, rate_child * p["youth_rate_factor"], 0.0, rate_old]),
            scheme_shares=self.scheme_shares.at(cycle),
            streets=inputs.streets,
            unemployed_share_15_64=inputs.series.value("unemployment_rate_ba", cycle) * p["labour_force_share_15_64"],
        )  # fmt: skip
