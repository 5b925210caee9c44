"""Calibration of the sample city: from the data files in this folder to exact integer counts per cycle.

Inputs (all data, documented figure by figure in ``CALIBRATION.md``):

- ``calibration.csv``: per statistischer Bezirk the population of 2018 (published or assumed) and the
  Transferleistungsquote of 2007 and 2018 (assumed, chosen to meet the published qualitative facts);
- ``unterbezirk_calibration.csv``: per Unterbezirk its population weight within the Bezirk and its
  transfer index (relative to the Bezirk) in 2007 and 2018, with the published Quartier overrides;
- ``city_series.csv``: city-wide anchors per year (population, transfer rates overall / under 15 / 65+,
  age shares, share of non-German nationals), interpolated linearly between anchors and held constant
  outside them;
- ``scheme_shares.csv``: the split of recipients over SGB II, HLU, GSI and AsylbLG per age band;
- ``model_parameters.csv``: the remaining model constants.

The plan of a report cycle (:func:`plan_cycle`) holds every count the generator draws, all integers, so
the calibration is exact up to rounding at any scale: residents per Unterbezirk and single year of age,
secondary residents, non-German nationals, recipients per Unterbezirk, age band and scheme, and SGB II
Bedarfsgemeinschaften. Expected recipients per Unterbezirk and age band are fitted by iterative
proportional fitting (IPF) so that every Unterbezirk meets its transfer rate and the city meets its rates
per age band exactly; the scale constants of the age bands are what IPF solves for.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from social_monitor.sample_city.reference import read_reference

DATA_DIR = Path(__file__).resolve().parent
MAX_AGE = 105  # oldest single year of age generated (the contract allows 120)
AGES = np.arange(MAX_AGE + 1)
BANDS = ("0-14", "15-17", "18-64", "65+")
BAND_OF_AGE = np.select([AGES <= 14, AGES <= 17, AGES <= 64], [0, 1, 2], 3).astype(np.int8)
SCHEMES = ("sgb2", "hlu", "gsi", "asylblg")
SGB2, HLU, GSI, ASYLBLG = range(4)
# Anchor years of the per-area transfer pattern (calibration.csv); outside them the pattern is constant.
PATTERN_YEARS = (2007, 2018)
MIN_YEAR = 2000


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def interpolate(years: list[int], values: list[float], year: float) -> float:
    """Linear between anchor years, constant before the first and after the last anchor."""
    return float(np.interp(year, years, values))


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding: non-negative integers proportional to ``weights`` summing to ``total``.

    Each result is the floor or the ceiling of its exact share; ties go to the lower index, so the
    rounding is deterministic.
    """
    weights = np.asarray(weights, dtype=np.float64)
    out = np.zeros(weights.shape, dtype=np.int64)
    weight_sum = weights.sum()
    if total <= 0 or weight_sum <= 0:
        return out
    exact = total * (weights / weight_sum)
    out = np.floor(exact).astype(np.int64)
    rest = int(total - out.sum())
    if rest > 0:
        order = np.lexsort((np.arange(exact.size), -(exact - out).ravel()))
        out.ravel()[order[:rest]] += 1
    return out


def round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def ipf(seed: np.ndarray, row_targets: np.ndarray, col_targets: np.ndarray, iterations: int = 500) -> np.ndarray:
    """Iterative proportional fitting of ``seed`` to row and column sums (which must add up alike)."""
    fitted = seed.astype(np.float64).copy()
    for _ in range(iterations):
        rows = fitted.sum(axis=1)
        fitted *= np.divide(row_targets, rows, out=np.zeros_like(rows), where=rows > 0)[:, None]
        cols = fitted.sum(axis=0)
        fitted *= np.divide(col_targets, cols, out=np.zeros_like(cols), where=cols > 0)[None, :]
        if np.abs(fitted.sum(axis=1) - row_targets).max() < 1e-9 * max(1.0, row_targets.max()):
            break
    return fitted


@dataclass(frozen=True)
class Inputs:
    """The calibration data, arranged per Unterbezirk (in the order of the reference seed)."""

    unterbezirk_ids: tuple[str, ...]
    bezirk_of: np.ndarray  # index into bezirk_ids per Unterbezirk
    bezirk_ids: tuple[str, ...]
    bezirk_population_2018: np.ndarray
    bezirk_rate: dict[int, np.ndarray]  # pattern year -> transfer rate (fraction) per Bezirk
    ub_share: np.ndarray  # population share of the Unterbezirk within its Bezirk
    ub_index: dict[int, np.ndarray]  # pattern year -> transfer index, population-weighted mean 1 per Bezirk
    ub_streets: np.ndarray  # number of streets per Unterbezirk
    series: dict[str, tuple[list[int], list[float]]]  # column -> (anchor years, values)
    scheme_shares: dict[int, np.ndarray]  # year -> (band, scheme) shares
    params: dict[str, float]

    def city_value(self, column: str, year: int) -> float:
        years, values = self.series[column]
        return interpolate(years, values, year)

    def shares(self, year: int) -> np.ndarray:
        years = sorted(self.scheme_shares)
        stacked = np.stack([self.scheme_shares[y] for y in years])
        out = np.empty_like(stacked[0])
        for band in range(stacked.shape[1]):
            for scheme in range(stacked.shape[2]):
                out[band, scheme] = interpolate(years, list(stacked[:, band, scheme]), year)
        return out / out.sum(axis=1, keepdims=True)


@cache
def load_inputs() -> Inputs:
    """Read the calibration files and the reference geography (cached)."""
    unterbezirke = read_reference("unterbezirke")
    bezirk_rows = {row["bezirk_id"]: row for row in _read_csv("calibration.csv")}
    bezirk_ids = tuple(row["bezirk_id"] for row in read_reference("statistische_bezirke"))
    missing = [b for b in bezirk_ids if b not in bezirk_rows]
    if missing:
        raise ValueError(f"calibration.csv lacks the statistische Bezirke {missing}")
    ub_rows = {row["unterbezirk_id"]: row for row in _read_csv("unterbezirk_calibration.csv")}
    params = {row["name"]: float(row["value"]) for row in _read_csv("model_parameters.csv")}

    ub_ids = tuple(row["unterbezirk_id"] for row in unterbezirke)
    bezirk_pos = {b: i for i, b in enumerate(bezirk_ids)}
    bezirk_of = np.array([bezirk_pos[row["bezirk_id"]] for row in unterbezirke])

    def ub_value(ub: str, column: str) -> float:
        row = ub_rows.get(ub)
        return float(row[column]) if row and row.get(column) else 1.0

    weight = np.array([ub_value(ub, "population_weight") for ub in ub_ids])
    bezirk_weight = np.bincount(bezirk_of, weights=weight, minlength=len(bezirk_ids))
    ub_share = weight / bezirk_weight[bezirk_of]

    bezirk_population = np.array([float(bezirk_rows[b]["population_2018"]) for b in bezirk_ids])
    bezirk_rate: dict[int, np.ndarray] = {}
    ub_index: dict[int, np.ndarray] = {}
    for year in PATTERN_YEARS:
        bezirk_rate[year] = np.array([float(bezirk_rows[b][f"transfer_rate_{year}"]) / 100 for b in bezirk_ids])
        raw = np.array([ub_value(ub, f"transfer_index_{year}") for ub in ub_ids])
        mean = np.bincount(bezirk_of, weights=raw * ub_share, minlength=len(bezirk_ids))
        ub_index[year] = raw / mean[bezirk_of]

    ub_population_2018 = bezirk_population[bezirk_of] * ub_share
    ub_streets = np.maximum(3, np.round(ub_population_2018 / params["persons_per_street"])).astype(np.int64)

    series: dict[str, tuple[list[int], list[float]]] = {}
    series_rows = _read_csv("city_series.csv")
    for column in series_rows[0]:
        if column in ("year", "note"):
            continue
        anchors = [(int(r["year"]), float(r[column])) for r in series_rows if r[column].strip()]
        if column == "population":
            anchors.append((2018, float(bezirk_population.sum())))
            anchors.sort()
        scale = 1.0 if column == "population" else 0.01
        series[column] = ([y for y, _ in anchors], [v * scale for _, v in anchors])

    scheme_shares: dict[int, np.ndarray] = {}
    for row in _read_csv("scheme_shares.csv"):
        table = scheme_shares.setdefault(int(row["year"]), np.zeros((len(BANDS), len(SCHEMES))))
        table[BANDS.index(row["age_band"])] = [float(row[s]) for s in SCHEMES]
    for year, table in scheme_shares.items():
        if not np.allclose(table.sum(axis=1), 1.0, atol=1e-9):
            raise ValueError(f"scheme_shares.csv: the shares of {year} do not add up to 1 per age band")
        if table[BANDS.index("65+"), SGB2] != 0 or table[:2, GSI].any():
            raise ValueError("scheme_shares.csv: SGB II is only paid under 65 and GSI only from 18")

    return Inputs(
        unterbezirk_ids=ub_ids,
        bezirk_of=bezirk_of,
        bezirk_ids=bezirk_ids,
        bezirk_population_2018=bezirk_population,
        bezirk_rate=bezirk_rate,
        ub_share=ub_share,
        ub_index=ub_index,
        ub_streets=ub_streets,
        series=series,
        scheme_shares=scheme_shares,
        params=params,
    )


def base_age_profile() -> np.ndarray:
    """Relative size of each single year of age 0..MAX_AGE before the per-cycle band scaling.

    A smooth stylised pyramid of a large West German city: small birth cohorts, a student bulge in the
    twenties, the baby boomers in their fifties, then mortality.
    """
    a = AGES.astype(np.float64)
    profile = (
        0.85
        + 0.30 * np.exp(-(((a - 27) / 7.0) ** 2))
        + 0.55 * np.exp(-(((a - 56) / 8.0) ** 2))
        + 0.15 * np.clip((a - 15) / 20, 0, 1)
    )
    old = a >= 60
    profile[old] *= np.exp(-(((a[old] - 60) / 24.0) ** 2))
    return profile


@dataclass(frozen=True)
class CyclePlan:
    """Every count the generator draws for one report cycle (all integers)."""

    cycle: int
    scale: float
    unterbezirk_ids: tuple[str, ...]
    residents: np.ndarray  # (U, MAX_AGE + 1) main residents by single year of age
    secondary: np.ndarray  # (U,) persons with a secondary residence only
    non_german: np.ndarray  # (U,) non-German main residents
    recipients: np.ndarray  # (U, band, scheme) benefit recipients
    households: np.ndarray  # (U,) SGB II Bedarfsgemeinschaften
    expected: np.ndarray  # (U, band) expected recipients before rounding
    transfer_rate: np.ndarray  # (U,) target transfer rate of each Unterbezirk
    streets: np.ndarray  # (U,) number of streets
    params: dict[str, float]


def area_rates(inputs: Inputs, cycle: int) -> np.ndarray:
    """Unscaled transfer rate per Unterbezirk (Bezirk rate × Unterbezirk index, interpolated)."""
    pattern = {y: inputs.bezirk_rate[y][inputs.bezirk_of] * inputs.ub_index[y] for y in PATTERN_YEARS}
    first, last = PATTERN_YEARS
    t = min(max((cycle - first) / (last - first), 0.0), 1.0)
    return (1 - t) * pattern[first] + t * pattern[last]


def plan_cycle(cycle: int, scale: float = 1.0) -> CyclePlan:
    """Integer counts of one report cycle at a scale (1.0 = the size of the city)."""
    if cycle < MIN_YEAR:
        raise ValueError(f"report cycle {cycle}: the sample city starts in {MIN_YEAR}")
    if not scale > 0:
        raise ValueError("scale must be positive")
    inputs = load_inputs()
    p = inputs.params
    n_ub = len(inputs.unterbezirk_ids)

    # Population: city -> Bezirk -> Unterbezirk (each level by largest remainder).
    city_total = round_half_up(inputs.city_value("population", cycle) * scale)
    bezirk_total = apportion(city_total, inputs.bezirk_population_2018)
    ub_total = np.zeros(n_ub, dtype=np.int64)
    for b in range(len(inputs.bezirk_ids)):
        members = np.flatnonzero(inputs.bezirk_of == b)
        ub_total[members] = apportion(int(bezirk_total[b]), inputs.ub_share[members])

    # Transfer rate per Unterbezirk, scaled so that the city meets its rate exactly.
    raw_rate = area_rates(inputs, cycle)
    city_rate = inputs.city_value("transfer_rate", cycle)
    rate = raw_rate * city_rate * ub_total.sum() / max((ub_total * raw_rate).sum(), 1e-12)
    relative = np.clip(raw_rate / np.average(raw_rate, weights=np.maximum(ub_total, 1)), 1e-6, None)

    # Age structure: a base pyramid tilted younger in poorer areas; band factors fitted to the city shares.
    tilt = p["age_tilt"] * np.clip(np.log(relative), p["age_tilt_min"], p["age_tilt_max"])
    shape = np.select([AGES <= 17, AGES <= 39, AGES <= 64], [1.0, 0.6, 0.0], -1.0)
    profile = base_age_profile()[None, :] * np.exp(tilt[:, None] * shape[None, :])
    profile /= profile.sum(axis=1, keepdims=True)
    group = np.select([AGES <= 14, AGES <= 64], [0, 1], 2)
    target_share = np.array([inputs.city_value("share_under15", cycle), 0.0, inputs.city_value("share_65plus", cycle)])
    target_share[1] = 1 - target_share[0] - target_share[2]
    factor = np.ones(3)
    for _ in range(50):
        fitted = profile * factor[group][None, :]
        fitted /= fitted.sum(axis=1, keepdims=True)
        city = (fitted * ub_total[:, None]).sum(axis=0)
        share = np.bincount(group, weights=city, minlength=3) / max(city.sum(), 1e-12)
        factor *= target_share / share
    profile = profile * factor[group][None, :]
    residents = np.stack([apportion(int(ub_total[u]), profile[u]) for u in range(n_ub)])

    # Secondary residences (Nebenwohnung): proportional to the main residents.
    secondary = apportion(round_half_up(city_total * p["secondary_residence_share"]), ub_total)

    # Non-German nationals: city share, higher in poorer areas, capped.
    non_german_weight = ub_total * relative ** p["non_german_gradient"]
    non_german = apportion(round_half_up(city_total * inputs.city_value("non_german_share", cycle)), non_german_weight)
    non_german = np.minimum(non_german, np.floor(ub_total * p["non_german_max_share"]).astype(np.int64))

    # Expected recipients per Unterbezirk and age band: IPF to the area totals and the city band totals.
    band_pop = np.stack([residents[:, BAND_OF_AGE == b].sum(axis=1) for b in range(len(BANDS))], axis=1)
    city_band = band_pop.sum(axis=0).astype(np.float64)
    rate_child = inputs.city_value("transfer_rate_under15", cycle)
    rate_old = inputs.city_value("transfer_rate_65plus", cycle)
    col = np.array([rate_child, rate_child * p["youth_rate_factor"], 0.0, rate_old]) * city_band
    row = rate * ub_total
    col[2] = row.sum() - col.sum()
    if col[2] <= 0:
        raise ValueError(f"cycle {cycle}: the age-band rates exceed the overall transfer rate")
    gradient = np.array([p["gradient_0_14"], p["gradient_15_17"], p["gradient_18_64"], p["gradient_65plus"]])
    seed = band_pop * relative[:, None] ** gradient[None, :]
    expected = ipf(seed, row, col)
    if (expected > 0.95 * band_pop + 1e-9).any():
        raise ValueError(f"cycle {cycle}: calibration asks for more recipients than residents in an area")

    # Exact integer recipients: per age band, largest remainder over the Unterbezirke.
    counts = np.stack(
        [apportion(round_half_up(expected[:, b].sum()), expected[:, b]) for b in range(len(BANDS))], axis=1
    )
    counts = np.minimum(counts, band_pop)

    # Schemes: the small schemes per age band over the Unterbezirke (AsylbLG where non-Germans live),
    # the rest goes to the main scheme of the band (SGB II under 65, GSI from 65).
    shares = inputs.shares(cycle)
    recipients = np.zeros((n_ub, len(BANDS), len(SCHEMES)), dtype=np.int64)
    non_german_share = non_german / np.maximum(ub_total, 1)
    for b in range(len(BANDS)):
        main = GSI if b == BANDS.index("65+") else SGB2
        left = counts[:, b].copy()
        for scheme in (ASYLBLG, HLU, GSI, SGB2):
            if scheme == main:
                continue
            weight = counts[:, b] * (non_german_share if scheme == ASYLBLG else 1.0)
            n = apportion(round_half_up(counts[:, b].sum() * shares[b, scheme]), weight)
            n = np.minimum(n, left)
            recipients[:, b, scheme] = n
            left -= n
        recipients[:, b, main] = left

    # SGB II Bedarfsgemeinschaften: city total from persons per household, apportioned by SGB II persons.
    sgb2 = recipients[:, :, SGB2].sum(axis=1)
    households = apportion(round_half_up(sgb2.sum() / p["persons_per_household_sgb2"]), sgb2)
    adults = recipients[:, BANDS.index("18-64"), SGB2]
    households = np.clip(households, np.minimum(sgb2, 1), np.maximum(adults, np.minimum(sgb2, 1)))

    return CyclePlan(
        cycle=cycle,
        scale=scale,
        unterbezirk_ids=inputs.unterbezirk_ids,
        residents=residents,
        secondary=secondary,
        non_german=non_german,
        recipients=recipients,
        households=households,
        expected=expected,
        transfer_rate=rate,
        streets=inputs.ub_streets,
        params=dict(p),
    )
