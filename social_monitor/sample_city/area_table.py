"""The ``base_area_table`` planner (the Berlin sample): residents per base area and cycle as in a table.

``sample.yml`` names the files and the table's columns:

- ``base_areas`` (the table): one row per report cycle and base area valid in it, with the residents
  (main residence; empty = none) and, where given, the area's status indicators of the Berlin MSS in %:
  S1 unemployed in % of residents 15-64, S2 long-term unemployed likewise, S3 transfer recipients not
  unemployed (SGB II not unemployed + SGB XII) in % of residents, S4 SGB II recipients under 15 in % of
  residents under 15; ``columns`` maps the roles ``cycle``, ``area``, ``residents``, ``s1``, ``s2``, ``s3``
  and ``s4`` to its headers;
- ``city_series``: city anchors per year for the structure the table does not give: ``share_under15``,
  ``share_65plus``, ``non_german_share`` (in %);
- ``scheme_shares`` and ``model_parameters`` as for the ``area_pattern`` planner, plus the transfer rate of
  each age band relative to the city's (``transfer_factor_0_14``, ``transfer_factor_15_17``,
  ``transfer_factor_65plus``; 18-64 takes the rest) and the SGB II share of the unemployed
  (``sgb2_share_of_unemployed``, for the overall transfer rate the generic model starts from).

Residents per base area: the table's figure × scale, rounded half up, area by area (so each area is within
half a person of its scaled figure). S1-S4 per base area: the given value; where the table gives none (the
MSS publishes none for an area under 300 residents), the residents-weighted mean of the given values in the
nearest enclosing area that has some (then the city); an indicator the table gives for no area of a cycle
(S2 from MSS 2019 on) has no target there (the model's shares decide). The generic model
(:func:`.calibration.plan_counts`) plans every count, starting from an overall transfer rate of S3 plus the
SGB II unemployed (S1 × the area's share 15-64 × ``sgb2_share_of_unemployed``), and meets S1-S4 as targets
(:class:`.calibration.AreaTargets`): each area's counts are the target times its planned denominator
rounded to whole persons, so the generated deliveries reproduce the table up to whole persons.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from social_monitor.geography import CITY_LEVEL, Geography, Level
from social_monitor.sample_city.calibration import (
    AreaTargets,
    CyclePlan,
    SampleError,
    SampleSpec,
    plan_counts,
    read_city_series,
    read_parameters,
    read_scheme_shares,
    round_half_up,
)

SHARES = ("s1", "s2", "s3", "s4")  # the MSS status indicators S1-S4, in % of their denominators
ROLES = ("cycle", "area", "residents", *SHARES)
Row = tuple[int, int, dict[str, float | None]]  # line, residents, share role -> fraction or None


class BaseAreaTablePlanner:
    def __init__(self, spec: SampleSpec, geography: Geography):
        self.spec = spec
        self.geography = geography
        columns = spec.option("columns")
        if not isinstance(columns, dict) or sorted(columns) != sorted(ROLES):
            raise SampleError(f"{spec.path}: `columns` must map {', '.join(ROLES)} to the table's headers")
        self.columns = {role: str(header) for role, header in columns.items()}
        self.params = read_parameters(spec.file("model_parameters"))
        self.scheme_shares = read_scheme_shares(spec.file("scheme_shares"))
        self.series = read_city_series(spec.file("city_series"))
        self.table = self._read_table()

    def _read_table(self) -> dict[int, dict[str, Row]]:
        """cycle -> area -> (line, residents, S1-S4 as fractions or None)."""
        path = self.spec.file("base_areas")
        if not path.is_file():
            raise SampleError(f"{path}: missing (named in {self.spec.path})")
        base = self.geography.base
        try:
            return self._parse_table(path, base)
        except UnicodeDecodeError:
            raise SampleError(f"{path}: not UTF-8 text") from None
        except csv.Error as error:
            raise SampleError(f"{path}: not a CSV file ({error})") from None

    def _parse_table(self, path: Path, base: Level) -> dict[int, dict[str, Row]]:
        table: dict[int, dict[str, Row]] = {}
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [h for h in self.columns.values() if h not in (reader.fieldnames or [])]
            if missing:
                raise SampleError(f"{path}, line 1: column {missing[0]} is missing (named in {self.spec.path})")
            c = self.columns
            for line, row in enumerate(reader, start=2):
                def where(role: str) -> str:
                    return f"{path}, line {line}, column {c[role]}"  # noqa: B023 - used in this iteration only

                cycle_text, area = (row[c["cycle"]] or "").strip(), (row[c["area"]] or "").strip()
                if not re.fullmatch(r"[0-9]{4}", cycle_text):
                    raise SampleError(f"{where('cycle')}: not a year (report cycle)")
                if not base.key_matches(area):
                    raise SampleError(f"{where('area')}: not the key of a {base.name_de} ({base.key_pattern})")
                residents_text = (row[c["residents"]] or "").strip()
                if residents_text and not re.fullmatch(r"[0-9]+", residents_text):
                    raise SampleError(f"{where('residents')}: not a whole number of persons")
                shares: dict[str, float | None] = {}
                for role in SHARES:
                    share_text = (row[c[role]] or "").strip()
                    share = None
                    if share_text:
                        try:
                            share = float(share_text)
                        except ValueError:
                            share = -1.0
                        if not 0 <= share < 95:
                            raise SampleError(f"{where(role)}: not a share in % from 0 to under 95")
                        share /= 100
                    shares[role] = share
                areas = table.setdefault(int(cycle_text), {})
                if area in areas:
                    raise SampleError(f"{where('area')}: {area} repeats for report cycle {cycle_text} "
                                      f"(first on line {areas[area][0]})")
                areas[area] = (line, int(residents_text or 0), shares)
        return table

    def _rows(self, cycle: int) -> dict[str, Row]:
        path = self.spec.file("base_areas")
        if cycle not in self.table:
            have = ", ".join(map(str, sorted(self.table)))
            raise SampleError(f"{path}: no rows for report cycle {cycle} (it has {have})")
        rows = self.table[cycle]
        keys = set(self.geography.base_keys(cycle))
        base = self.geography.base
        for area, (line, _, _) in rows.items():
            if area not in keys:
                raise SampleError(f"{path}, line {line}, column {self.columns['area']}: {base.name_de} {area} is "
                                  f"not valid in report cycle {cycle} (geography/{base.areas_file.name})")
        absent = [key for key in self.geography.base_keys(cycle) if key not in rows]
        if absent:
            raise SampleError(f"{path}: report cycle {cycle} lacks {len(absent)} {base.plural_de} valid in it "
                              f"(first: {absent[0]})")
        return rows

    def _fill(self, cycle: int, area_ids: tuple[str, ...], residents: np.ndarray,
              given: np.ndarray, share: np.ndarray) -> np.ndarray:
        """The given shares; a missing one from the nearest enclosing area with given shares, then the city
        (all NaN where the cycle gives none)."""
        rate = np.where(given, share, np.nan)
        chain: list[str] = []
        level = self.geography.base.parent
        while level is not None and level != CITY_LEVEL:
            chain.append(level)
            level = self.geography.level(level).parent
        chain.append(CITY_LEVEL)
        position = {area: i for i, area in enumerate(area_ids)}
        group_of: dict[str, np.ndarray] = {}
        for level_id in chain:
            labels = np.empty(len(area_ids), dtype=object)
            for base_id, member_level, area in self.geography.memberships(cycle):
                if member_level == level_id:
                    labels[position[base_id]] = area
            group_of[level_id] = labels
        weight = np.where(given, residents, 0).astype(np.float64)
        for level_id in chain:
            labels = group_of[level_id]
            for label in set(labels[np.isnan(rate)]):
                members = labels == label
                if weight[members].sum() > 0:
                    mean = (weight[members] * share[members]).sum() / weight[members].sum()
                    rate[members & np.isnan(rate)] = mean
        return rate

    def plan(self, cycle: int, scale: float) -> CyclePlan:
        rows = self._rows(cycle)
        area_ids = self.geography.base_keys(cycle)
        p = self.params
        residents = np.array([rows[a][1] for a in area_ids], dtype=np.int64)
        values = {}
        for role in SHARES:
            given = np.array([rows[a][2][role] is not None for a in area_ids])
            share = np.array([rows[a][2][role] or 0.0 for a in area_ids], dtype=np.float64)
            values[role] = self._fill(cycle, area_ids, residents, given, share)
        if np.isnan(values["s3"]).any() or np.isnan(values["s1"]).any():
            raise SampleError(f"{self.spec.file('base_areas')}: report cycle {cycle} gives no S1 or no S3 at all "
                              f"(columns {self.columns['s1']}, {self.columns['s3']})")
        totals = np.array([round_half_up(r * scale) for r in residents], dtype=np.int64)
        share_15_64 = 1 - self.series.value("share_under15", cycle) - self.series.value("share_65plus", cycle)
        rate = np.clip(values["s3"] + values["s1"] * share_15_64 * p["sgb2_share_of_unemployed"], 0, 0.9)
        city_rate = float((totals * rate).sum() / max(totals.sum(), 1))
        relative = np.clip(rate / max(city_rate, 1e-12), 1e-6, None)
        factors = np.array([p["transfer_factor_0_14"], p["transfer_factor_15_17"], 0.0, p["transfer_factor_65plus"]])
        streets = np.maximum(3, np.round(residents / p["persons_per_street"])).astype(np.int64)
        targets = AreaTargets(unemployed_15_64=values["s1"], long_term_15_64=values["s2"],
                              transfer_not_unemployed=values["s3"], sgb2_0_14=values["s4"])
        return plan_counts(
            cycle, scale, area_ids, totals, rate, relative, p,
            age_shares=(self.series.value("share_under15", cycle), self.series.value("share_65plus", cycle)),
            non_german_share=self.series.value("non_german_share", cycle),
            band_rates=factors * city_rate,
            scheme_shares=self.scheme_shares.at(cycle),
            streets=streets,
            unemployed_share_15_64=float((totals * values["s1"]).sum() / max(totals.sum(), 1)),
            targets=targets,
        )  # fmt: skip
