"""Calibration of the sample city: from a city's sample input to exact integer counts per report cycle.

A city's sample input lives in its folder, ``<city>/sample/``: ``sample.yml`` names the *planner* (the
model that turns the files into counts) and the files it reads; the areas come from the city's geography
(:mod:`social_monitor.geography`): the base level's areas valid in each cycle are the areas planned. Two
planners ship:

- ``area_pattern`` (:mod:`.pattern`, the Dortmund sample): population and transfer rate per area of a
  grouping level, each base area's weight and transfer index within it, city-wide anchors per year;
- ``base_area_table`` (:mod:`.area_table`, the Berlin sample): residents per base area and cycle as in a
  table, each base area's transfer rate calibrated to a given share where the table gives one.

Both end in :func:`plan_counts`, the generic part of the model: age structure, secondary residences,
nationality, recipients per area, age band and scheme (iterative proportional fitting, IPF), SGB II
Bedarfsgemeinschaften. The plan of a report cycle (:class:`CyclePlan`) holds every count the generator
draws, all integers, so the calibration is exact up to rounding at any scale.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from social_monitor.geography import Geography, load_geography

SAMPLE_DIR = "sample"
SAMPLE_FILE = "sample.yml"
MAX_AGE = 105  # oldest single year of age generated (the contract allows 120)
AGES = np.arange(MAX_AGE + 1)
BANDS = ("0-14", "15-17", "18-64", "65+")
BAND_OF_AGE = np.select([AGES <= 14, AGES <= 17, AGES <= 64], [0, 1, 2], 3).astype(np.int8)
SCHEMES = ("sgb2", "hlu", "gsi", "asylblg")
SGB2, HLU, GSI, ASYLBLG = range(4)


class SampleError(ValueError):
    """A sample input file that cannot be used; the message names the file (and line and column)."""


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise SampleError(f"{path}: missing (named in {path.parent / SAMPLE_FILE})")
    with open(path, encoding="utf-8", newline="") as handle:
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


# --- the sample input of a city ----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSpec:
    """``<city>/sample/sample.yml``: the planner kind, its files (beside sample.yml) and its options."""

    path: Path
    planner: str
    files: dict[str, Path]
    options: dict[str, object]

    def file(self, role: str) -> Path:
        if role not in self.files:
            raise SampleError(f"{self.path}: `files` lacks `{role}` (the {self.planner} planner reads it)")
        return self.files[role]

    def option(self, name: str) -> object:
        if name not in self.options:
            raise SampleError(f"{self.path}: `{name}` is missing (the {self.planner} planner needs it)")
        return self.options[name]


def read_spec(city_dir: Path) -> SampleSpec:
    path = Path(city_dir) / SAMPLE_DIR / SAMPLE_FILE
    if not path.is_file():
        raise SampleError(f"{path}: missing (a city's sample input names its planner and files there; "
                          "README: The sample city)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise SampleError(f"{path}: not valid YAML") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("planner"), str):
        raise SampleError(f"{path}: `planner` must name a planner ({', '.join(sorted(PLANNERS))})")
    files = raw.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise SampleError(f"{path}: `files` must map each input to a file name beside {path.name}")
    options = {key: value for key, value in raw.items() if key not in ("planner", "files")}
    return SampleSpec(path, raw["planner"], {role: path.parent / name for role, name in files.items()}, options)


@dataclass(frozen=True)
class CitySeries:
    """City-wide anchors per year (``city_series.csv``: a column per quantity, a row per anchor year)."""

    series: dict[str, tuple[list[int], list[float]]]  # column -> (anchor years, values)
    path: Path

    def value(self, column: str, year: int) -> float:
        if column not in self.series:
            raise SampleError(f"{self.path}: column {column} is missing")
        years, values = self.series[column]
        return interpolate(years, values, year)


def read_city_series(path: Path, extra: dict[str, list[tuple[int, float]]] | None = None) -> CitySeries:
    """Percentages are read as fractions, ``population`` as persons; ``extra`` adds anchors to a column."""
    rows = read_csv(path)
    if not rows:
        raise SampleError(f"{path}: no rows")
    series: dict[str, tuple[list[int], list[float]]] = {}
    for column in rows[0]:
        if column in ("year", "note"):
            continue
        anchors = [(int(r["year"]), float(r[column])) for r in rows if r[column].strip()]
        if extra and column in extra:
            anchors.extend(extra[column])
            anchors.sort()
        scale = 1.0 if column == "population" else 0.01
        series[column] = ([y for y, _ in anchors], [v * scale for _, v in anchors])
    return CitySeries(series, path)


@dataclass(frozen=True)
class SchemeShares:
    """The split of recipients over the schemes per age band and anchor year (``scheme_shares.csv``)."""

    tables: dict[int, np.ndarray]  # year -> (band, scheme) shares

    def at(self, year: int) -> np.ndarray:
        years = sorted(self.tables)
        stacked = np.stack([self.tables[y] for y in years])
        out = np.empty_like(stacked[0])
        for band in range(stacked.shape[1]):
            for scheme in range(stacked.shape[2]):
                out[band, scheme] = interpolate(years, list(stacked[:, band, scheme]), year)
        return out / out.sum(axis=1, keepdims=True)


def read_scheme_shares(path: Path) -> SchemeShares:
    tables: dict[int, np.ndarray] = {}
    for row in read_csv(path):
        table = tables.setdefault(int(row["year"]), np.zeros((len(BANDS), len(SCHEMES))))
        table[BANDS.index(row["age_band"])] = [float(row[s]) for s in SCHEMES]
    if not tables:
        raise SampleError(f"{path}: no rows")
    for year, table in tables.items():
        if not np.allclose(table.sum(axis=1), 1.0, atol=1e-9):
            raise SampleError(f"{path}: the shares of {year} do not add up to 1 per age band")
        if table[BANDS.index("65+"), SGB2] != 0 or table[:2, GSI].any():
            raise SampleError(f"{path}: SGB II is only paid under 65 and GSI only from 18")
    return SchemeShares(tables)


def read_parameters(path: Path) -> dict[str, float]:
    return {row["name"]: float(row["value"]) for row in read_csv(path)}


# --- the plan of a cycle -----------------------------------------------------------------------------


def base_age_profile() -> np.ndarray:
    """Relative size of each single year of age 0..MAX_AGE before the per-cycle band scaling.

    A smooth stylised pyramid of a large German city (the generic model default): small birth cohorts, a
    student bulge in the twenties, the baby boomers in their fifties, then mortality.
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
    """Every count the generator draws for one report cycle (all integers), per base area."""

    cycle: int
    scale: float
    area_ids: tuple[str, ...]  # the base areas valid in the cycle, in the geography's order
    residents: np.ndarray  # (A, MAX_AGE + 1) main residents by single year of age
    secondary: np.ndarray  # (A,) persons with a secondary residence only
    non_german: np.ndarray  # (A,) non-German main residents
    recipients: np.ndarray  # (A, band, scheme) benefit recipients
    households: np.ndarray  # (A,) SGB II Bedarfsgemeinschaften
    expected: np.ndarray  # (A, band) expected recipients before rounding
    transfer_rate: np.ndarray  # (A,) target transfer rate of each area
    streets: np.ndarray  # (A,) number of streets
    params: dict[str, float]


def plan_counts(
    cycle: int,
    scale: float,
    area_ids: tuple[str, ...],
    totals: np.ndarray,
    rate: np.ndarray,
    relative: np.ndarray,
    params: dict[str, float],
    age_shares: tuple[float, float],
    non_german_share: float,
    band_rates: np.ndarray,
    scheme_shares: np.ndarray,
    streets: np.ndarray,
) -> CyclePlan:
    """The generic part of the model, from the main residents and the transfer rate of each base area.

    ``relative`` is each area's transfer rate relative to the city (it tilts the age structure and
    concentrates non-German residents and recipients); ``age_shares`` the city's shares under 15 and 65+;
    ``band_rates`` the city's transfer rates per age band (the 18-64 entry is ignored: it takes the rest);
    ``scheme_shares`` the (band, scheme) split.
    """
    p = params
    n_areas = len(area_ids)
    city_total = int(totals.sum())

    # Age structure: a base pyramid tilted younger in poorer areas; band factors fitted to the city shares.
    tilt = p["age_tilt"] * np.clip(np.log(relative), p["age_tilt_min"], p["age_tilt_max"])
    shape = np.select([AGES <= 17, AGES <= 39, AGES <= 64], [1.0, 0.6, 0.0], -1.0)
    profile = base_age_profile()[None, :] * np.exp(tilt[:, None] * shape[None, :])
    profile /= profile.sum(axis=1, keepdims=True)
    group = np.select([AGES <= 14, AGES <= 64], [0, 1], 2)
    target_share = np.array([age_shares[0], 0.0, age_shares[1]])
    target_share[1] = 1 - target_share[0] - target_share[2]
    factor = np.ones(3)
    for _ in range(50):
        fitted = profile * factor[group][None, :]
        fitted /= fitted.sum(axis=1, keepdims=True)
        city = (fitted * totals[:, None]).sum(axis=0)
        share = np.bincount(group, weights=city, minlength=3) / max(city.sum(), 1e-12)
        factor *= target_share / share
    profile = profile * factor[group][None, :]
    residents = np.stack([apportion(int(totals[u]), profile[u]) for u in range(n_areas)])

    # Secondary residences (Nebenwohnung): proportional to the main residents.
    secondary = apportion(round_half_up(city_total * p["secondary_residence_share"]), totals)

    # Non-German nationals: city share, higher in poorer areas, capped.
    non_german_weight = totals * relative ** p["non_german_gradient"]
    non_german = apportion(round_half_up(city_total * non_german_share), non_german_weight)
    non_german = np.minimum(non_german, np.floor(totals * p["non_german_max_share"]).astype(np.int64))

    # Expected recipients per area and age band: IPF to the area totals and the city band totals.
    band_pop = np.stack([residents[:, BAND_OF_AGE == b].sum(axis=1) for b in range(len(BANDS))], axis=1)
    city_band = band_pop.sum(axis=0).astype(np.float64)
    col = band_rates * city_band
    row = rate * totals
    col[2] = row.sum() - col.sum()
    if col[2] <= 0:
        raise SampleError(f"cycle {cycle}: the age-band rates exceed the overall transfer rate")
    gradient = np.array([p["gradient_0_14"], p["gradient_15_17"], p["gradient_18_64"], p["gradient_65plus"]])
    seed = band_pop * relative[:, None] ** gradient[None, :]
    expected = ipf(seed, row, col)
    if (expected > 0.95 * band_pop + 1e-9).any():
        raise SampleError(f"cycle {cycle}: calibration asks for more recipients than residents in an area")

    # Exact integer recipients: per age band, largest remainder over the areas.
    counts = np.stack(
        [apportion(round_half_up(expected[:, b].sum()), expected[:, b]) for b in range(len(BANDS))], axis=1
    )
    counts = np.minimum(counts, band_pop)

    # Schemes: the small schemes per age band over the areas (AsylbLG where non-Germans live),
    # the rest goes to the main scheme of the band (SGB II under 65, GSI from 65).
    shares = scheme_shares
    recipients = np.zeros((n_areas, len(BANDS), len(SCHEMES)), dtype=np.int64)
    non_german_share_of = non_german / np.maximum(totals, 1)
    for b in range(len(BANDS)):
        main = GSI if b == BANDS.index("65+") else SGB2
        left = counts[:, b].copy()
        for scheme in (ASYLBLG, HLU, GSI, SGB2):
            if scheme == main:
                continue
            weight = counts[:, b] * (non_german_share_of if scheme == ASYLBLG else 1.0)
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
        area_ids=area_ids,
        residents=residents,
        secondary=secondary,
        non_german=non_german,
        recipients=recipients,
        households=households,
        expected=expected,
        transfer_rate=rate,
        streets=streets,
        params=dict(p),
    )


# --- planners ----------------------------------------------------------------------------------------


class Planner(Protocol):
    def plan(self, cycle: int, scale: float) -> CyclePlan: ...


def _planners() -> dict[str, Callable[[SampleSpec, Geography], Planner]]:
    from social_monitor.sample_city.area_table import BaseAreaTablePlanner
    from social_monitor.sample_city.pattern import AreaPatternPlanner

    return {"area_pattern": AreaPatternPlanner, "base_area_table": BaseAreaTablePlanner}


PLANNERS = ("area_pattern", "base_area_table")


@cache
def _load_planner(city_dir: Path) -> Planner:
    spec = read_spec(city_dir)
    planners = _planners()
    if spec.planner not in planners:
        raise SampleError(f"{spec.path}: planner {spec.planner!r} is not one of {', '.join(sorted(planners))}")
    return planners[spec.planner](spec, load_geography(city_dir))


def load_planner(city_dir: Path) -> Planner:
    """The planner a city folder's ``sample/sample.yml`` names, with its input read (cached per folder)."""
    return _load_planner(Path(city_dir).resolve())


def plan_cycle(city_dir: Path, cycle: int, scale: float = 1.0) -> CyclePlan:
    """Integer counts of one report cycle of a city's sample at a scale (1.0 = the size of the city)."""
    if not scale > 0:
        raise ValueError("scale must be positive")
    return load_planner(city_dir).plan(int(cycle), scale)
