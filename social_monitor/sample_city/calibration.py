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
Bedarfsgemeinschaften, registered unemployed persons (SGB II and SGB III, long-term or not). The plan of a
report cycle (:class:`CyclePlan`) holds every count the generator
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
U_SGB2, U_SGB3 = range(2)  # the unemployed's legal basis: positions in schemas.raw.LEGAL_BASES (SGB II, SGB III)
UNEMPLOYED_MIN_AGE, UNEMPLOYED_MAX_AGE = 15, 64  # the unemployed are drawn from residents of these ages


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
class AreaTargets:
    """Per base area (the plan's ``area_ids`` order) targets of the MSS status indicators as fractions; NaN =
    no target for that area and measure. When given to :func:`plan_counts`, an area's planned count is the
    target times its planned denominator rounded half up to whole persons:

    - ``unemployed_15_64`` (S1/100): unemployed (SGB II + SGB III) per resident aged 15-64;
    - ``long_term_15_64`` (S2/100): unemployed one year or longer per resident aged 15-64;
    - ``transfer_not_unemployed`` (S3/100): SGB II recipients not unemployed + SGB XII recipients per resident;
    - ``sgb2_0_14`` (S4/100): SGB II recipients under 15 per resident under 15.
    """

    unemployed_15_64: np.ndarray
    long_term_15_64: np.ndarray
    transfer_not_unemployed: np.ndarray
    sgb2_0_14: np.ndarray

    FIELDS = ("unemployed_15_64", "long_term_15_64", "transfer_not_unemployed", "sgb2_0_14")

    def of(self, field: str, n_areas: int) -> np.ndarray:
        values = np.asarray(getattr(self, field), dtype=np.float64)
        if values.shape != (n_areas,):
            raise SampleError(f"targets: {field} has shape {values.shape}, expected ({n_areas},) (one per base area)")
        if (values[np.isfinite(values)] < 0).any() or (values[np.isfinite(values)] > 1).any():
            raise SampleError(f"targets: {field} must be fractions from 0 to 1 (or NaN for no target)")
        return values


@dataclass(frozen=True)
class TargetMiss:
    """A target the plan could not meet (infeasible with the area's persons): what it asked and what was planned."""

    area_id: str
    measure: str  # an AreaTargets field
    target: int  # whole persons asked for (target × planned denominator, rounded)
    planned: int


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
    unemployed: np.ndarray  # (A, legal basis) registered unemployed aged 15-64 (U_SGB2, U_SGB3)
    long_term: np.ndarray  # (A, legal basis) of them unemployed one year or longer
    target_misses: tuple[TargetMiss, ...] = ()  # targets (AreaTargets) infeasible for an area: closest planned


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
    *,
    unemployed_share_15_64: float | None = None,
    targets: AreaTargets | None = None,
) -> CyclePlan:
    """The generic part of the model, from the main residents and the transfer rate of each base area.

    ``relative`` is each area's transfer rate relative to the city (it tilts the age structure and
    concentrates non-German residents and recipients); ``age_shares`` the city's shares under 15 and 65+;
    ``band_rates`` the city's transfer rates per age band (the 18-64 entry is ignored: it takes the rest);
    ``scheme_shares`` the (band, scheme) split; ``unemployed_share_15_64`` the city's unemployed in % of
    residents aged 15-64 as a fraction (None: the model's shares decide); ``targets`` per-area targets of
    the MSS status indicators (:class:`AreaTargets`), met up to whole persons where feasible (else the
    closest feasible count, listed in ``CyclePlan.target_misses``).
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

    # Registered unemployed, and the per-area targets (which may move SGB II and SGB XII recipients).
    unemployed, long_term = plan_unemployed(residents, recipients, p, unemployed_share_15_64)
    misses: list[TargetMiss] = []
    if targets is not None:
        misses = apply_targets(area_ids, residents, recipients, unemployed, long_term, p, targets)

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
        unemployed=unemployed,
        long_term=long_term,
        target_misses=tuple(misses),
    )


def _working_age(residents: np.ndarray) -> np.ndarray:
    return residents[:, UNEMPLOYED_MIN_AGE : UNEMPLOYED_MAX_AGE + 1].sum(axis=1)


def _recipients_15_64(recipients: np.ndarray) -> np.ndarray:
    """(A, scheme) recipients aged 15-64 (the bands 15-17 and 18-64)."""
    return recipients[:, BANDS.index("15-17")] + recipients[:, BANDS.index("18-64")]


def plan_unemployed(
    residents: np.ndarray, recipients: np.ndarray, p: dict[str, float], city_share: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Unemployed (A, legal basis) and long-term unemployed (A, legal basis) of the generic model.

    SGB II unemployed are a share (``unemployed_share_sgb2``) of the SGB II recipients aged 15-64 of the
    area, SGB III unemployed a share (``unemployed_share_sgb3``) of the residents aged 15-64 on no benefit;
    with ``city_share`` both are scaled so that the city's unemployed are that share of its residents aged
    15-64. Long-term: a share per legal basis (``long_term_share_sgb2``, ``long_term_share_sgb3``). City
    totals by largest remainder over the areas; never more than the persons they are drawn from.
    """
    sgb2_15_64 = _recipients_15_64(recipients)[:, SGB2]
    free = _working_age(residents) - _recipients_15_64(recipients).sum(axis=1)
    expected = np.stack([p["unemployed_share_sgb2"] * sgb2_15_64, p["unemployed_share_sgb3"] * free], axis=1)
    if city_share is not None:
        wanted = city_share * _working_age(residents).sum()
        expected *= wanted / max(expected.sum(), 1e-12)
    pool = np.stack([sgb2_15_64, free], axis=1)
    unemployed = np.stack(
        [np.minimum(apportion(round_half_up(expected[:, b].sum()), expected[:, b]), pool[:, b]) for b in range(2)],
        axis=1,
    )
    long_share = (p["long_term_share_sgb2"], p["long_term_share_sgb3"])
    long_term = np.stack(
        [np.minimum(apportion(round_half_up(unemployed[:, b].sum() * long_share[b]), unemployed[:, b]),
                    unemployed[:, b]) for b in range(2)],
        axis=1,
    )
    return unemployed.astype(np.int64), long_term.astype(np.int64)


def apply_targets(
    area_ids: tuple[str, ...],
    residents: np.ndarray,
    recipients: np.ndarray,
    unemployed: np.ndarray,
    long_term: np.ndarray,
    p: dict[str, float],
    targets: AreaTargets,
) -> list[TargetMiss]:
    """Change the counts of each area with a target (in place) so that they meet it up to whole persons.

    Per area, in this order: SGB II recipients under 15 (S4); the recipients not unemployed (S3: SGB II
    recipients aged 15-64 not unemployed, after the children, SGB XII cut where they alone exceed it);
    the unemployed (S1), split over SGB II and SGB III as the model would; SGB II recipients aged 15-64 =
    the not unemployed + the SGB II unemployed; the long-term unemployed (S2), split likewise. A target
    the area's persons cannot meet gets the closest feasible count and a :class:`TargetMiss`.
    """
    n_areas = len(area_ids)
    t = {name: targets.of(name, n_areas) for name in AreaTargets.FIELDS}
    band_pop = np.stack([residents[:, BAND_OF_AGE == b].sum(axis=1) for b in range(len(BANDS))], axis=1)
    totals = residents.sum(axis=1)
    working = _working_age(residents)
    young, adult = BANDS.index("15-17"), BANDS.index("18-64")
    misses: list[TargetMiss] = []

    def miss(a: int, measure: str, wanted: int, planned: int) -> None:
        if wanted != planned:
            misses.append(TargetMiss(area_ids[a], measure, int(wanted), int(planned)))

    for a in range(n_areas):
        rec = recipients[a]
        # S4: SGB II recipients under 15, beside the other schemes of the band
        if np.isfinite(t["sgb2_0_14"][a]):
            wanted = round_half_up(t["sgb2_0_14"][a] * band_pop[a, 0])
            room = int(band_pop[a, 0] - rec[0].sum() + rec[0, SGB2])
            rec[0, SGB2] = min(wanted, room)
            miss(a, "sgb2_0_14", wanted, rec[0, SGB2])

        # S3: SGB II recipients not unemployed + SGB XII recipients
        sgb2_15_64 = int(rec[young, SGB2] + rec[adult, SGB2])
        u2, u3 = int(unemployed[a, U_SGB2]), int(unemployed[a, U_SGB3])
        not_unemployed = sgb2_15_64 - u2  # SGB II recipients aged 15-64 not unemployed
        if np.isfinite(t["transfer_not_unemployed"][a]):
            wanted = round_half_up(t["transfer_not_unemployed"][a] * totals[a])
            rest = wanted - int(rec[0, SGB2])  # the SGB II children count in S3
            for scheme in (HLU, GSI):  # SGB XII recipients alone above the target: fewer of them
                for band in range(len(BANDS)):
                    excess = int(rec[:, HLU].sum() + rec[:, GSI].sum()) - max(rest, 0)
                    if excess > 0:
                        rec[band, scheme] -= min(excess, int(rec[band, scheme]))
            not_unemployed = max(rest - int(rec[:, HLU].sum() + rec[:, GSI].sum()), 0)
        other_15_64 = int(rec[young].sum() + rec[adult].sum()) - sgb2_15_64  # other schemes aged 15-64
        room_15_64 = int(working[a]) - other_15_64  # SGB II + SGB III-unemployed persons aged 15-64 at most
        # room for the SGB II recipients not unemployed: beside the SGB II unemployed unless S1 decides them
        keep_u2 = 0 if np.isfinite(t["unemployed_15_64"][a]) else u2
        not_unemployed = min(not_unemployed, room_15_64 - keep_u2)
        if np.isfinite(t["transfer_not_unemployed"][a]):
            planned = int(rec[0, SGB2] + rec[:, HLU].sum() + rec[:, GSI].sum()) + not_unemployed
            miss(a, "transfer_not_unemployed", round_half_up(t["transfer_not_unemployed"][a] * totals[a]), planned)

        # S1: the unemployed, split over the legal bases as the model would
        if np.isfinite(t["unemployed_15_64"][a]):
            wanted = round_half_up(t["unemployed_15_64"][a] * working[a])
            total = min(wanted, room_15_64 - not_unemployed)
            miss(a, "unemployed_15_64", wanted, total)
            weight_2 = u2 if u2 + u3 > 0 else p["unemployed_share_sgb2"]
            weight_3 = u3 if u2 + u3 > 0 else p["unemployed_share_sgb3"]
            u2 = round_half_up(total * weight_2 / max(weight_2 + weight_3, 1e-12))
            u3 = total - u2
        else:
            u3 = min(u3, max(room_15_64 - not_unemployed - u2, 0))
        # SGB II recipients aged 15-64 = the not unemployed + the SGB II unemployed, over the two bands
        sgb2_new = not_unemployed + u2
        if np.isfinite(t["transfer_not_unemployed"][a]) or np.isfinite(t["unemployed_15_64"][a]):
            share_young = rec[young, SGB2] / max(sgb2_15_64, 1)
            room_young = int(band_pop[a, young] - rec[young].sum() + rec[young, SGB2])
            room_adult = int(band_pop[a, adult] - rec[adult].sum() + rec[adult, SGB2])
            young_sgb2 = min(round_half_up(sgb2_new * share_young), room_young)
            rec[adult, SGB2] = min(sgb2_new - young_sgb2, room_adult)
            rec[young, SGB2] = sgb2_new - rec[adult, SGB2]
        unemployed[a] = (u2, u3)

        # S2: the long-term unemployed, split like the model's shares
        if np.isfinite(t["long_term_15_64"][a]):
            wanted = round_half_up(t["long_term_15_64"][a] * working[a])
            total = min(wanted, u2 + u3)
            miss(a, "long_term_15_64", wanted, total)
            w2, w3 = p["long_term_share_sgb2"] * u2, p["long_term_share_sgb3"] * u3
            lt2 = min(round_half_up(total * w2 / max(w2 + w3, 1e-12)), u2)
            lt3 = total - lt2
            if lt3 > u3:
                lt2, lt3 = total - u3, u3
            long_term[a] = (lt2, lt3)
        else:
            long_term[a] = np.minimum(long_term[a], unemployed[a])
    return misses


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
