"""The sample city's aggregate deliveries: counts per area that partner offices deliver (schemas/aggregates.py),
one file per aggregate delivery of the city's layout (``aggregates`` in deliveries.yml) and report cycle, at the
level the layout declares, with a manifest each.

Every value is (assumed): no partner office's figures are published for the sample cities, so the rates below are
plausible, not calibrated (``ASSUMED_RATES``; a city swaps in its offices' real deliveries). They are drawn per
base area from the cycle's plan of the register (``CyclePlan``: residents by single year of age, the area's
transfer rate as its social situation), so they agree with the register: employees at their place of residence
are at most the residents aged 18-64, school-entry children at most the residents aged 5-6, transitions at most
the residents aged 10, cases of Hilfen zur Erziehung at most the residents under 21. Counts are added up to the
delivery's level along the geography; the income index (not a count) is 100 x the level area's mean income per
taxpayer over the city's. Deterministic: the draws are seeded by seed, cycle and measure.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from social_monitor.deliveries import reference_date_of, write_manifest
from social_monitor.geography import Geography, load_geography
from social_monitor.layouts import AggregateLayout, Layouts
from social_monitor.sample_city.calibration import AGES, CyclePlan


@dataclass(frozen=True)
class AssumedRate:
    """A share of a register group, shifted by the area's transfer rate relative to the city's (assumed)."""

    base: float  # share in an area with the city's transfer rate
    per_transfer_point: float  # change of the share per percentage point of transfer rate above the city's
    low: float = 0.0
    high: float = 1.0


# (assumed): plausible shares for a German city; none is a published figure of Dortmund or Berlin
ASSUMED_RATES = {
    "school_entry_examined": AssumedRate(0.48, 0.0, 0.40, 0.52),  # of the residents aged 5 and 6 (one cohort)
    "school_entry_normal_weight": AssumedRate(0.86, -0.006, 0.6, 0.95),  # of the children examined
    "pupils_transition": AssumedRate(0.97, 0.0, 0.9, 1.0),  # of the residents aged 10
    "pupils_transition_gymnasium": AssumedRate(0.42, -0.012, 0.08, 0.75),  # of the transitions
    "youth_welfare_cases": AssumedRate(0.028, 0.0012, 0.005, 0.09),  # of the residents under 21
    "employees_residence": AssumedRate(0.60, -0.008, 0.30, 0.75),  # of the residents aged 18-64
    "dwellings": AssumedRate(0.53, 0.0, 0.45, 0.6),  # per resident (about 1.9 residents a dwelling)
    "dwellings_vacant": AssumedRate(0.035, 0.001, 0.005, 0.12),  # of the dwellings
    "taxpayers": AssumedRate(0.52, -0.004, 0.3, 0.7),  # of the residents aged 18 and over
}
MEAN_INCOME = 38_000.0  # euros a taxpayer and year in an area with the city's transfer rate (assumed)
INCOME_PER_TRANSFER_POINT = -0.025  # relative change of the mean income per point of transfer rate (assumed)
INCOME_NOISE = 0.08  # relative spread of the area means (assumed)


def _residents(plan: CyclePlan, low: int, high: int | None = None) -> np.ndarray:
    ages = (AGES >= low) & (AGES <= (AGES.max() if high is None else high))
    return plan.residents[:, ages].sum(axis=1).astype(np.int64)


def _share(plan: CyclePlan, measure: str) -> np.ndarray:
    rate = ASSUMED_RATES[measure]
    points = 100 * (plan.transfer_rate - np.average(plan.transfer_rate, weights=plan.residents.sum(axis=1) + 1))
    return np.clip(rate.base + rate.per_transfer_point * points, rate.low, rate.high)


def _rng(seed: int, cycle: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, cycle, zlib.crc32(name.encode())]))


def base_area_counts(plan: CyclePlan, seed: int) -> dict[str, np.ndarray]:
    """Every count the sample delivers, per base area of the plan (and the income total behind the index)."""
    def draw(name: str, of: np.ndarray) -> np.ndarray:
        return _rng(seed, plan.cycle, name).binomial(of, _share(plan, name)).astype(np.int64)

    counts: dict[str, np.ndarray] = {}
    counts["school_entry_examined"] = draw("school_entry_examined", _residents(plan, 5, 6))
    counts["school_entry_normal_weight"] = draw("school_entry_normal_weight", counts["school_entry_examined"])
    counts["pupils_transition"] = draw("pupils_transition", _residents(plan, 10, 10))
    counts["pupils_transition_gymnasium"] = draw("pupils_transition_gymnasium", counts["pupils_transition"])
    counts["youth_welfare_cases"] = draw("youth_welfare_cases", _residents(plan, 0, 20))
    counts["employees_residence"] = draw("employees_residence", _residents(plan, 18, 64))
    counts["dwellings"] = draw("dwellings", _residents(plan, 0))
    counts["dwellings_vacant"] = draw("dwellings_vacant", counts["dwellings"])
    counts["taxpayers"] = draw("taxpayers", _residents(plan, 18))
    points = 100 * (plan.transfer_rate - np.average(plan.transfer_rate, weights=plan.residents.sum(axis=1) + 1))
    noise = _rng(seed, plan.cycle, "income").normal(0.0, INCOME_NOISE, len(plan.area_ids))
    mean = MEAN_INCOME * np.clip(1 + INCOME_PER_TRANSFER_POINT * points + noise, 0.3, 3.0)
    counts["income_total"] = np.round(counts["taxpayers"] * mean).astype(np.int64)
    return counts


def _by_level(plan: CyclePlan, geography: Geography, level: str, keys: tuple[str, ...],
              counts: np.ndarray) -> np.ndarray:
    """Base-area counts added up to the areas ``keys`` of ``level``."""
    position = {key: i for i, key in enumerate(keys)}
    index = {area: i for i, area in enumerate(plan.area_ids)}
    totals = np.zeros(len(keys), dtype=np.int64)
    for base, area_level, area in geography.memberships(plan.cycle):
        if area_level == level and area in position and base in index:
            totals[position[area]] += counts[index[base]]
    return totals


def level_values(plan: CyclePlan, geography: Geography, layout: AggregateLayout, seed: int
                 ) -> dict[str, dict[str, int]]:
    """``{measure: {area key: value}}`` of one aggregate delivery for the plan's cycle, at the layout's level
    (without the areas the layout declares gaps)."""
    keys = tuple(key for key in layout.area_keys(geography, plan.cycle) if key not in layout.gaps)
    counts = base_area_counts(plan, seed)
    summed: Callable[[str], np.ndarray] = lambda m: _by_level(plan, geography, layout.level, keys, counts[m])  # noqa: E731
    values: dict[str, dict[str, int]] = {}
    for measure in layout.measures:
        if measure == "income_index":
            income, taxpayers = summed("income_total"), summed("taxpayers")
            city = counts["income_total"].sum() / max(counts["taxpayers"].sum(), 1)
            area_mean = np.divide(income, taxpayers, out=np.full(len(keys), city), where=taxpayers > 0)
            level = np.round(100 * area_mean / city).astype(np.int64)
        elif measure in counts:
            level = summed(measure)
        else:
            raise ValueError(f"{layout.path}: aggregates.{layout.name}: the sample city generates no measure "
                             f"{measure!r} (social_monitor/sample_city/aggregates.py)")
        values[measure] = dict(zip(keys, (int(v) for v in level), strict=True))
    return values


def write_aggregates(out_dir: Path, plan: CyclePlan, seed: int, *, city_dir: Path, layouts: Layouts,
                     geography: Geography | None = None) -> list[tuple[Path, int]]:
    """Write every aggregate delivery of the city's ``layouts`` for the plan's cycle into ``out_dir``, each with
    its manifest; returns ``(data file, rows)`` per delivery."""
    geography = load_geography(city_dir) if geography is None else geography
    reference_date = reference_date_of(plan.cycle)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for layout in (lay for lay in layouts.values() if isinstance(lay, AggregateLayout)):
        path = Path(out_dir) / layout.file_name(reference_date)
        (Path(out_dir) / layout.manifest_name(reference_date)).unlink(missing_ok=True)
        code = layout.city_code_of("measure")
        values = level_values(plan, geography, layout, seed)
        rows = [(area, code[measure], value) for measure, by_area in values.items() for area, value in by_area.items()]
        rows.sort()
        data = {"area_id": [r[0] for r in rows], "measure": [r[1] for r in rows], "value": [r[2] for r in rows]}
        if layout.file_format == "parquet":  # the city's headers in the file's order
            pl.DataFrame({layout.headers[column]: data[column] for column in layout.headers}).write_parquet(path)
        else:
            with open(path, "w", encoding=layout.encoding, newline="") as handle:
                writer = csv.writer(handle, delimiter=layout.separator, lineterminator="\n")
                writer.writerow(list(layout.file_columns))
                for row in zip(*(data[column] for column in layout.headers), strict=True):
                    writer.writerow(row)
        write_manifest(path, layout, reference_date, len(rows))
        written.append((path, len(rows)))
    return written
