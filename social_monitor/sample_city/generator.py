"""Write the raw extracts of a city's sample city, base area by base area, in bounded memory.

For each report cycle the generator writes, flat into one folder, the person-level deliveries of
``social_monitor.deliveries.SOURCES`` with a manifest each, in a city's delivery layouts
(``config/<city>/deliveries.yml``: file names, format, encoding, separator, date format, headers and codes;
by default those of the city folder). In the Dortmund sample's layouts:

- ``bevoelkerung_<date>.csv`` (Melderegister, cp1252): the residents with main residence (Wohnungsstatus
  H) plus persons with a secondary residence only (N);
- ``sgb2_<date>.parquet`` (Bundesagentur für Arbeit): SGB II recipients with their Bedarfsgemeinschaft;
- ``sgb12_<date>.csv`` (Sozialamt): HLU and GSI recipients;
- ``asylblg_<date>.csv`` (Sozialamt): AsylbLG recipients;
- ``arbeitslose_<date>.csv`` (Bundesagentur für Arbeit): registered unemployed persons (SGB II, SGB III).

All counts come from the cycle's plan (:mod:`.calibration`, by the planner the city folder's
``sample/sample.yml`` names); the generator only decides *who*: it draws the recipients of each base area
(the level deliveries carry: Dortmund's Unterbezirk, Berlin's Planungsraum) and age band without
replacement from the register persons, so every recipient is a main resident of that cycle's register with
the same person key and area, and a person receives at most one benefit. The unemployed are drawn likewise:
SGB II unemployed from the area's SGB II recipients aged 15-64, SGB III unemployed from its main residents
aged 15-64 on no benefit (by a random stream of their own, so the other deliveries are those of a model
without unemployment). The area column carries the base
area's key as text. Randomness comes from one generator per (seed, cycle, area), so the output depends only
on the city's input, seed and scale: the same seed and scale give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.raw import (
    BIRTH_COUNTRY_GROUPS,
    LEGAL_BASES,
    NATIONALITY_GROUPS,
    RESIDENCE_TYPES,
    SEX_CODES,
    SGB12_KINDS,
)
from social_monitor.deliveries import SOURCES, reference_date_of, write_manifest
from social_monitor.geography import load_conversion, load_geography
from social_monitor.layouts import Layouts, SourceLayout, load_layouts
from social_monitor.sample_city.calibration import (
    AGES,
    ASYLBLG,
    BAND_OF_AGE,
    BANDS,
    GSI,
    HLU,
    SGB2,
    U_SGB2,
    U_SGB3,
    UNEMPLOYED_MAX_AGE,
    UNEMPLOYED_MIN_AGE,
    CyclePlan,
    plan_cycle,
)
from social_monitor.settings import CITY_FILE, CityConfig

DEFAULT_SEED = 20071231
FLUSH_ROWS = 250_000  # rows buffered per file before they are written
SLICE_ROWS = 200_000  # persons whose attributes are drawn and formatted at a time
STREET_KEY_BASE = 10_000
STREET_KEY_END = 100_000  # street keys are five digits (the register's contract)
STREETS_PER_UNTERBEZIRK = 450  # key space of street keys per base area (less where there are many areas)
_EPOCH = dt.date(1970, 1, 1)
_MASK64 = (1 << 64) - 1
_HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_HOUSE_SUFFIXES = ["", "a", "b", "c"]


# --- pseudonymous keys -----------------------------------------------------------------------------


def _mix64(values: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser: a bijection of 64-bit integers (distinct inputs, distinct outputs)."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _salt(seed: int, cycle: int, stream: int) -> int:
    """A 64-bit offset per seed, cycle and key stream (persons, households)."""
    value = np.array([(seed * 1_000_003 + cycle * 7_919 + stream) & _MASK64], dtype=np.uint64)
    return int(_mix64(value)[0])


def _hex_keys(counters: np.ndarray, salt: int, upper: bool = False) -> pl.Series:
    """16 hex characters per counter: a bijective mix of ``counter + salt``, so unique per stream."""
    values = _mix64(counters.astype(np.uint64) + np.uint64(salt))
    octets = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    nibbles = np.empty((values.size, 16), dtype=np.uint8)
    nibbles[:, 0::2] = octets >> 4
    nibbles[:, 1::2] = octets & 15
    text = (_HEX_UPPER if upper else _HEX_LOWER)[nibbles]
    return pl.Series(text.view("S16").ravel()).cast(pl.String)


# --- random helpers --------------------------------------------------------------------------------


def _weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct positions drawn with probability proportional to ``weights`` (Efraimidis-Spirakis)."""
    n = weights.size
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.arange(n)
    keys = rng.exponential(size=n) / weights
    return np.sort(np.argpartition(keys, k - 1)[:k])


def _codes(labels: list[str], index: np.ndarray) -> pl.Series:
    return pl.Series(labels).gather(pl.Series(index.astype(np.uint32)))


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype(np.int32)).cast(pl.Date)


# --- person keys that persist between report cycles ----------------------------------------------
#
# A main resident sits in a slot (location, birth year, k): k numbers the residents of a location born in
# that year, 0 to the plan's count - 1. A slot is held by one occupant after another; each occupant's key is a
# bijective mix of (slot, entry year), so whoever holds the slot in two consecutive report cycles is the same
# person with the same key, birth date and area. The occupant changes in a year with probability
# ``annual_move_share`` (a hash of slot and year: the same in every run and cycle); a slot that did not exist
# in the previous cycle (the cohort grew there) gets a newcomer who moved in between the two cycles. The entry
# year is the occupant's move-in year; the birth year itself means born there. A location is a base area; a
# base area that replaced retired ones (conversion.csv) is located in its largest predecessor, so the persons
# of a reformed geography keep their keys.

_YEAR_BASE = 1850  # birth and entry years are stored as years since this one (8 bits each)
_K_BITS, _YEAR_BITS, _LOC_BITS = 20, 8, 11
_SECONDARY_BIT = np.uint64(1 << 47)


class KeyHistory:
    """The main residents per location and birth year in every report cycle of the city up to ``cycle``
    (from the plans), and each base area's location and slot offset per age in ``cycle``."""

    def __init__(self, city_dir: Path, cycle: int, scale: float, plan: CyclePlan):
        cycles = [c for c in report_cycles(city_dir) if c < cycle] + [cycle]
        plans = [plan_cycle(city_dir, c, scale) for c in cycles[:-1]] + [plan]
        geography = load_geography(city_dir)
        conversion = load_conversion(geography)
        predecessor: dict[str, tuple[float, str]] = {}  # new area -> (-weight, old area): the largest first
        for row in conversion.rows if conversion else ():
            candidate = (-row.weight, row.old_area_id)
            predecessor[row.new_area_id] = min(predecessor.get(row.new_area_id, candidate), candidate)
        # numbered over every base area of the geography (all versions): the same number in every cycle
        all_ids = sorted(set(geography.base_keys()) | {area for p in plans for area in p.area_ids})
        number = {area: i for i, area in enumerate(all_ids)}
        if len(all_ids) >= 1 << _LOC_BITS:
            raise ValueError(f"{len(all_ids)} base areas: more than the {1 << _LOC_BITS} the sample's keys hold")
        self.cycles = cycles
        self.number = number  # each base area's own number (secondary residents' keys)
        self.location = {area: number[predecessor[area][1]] if area in predecessor else number[area]
                         for p in plans for area in p.area_ids}
        self.counts: list[dict[int, np.ndarray]] = []  # per cycle: location -> residents by birth year
        for c, p in zip(cycles, plans, strict=True):
            by_location: dict[int, np.ndarray] = {}
            for a, area in enumerate(p.area_ids):
                years = by_location.setdefault(self.location[area], np.zeros(256, dtype=np.int64))
                years[c - AGES - _YEAR_BASE] += p.residents[a]
            self.counts.append(by_location)
        # slot offset of each area of this cycle per age: the residents of the earlier areas of its location
        self.offset = np.zeros_like(plan.residents)
        running: dict[int, np.ndarray] = {}
        for a, area in enumerate(plan.area_ids):
            seen = running.setdefault(self.location[area], np.zeros(plan.residents.shape[1], dtype=np.int64))
            self.offset[a] = seen
            seen += plan.residents[a]
        if int(plan.residents.max(initial=0)) + int(self.offset.max(initial=0)) >= 1 << _K_BITS:
            raise ValueError("too many residents of one birth year in one area for the sample's keys")


def _uniform(values: np.ndarray, salt: int) -> np.ndarray:
    """A number in [0, 1) per value, from the mix of value and salt."""
    return (_mix64(values ^ np.uint64(salt & _MASK64)) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def persistent_codes(history: KeyHistory, u: int, area: str, age: np.ndarray, annual_move_share: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Key number and entry year of each main resident of area ``u`` (``age``: sorted, as the plan orders
    them), consistent with the city's earlier report cycles (``KeyHistory``)."""
    loc = history.location[area]
    birth_year = history.cycles[-1] - age.astype(np.int64)
    starts = np.searchsorted(age, age, side="left")  # first resident of each one's age
    k = history.offset[u, age] + (np.arange(age.size) - starts)
    slot = ((np.uint64(loc) << np.uint64(_K_BITS + _YEAR_BITS))
            | (birth_year - _YEAR_BASE).astype(np.uint64) << np.uint64(_K_BITS) | k.astype(np.uint64))
    yidx = birth_year - _YEAR_BASE
    entry = np.full(age.size, -1, dtype=np.int64)
    existed = np.zeros(age.size, dtype=bool)
    for i, cycle in enumerate(history.cycles):
        counts = history.counts[i].get(loc)
        exists = k < (counts[yidx] if counts is not None else 0)
        lower = np.maximum(history.cycles[i - 1] if i else -1, birth_year - 1)  # entry years after this one
        changed = np.full(age.size, -1, dtype=np.int64)
        open_ = exists & (changed < 0)
        for year in range(cycle, int(lower.min(initial=cycle)), -1):
            draw = open_ & (year > lower) & (_uniform(slot ^ np.uint64(year << 48), seed) < annual_move_share)
            changed[draw] = year
            open_ &= ~draw
            if not (open_ & (year - 1 > lower)).any():
                break
        if i == 0:
            forced = birth_year  # no occupant change since birth: born here
        else:  # a newcomer since the previous cycle: born here if born since, else moved in since
            span = np.maximum(cycle - lower, 1)
            forced = np.where(birth_year > history.cycles[i - 1], birth_year, lower + 1 + (
                _mix64(slot ^ np.uint64(seed & _MASK64) ^ np.uint64(cycle << 40)) % span.astype(np.uint64)
            ).astype(np.int64))
        kept = np.where(existed & (entry >= 0), entry, forced)
        entry = np.where(exists, np.where(changed >= 0, changed, kept), -1)
        existed = exists
    code = slot | ((entry - _YEAR_BASE).astype(np.uint64) << np.uint64(_K_BITS + _YEAR_BITS + _LOC_BITS))
    return code, entry


def persistent_dates(code: np.ndarray, entry: np.ndarray, age: np.ndarray, cycle: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Birth date and move-in date (days since 1970) of persons with key numbers ``code``: the birth date from
    the key (the same in every cycle), the move-in date a day of the entry year (the birth date when the
    entry year is the birth year: born there)."""
    birth_year = cycle - age.astype(np.int64)
    jan1 = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    next_jan1 = (birth_year - 1969).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    birth = jan1 + np.floor(_uniform(code, seed ^ 0x5EED) * (next_jan1 - jan1)).astype(np.int64)
    entry_jan1 = (entry - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    moved = entry_jan1 + np.floor(_uniform(code, seed ^ 0xB0DE) * 365).astype(np.int64)
    move_in = np.where(entry > birth_year, np.maximum(moved, birth), birth)
    return birth, move_in


# --- one Unterbezirk -------------------------------------------------------------------------------


def _unterbezirk_rows(
    plan: CyclePlan, u: int, rng: np.random.Generator, first_person: int, first_household: int, seed: int,
    street_keys: int = STREETS_PER_UNTERBEZIRK, history: KeyHistory | None = None,
) -> Iterator[tuple[str, pl.DataFrame]]:
    """Rows of one Unterbezirk as ``(source name, frame with English columns)``, in slices.

    Phase 1 decides for the whole Unterbezirk, on small integer arrays, who is who: age, residence type,
    nationality, benefit scheme, Bedarfsgemeinschaft and the row order. Phase 2 draws the remaining
    attributes (sex, dates, address) and formats the rows slice by slice, so memory stays bounded by
    SLICE_ROWS however large the Unterbezirk is.
    """
    p = plan.params
    cycle = plan.cycle
    unterbezirk = plan.area_ids[u]
    person_salt = _salt(seed, 0, 1)  # the same in every cycle: a person who stays keeps its key

    # Main residents, sorted by age (so each age band is a contiguous range), then secondary residents.
    age_main = np.repeat(AGES, plan.residents[u]).astype(np.int16)
    n_main = age_main.size
    n_sec = int(plan.secondary[u])
    sec_ages = np.arange(18, 65)
    sec_weight = np.exp(-(((sec_ages - 24) / 8.0) ** 2) / 2) + 0.1
    age_sec = rng.choice(sec_ages, size=n_sec, p=sec_weight / sec_weight.sum()).astype(np.int16)
    age = np.concatenate([age_main, age_sec])
    n = age.size
    # person keys (numbers): main residents' persist between cycles (KeyHistory), secondary residents' are new
    # in every cycle (numbered by the base area's own number, as two areas may share a location)
    if history is not None:
        main_code, entry = persistent_codes(history, u, unterbezirk, age_main, p["annual_move_share"], seed)
        loc = np.uint64(history.number[unterbezirk])
    else:  # without a history (one cycle on its own): every main resident has lived there since birth
        main_code, entry, loc = first_person + np.arange(n_main, dtype=np.uint64), cycle - age_main.astype(np.int64), 0
    code = np.concatenate([main_code, _SECONDARY_BIT | np.uint64((cycle - _YEAR_BASE) << 31)
                           | (np.uint64(loc) << np.uint64(_K_BITS)) | np.arange(n_sec, dtype=np.uint64)])
    entry = np.concatenate([entry, np.full(n_sec, -1, dtype=np.int64)])
    residence = np.concatenate([np.zeros(n_main, np.int8), np.ones(n_sec, np.int8)])

    # Nationality: an exact number of non-German main residents, fewer among the old.
    nat = np.zeros(n, dtype=np.int8)  # 0 deutsch, 1 EU, 2 Drittstaat, 3 staatenlos/ungeklärt
    nat_weight = np.where(
        age_main >= 65,
        p["non_german_weight_65plus"],
        np.where((age_main >= 18) & (age_main <= 44), p["non_german_weight_18_44"], 1.0),
    )
    foreign = _weighted_sample(rng, nat_weight, int(plan.non_german[u]))
    del nat_weight
    kind_p = np.array([p["non_german_eu_share"], 0.0, p["non_german_stateless_share"]])
    kind_p[1] = 1 - kind_p[0] - kind_p[2]
    nat[foreign] = 1 + rng.choice(3, size=foreign.size, p=kind_p)
    sec_foreign = rng.random(n_sec) < plan.non_german[u] / max(n_main, 1)
    nat[n_main:][sec_foreign] = 1 + rng.choice(3, size=int(sec_foreign.sum()), p=kind_p)

    # Benefit recipients: per age band exactly the planned number, drawn without replacement.
    scheme = np.full(n, -1, dtype=np.int8)
    bounds = np.searchsorted(BAND_OF_AGE[age_main], np.arange(len(BANDS) + 1), side="left")
    bounds[-1] = n_main
    for b in range(len(BANDS)):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        counts = plan.recipients[u, b]
        weight = np.where(nat[lo:hi] > 0, p["recipient_weight_non_german"], 1.0)
        chosen = lo + _weighted_sample(rng, weight, int(counts.sum()))
        # AsylbLG goes first to third-country and stateless nationals, then EU, then Germans.
        rank = np.select([nat[chosen] >= 2, nat[chosen] == 1], [0, 1], 2) + rng.random(chosen.size)
        chosen = chosen[np.argsort(rank, kind="stable")]
        n_asyl = int(counts[ASYLBLG])
        scheme[chosen[:n_asyl]] = ASYLBLG
        rest = rng.permutation(chosen[n_asyl:])
        start = 0
        for s in (HLU, GSI, SGB2):
            scheme[rest[start : start + int(counts[s])]] = s
            start += int(counts[s])

    # Registered unemployed (their own random stream): legal basis and long-term, per the plan.
    unemployed_rng = np.random.default_rng(np.random.SeedSequence([seed, cycle, u, 1]))
    unemployed, long_term = _draw_unemployed(plan, u, unemployed_rng, age, scheme, n_main)

    # Row order of the extract: shuffled; a person's key follows from its row (running number in the file).
    perm = rng.permutation(n)
    age, residence, nat, scheme = age[perm], residence[perm], nat[perm], scheme[perm]
    unemployed, long_term = unemployed[perm], long_term[perm]
    code, entry = code[perm], entry[perm]
    del perm
    extra = register_extras(p, age, residence, nat, np.random.default_rng(np.random.SeedSequence([seed, cycle, u, 7])))
    birth, move_in = persistent_dates(code, np.maximum(entry, cycle - age.astype(np.int64)), age, cycle, seed)
    extra.update(person_code=code, birth=birth, move_in=move_in, persistent=entry >= 0,
                 born_here=entry == cycle - age.astype(np.int64))

    # SGB II Bedarfsgemeinschaften: one head of household (adults first) each, the others join at random.
    sgb2_pos = np.flatnonzero(scheme == SGB2)
    n_households = min(max(int(plan.households[u]), 1), sgb2_pos.size)
    household = np.empty(sgb2_pos.size, dtype=np.int64)
    if sgb2_pos.size:
        adult = age[sgb2_pos] >= 18
        order = np.concatenate([rng.permutation(np.flatnonzero(adult)), rng.permutation(np.flatnonzero(~adult))])
        household[order[:n_households]] = np.arange(n_households)
        household[order[n_households:]] = rng.integers(0, n_households, size=order.size - n_households)
    by_household = np.lexsort((-age[sgb2_pos], household))
    sgb2_pos, household = sgb2_pos[by_household], household[by_household]
    yield (
        "sgb2",
        pl.DataFrame(
            {
                "person_key": _hex_keys(code[sgb2_pos], person_salt),
                "household_key": "BG" + _hex_keys(first_household + household, _salt(seed, cycle, 2), upper=True),
                "age": pl.Series(age[sgb2_pos], dtype=pl.Int16),
                "unterbezirk_id": pl.repeat(unterbezirk, sgb2_pos.size, eager=True, dtype=pl.String),
            }
        ),
    )
    del sgb2_pos, household

    ref_days = (reference_date_of(cycle) - _EPOCH).days
    for lo in range(0, n, SLICE_ROWS):
        hi = min(lo + SLICE_ROWS, n)
        yield from _attribute_slice(
            rng, p, cycle, ref_days, unterbezirk, min(int(plan.streets[u]), street_keys), u, street_keys,
            age[lo:hi], residence[lo:hi], nat[lo:hi], scheme[lo:hi],
            first_person + lo, person_salt, unemployed[lo:hi], long_term[lo:hi], unemployed_rng,
            {name: values[lo:hi] for name, values in extra.items()}, (_salt(seed, cycle, 3) + (u << 32)) & _MASK64,
        )  # fmt: skip


def _draw_unemployed(
    plan: CyclePlan, u: int, rng: np.random.Generator, age: np.ndarray, scheme: np.ndarray, n_main: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per person (in the area's order): the legal basis if unemployed (U_SGB2, U_SGB3; -1 = not) and whether
    unemployed one year or longer. Exactly the plan's counts, drawn without replacement, by age weight."""
    p = plan.params
    unemployed = np.full(age.size, -1, dtype=np.int8)
    long_term = np.zeros(age.size, dtype=bool)
    main = np.arange(age.size) < n_main
    working = main & (age >= UNEMPLOYED_MIN_AGE) & (age <= UNEMPLOYED_MAX_AGE)
    weight = np.where(age <= 17, p["unemployed_weight_15_17"], np.where(age >= 55, p["unemployed_weight_55_64"], 1.0))
    for basis, pool in ((U_SGB2, working & (scheme == SGB2)), (U_SGB3, working & (scheme < 0))):
        positions = np.flatnonzero(pool)
        chosen = positions[_weighted_sample(rng, weight[positions], int(plan.unemployed[u, basis]))]
        unemployed[chosen] = basis
        lasting = min(int(plan.long_term[u, basis]), chosen.size)
        long_term[rng.choice(chosen, size=lasting, replace=False)] = True
    return unemployed, long_term


def _attribute_slice(
    rng: np.random.Generator,
    p: dict[str, float],
    cycle: int,
    ref_days: int,
    unterbezirk: str,
    n_streets: int,
    u: int,
    street_keys: int,
    age: np.ndarray,
    residence: np.ndarray,
    nat: np.ndarray,
    scheme: np.ndarray,
    first_counter: int,
    person_salt: int,
    unemployed: np.ndarray,
    long_term: np.ndarray,
    unemployed_rng: np.random.Generator,
    extra: dict[str, np.ndarray],
    household_salt: int,
) -> Iterator[tuple[str, pl.DataFrame]]:
    """Register, SGB XII, AsylbLG and unemployment rows of a slice of an Unterbezirk's (shuffled) persons.

    The recipients' keys are computed afresh rather than gathered from the register's keys: a gathered
    polars string column would share (and keep alive) the buffer of the whole slice while it waits in a
    sink's buffer.
    """
    n = age.size
    counters = extra["person_code"]  # the persons' key numbers (persistent_codes)
    persistent = extra["persistent"]

    female_p = np.where(age >= 65, p["female_share_65plus"], p["female_share_under65"])
    draw = rng.random(n)
    sex = np.where(draw < p["diverse_share"], 2, np.where(draw < p["diverse_share"] + female_p, 1, 0))

    # Dates: age is complete years at 31 December, so the birth date lies anywhere in the birth year.
    birth_year = cycle - age.astype(np.int64)
    jan1 = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    next_jan1 = (birth_year - 1969).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    birth = jan1 + np.floor(rng.random(n) * (next_jan1 - jan1)).astype(np.int64)
    birth = np.where(persistent, extra["birth"], birth)  # a main resident's from its key
    since = np.floor(rng.exponential(p["move_in_mean_years"] * 365.25, size=n)).astype(np.int64)
    move_in = ref_days - np.minimum(since, ref_days - birth)
    move_in = np.where(persistent, extra["move_in"], move_in)  # a main resident's from its entry year
    # without a move-in date: only main residents who live where they were born
    move_in_missing = (rng.random(n) < p["move_in_missing_share"]) & (residence == 0) & extra["born_here"]

    # Address: street key of the Unterbezirk, house number with an occasional letter.
    street = STREET_KEY_BASE + u * street_keys + rng.integers(0, n_streets, size=n)
    house = 1 + np.minimum(np.floor(rng.exponential(18.0, size=n)), 198).astype(np.int64)
    suffix = np.where(rng.random(n) < 0.07, 1 + rng.integers(0, 3, size=n), 0)

    yield (
        "register",
        pl.DataFrame(
            {
                "person_key": _hex_keys(counters, person_salt),
                "birth_date": _dates(birth),
                "sex": _codes(SEX_CODES, sex),
                "nationality_group": _codes(NATIONALITY_GROUPS, nat),
                "residence_type": _codes(RESIDENCE_TYPES, residence),
                "move_in_date": _dates(move_in),
                "unterbezirk_id": pl.repeat(unterbezirk, n, eager=True, dtype=pl.String),
                "street_key": pl.Series(street).cast(pl.String),
                "house_number": pl.Series(house).cast(pl.String) + _codes(_HOUSE_SUFFIXES, suffix),
            }
        ).with_columns(
            pl.when(pl.Series(move_in_missing)).then(None).otherwise(pl.col("move_in_date")).alias("move_in_date"),
            **register_extra_columns(extra, household_salt),
        ),
    )

    rows = np.flatnonzero((scheme == HLU) | (scheme == GSI))
    yield (
        "sgb12",
        pl.DataFrame(
            {
                "person_key": _hex_keys(counters[rows], person_salt),
                "benefit_kind": _codes(SGB12_KINDS, (scheme[rows] == GSI).astype(np.int8)),
                "birth_date": _dates(birth[rows]),
                "unterbezirk_id": pl.repeat(unterbezirk, rows.size, eager=True, dtype=pl.String),
            }
        ),
    )

    rows = np.flatnonzero(scheme == ASYLBLG)
    yield (
        "asylblg",
        pl.DataFrame(
            {
                "person_key": _hex_keys(counters[rows], person_salt),
                "birth_date": _dates(birth[rows]),
                "sex": _codes(SEX_CODES, sex[rows]),
                "unterbezirk_id": pl.repeat(unterbezirk, rows.size, eager=True, dtype=pl.String),
            }
        ),
    )

    # Unemployed since: within the year before the reference date, or (long-term) one year or more before it,
    # never before the person's 15th year (the contract: at most age - 14 years before the reference date).
    rows = np.flatnonzero(unemployed >= 0)
    year_before = _days_of_dec31(cycle - 1)
    earliest = _days_of_dec31(cycle - age[rows].astype(np.int64) + 14)
    short = ref_days - unemployed_rng.integers(0, ref_days - year_before, size=rows.size)
    extra_days = np.floor(unemployed_rng.exponential(p["long_term_mean_extra_years"] * 365.25, size=rows.size))
    lasting = np.maximum(year_before - extra_days.astype(np.int64), earliest)
    yield (
        "unemployment",
        pl.DataFrame(
            {
                "person_key": _hex_keys(counters[rows], person_salt),
                "legal_basis": _codes(LEGAL_BASES, unemployed[rows]),
                "unemployed_since": _dates(np.where(long_term[rows], lasting, short)),
                "age": pl.Series(age[rows], dtype=pl.Int16),
                "sex": _codes(SEX_CODES, sex[rows]),
                "unterbezirk_id": pl.repeat(unterbezirk, rows.size, eager=True, dtype=pl.String),
            }
        ),
    )


def _days_of_dec31(year: np.ndarray | int) -> np.ndarray:
    """Days since 1970-01-01 of 31 December of ``year``."""
    next_jan1 = (np.asarray(year, dtype=np.int64) + 1 - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    return next_jan1.astype(np.int64) - 1


# --- the register's household, second nationality and country of birth ----------------------------


def register_extras(p: dict[str, float], age: np.ndarray, residence: np.ndarray, nat: np.ndarray,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Second nationality, country of birth and household of an area's register persons (in row order), drawn
    from their own random stream so that every other attribute and count stays as the plan fixes it.

    Households (main residents): families get the children, each at least one (``children_per_family`` on
    average; ``single_parent_share`` of them with one adult of 20-59, the others with two); the remaining
    adults live alone or in pairs (``single_adult_household_share`` of these households alone). A person
    with a secondary residence only is a household of its own. Returns per person: ``second_nationality``
    (index into NATIONALITY_GROUPS, -1 none), ``birth_country`` (index into BIRTH_COUNTRY_GROUPS) and
    ``household`` (a number unique within the area)."""
    n = age.size
    german = nat == 0
    second = np.full(n, -1, dtype=np.int8)
    has_second = rng.random(n) < np.where(german, p["second_nationality_share_german"],
                                          p["second_nationality_share_non_german"])
    # Germans' second nationality: EU or Drittstaat; a non-German's: German (Doppelstaatler) or another group
    foreign_second = 1 + (rng.random(n) < p["second_nationality_third_country_share"]).astype(np.int8)
    second[has_second] = np.where(german, foreign_second, 0)[has_second]
    abroad_p = np.where(german, p["born_abroad_share_german"], p["born_abroad_share_non_german"])
    abroad_p = np.where(age < 18, abroad_p * p["born_abroad_factor_under_18"], abroad_p)
    birth_country = (rng.random(n) < abroad_p).astype(np.int8)  # 0 Deutschland, 1 Ausland
    birth_country[rng.random(n) < p["birth_country_unknown_share"]] = 2

    household = np.full(n, -1, dtype=np.int64)
    main = residence == 0
    adults = rng.permutation(np.flatnonzero(main & (age >= 18)))
    children = rng.permutation(np.flatnonzero(main & (age < 18)))
    eligible = np.isin(adults, np.flatnonzero((age >= 20) & (age <= 59)))
    parents_pool = np.concatenate([adults[eligible], adults[~eligible]])
    families = 0
    if children.size and adults.size:
        families = min(int(np.ceil(children.size / p["children_per_family"])), children.size, adults.size)
        single = min(families, int(round(families * p["single_parent_share"])))
        couples = min(families - single, (adults.size - single) // 2)
        families = single + couples
        household[parents_pool[:single]] = np.arange(single)
        pairs = parents_pool[single : single + 2 * couples]
        household[pairs] = single + np.arange(2 * couples) // 2
        household[children[:families]] = np.arange(families)
        household[children[families:]] = rng.integers(0, families, size=children.size - families)
        rest = parents_pool[single + 2 * couples :]
    else:
        rest = adults
        if children.size:  # children without any adult: one household of their own
            household[children] = 0
            families = 1
    share = p["single_adult_household_share"]
    n_pairs = min(int(round((1 - share) * rest.size / (2 - share))), rest.size // 2)
    pair_ids = families + np.arange(2 * n_pairs) // 2
    household[rest[: 2 * n_pairs]] = pair_ids
    household[rest[2 * n_pairs :]] = families + n_pairs + np.arange(rest.size - 2 * n_pairs)
    others = np.flatnonzero(household < 0)  # secondary residents
    household[others] = families + n_pairs + (rest.size - 2 * n_pairs) + np.arange(others.size)
    return {"second_nationality": second, "birth_country": birth_country, "household": household}


def register_extra_columns(extra: dict[str, np.ndarray], household_salt: int) -> dict[str, pl.Series]:
    """The register columns of ``register_extras`` (a slice of it): the household key is a keyed mix of the
    area's household number and ``household_salt`` (which holds the area), so unique in the cycle."""
    second = extra["second_nationality"]
    return {
        "second_nationality_group": _codes(["", *NATIONALITY_GROUPS], second + 1).replace("", None),
        "birth_country": _codes(BIRTH_COUNTRY_GROUPS, extra["birth_country"]),
        "household_key": "HH" + _hex_keys(extra["household"].astype(np.uint64), household_salt),
    }


# --- writers ---------------------------------------------------------------------------------------


class _Sink:
    """A delivery file being written: buffers up to FLUSH_ROWS rows; writes them in the city's layout (its
    headers, its codes, dates in its date format)."""

    def __init__(self, source: SourceLayout, path: Path):
        self.source = source
        self.path = path
        self.rows = 0
        self._headers = source.file_columns  # {the city's header: contract column}, file order
        self._recode = {column: source.city_code_of(column) for column in source.codes
                        if any(city != code for city, code in source.codes[column].items())}
        self._buffer: list[pl.DataFrame] = []
        self._buffered = 0

    def _to_file_columns(self, frame: pl.DataFrame) -> pl.DataFrame:
        def cell(column: str) -> pl.Expr:
            value = pl.col(column)
            if column in self._recode:
                value = value.replace_strict(self._recode[column], return_dtype=pl.String)
            elif frame.schema[column] == pl.Date:
                value = value.dt.strftime(self.source.date_format)
            return value
        return frame.select([cell(column).alias(header) for header, column in self._headers.items()])

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self._buffer.append(frame)
            self._buffered += frame.height
            self.rows += frame.height
        if self._buffered >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._write(self._to_file_columns(pl.concat(self._buffer)))
        self._buffer, self._buffered = [], 0

    def _write(self, frame: pl.DataFrame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.flush()


class _CsvSink(_Sink):
    def __init__(self, source: SourceLayout, path: Path):
        super().__init__(source, path)
        self._handle = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._handle.write((source.separator.join(self._headers) + "\n").encode(source.encoding))

    def _write(self, frame: pl.DataFrame) -> None:
        text = frame.write_csv(
            None,
            include_header=False,
            separator=self.source.separator,
            line_terminator="\n",
            quote_style="necessary",  # a city code with the separator in it is quoted
            null_value="",
        )
        self._handle.write(text.encode(self.source.encoding))

    def close(self) -> None:
        super().close()
        self._handle.close()


class _ParquetSink(_Sink):
    def __init__(self, source: SourceLayout, path: Path):
        super().__init__(source, path)
        contract_types = {"person_key": pa.string(), "household_key": pa.string(), "age": pa.int16()}
        self._schema = pa.schema(
            [(header, contract_types.get(column, pa.string())) for header, column in self._headers.items()]
        )
        self._writer = pq.ParquetWriter(path, self._schema)

    def _write(self, frame: pl.DataFrame) -> None:
        self._writer.write_table(frame.to_arrow().cast(self._schema))

    def close(self) -> None:
        super().close()
        self._writer.close()


def _open_sink(source: SourceLayout, path: Path) -> _Sink:
    return _ParquetSink(source, path) if source.file_format == "parquet" else _CsvSink(source, path)


# --- the public entry point ------------------------------------------------------------------------


def street_keys_per_area(n_areas: int) -> int:
    """The street keys of one base area: STREETS_PER_UNTERBEZIRK, fewer where the five-digit key space is
    shared by many areas (an area with more streets than keys uses all its keys)."""
    return min(STREETS_PER_UNTERBEZIRK, (STREET_KEY_END - STREET_KEY_BASE) // max(n_areas, 1))


def generate_cycle(
    out_dir: Path, cycle: int, seed: int = DEFAULT_SEED, scale: float = 1.0, *, city_dir: Path,
    layouts: Layouts | None = None,
) -> list[tuple[Path, int]]:
    """Write the deliveries (``SOURCES``) of one report cycle of the city folder's sample, in the city's delivery
    ``layouts`` (default: those of ``city_dir``); returns ``(data file, rows)`` per delivery. The areas are the
    base areas of the city's geography valid in the cycle."""
    layouts = load_layouts(city_dir) if layouts is None else layouts
    plan = plan_cycle(city_dir, cycle, scale)
    history = KeyHistory(city_dir, cycle, scale, plan)
    street_keys = street_keys_per_area(len(plan.area_ids))
    reference_date = reference_date_of(cycle)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks: dict[str, _Sink] = {}
    for name in SOURCES:
        source = layouts[name]
        # A stale manifest must never describe a file being rewritten.
        (out_dir / source.manifest_name(reference_date)).unlink(missing_ok=True)
        sinks[name] = _open_sink(source, out_dir / source.file_name(reference_date))
    try:
        next_person = 0
        next_household = 0
        for u in range(len(plan.area_ids)):
            rng = np.random.default_rng(np.random.SeedSequence([seed, cycle, u]))
            for name, frame in _unterbezirk_rows(plan, u, rng, next_person, next_household, seed, street_keys,
                                                 history):
                sinks[name].add(frame)
            next_person += int(plan.residents[u].sum() + plan.secondary[u])
            sgb2_persons = int(plan.recipients[u, :, SGB2].sum())
            next_household += min(max(int(plan.households[u]), 1), sgb2_persons)
    finally:
        for sink in sinks.values():
            sink.close()
    written = []
    for name, sink in sinks.items():
        write_manifest(sink.path, layouts[name], reference_date, sink.rows)
        written.append((sink.path, sink.rows))
    return written


def generate(
    out_dir: Path | str,
    cycles: tuple[int, ...] | list[int] | None = None,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    *,
    city_dir: Path,
    layouts: Layouts | None = None,
) -> list[Path]:
    """Write the raw extracts of a city folder's sample city for each report cycle into ``out_dir``, in the
    city's delivery ``layouts`` (default: those of ``city_dir``).

    ``city_dir`` is the city folder (its ``sample/`` input and its geography); ``cycles`` default to the
    city's report cycles (city.yml). Deterministic: the same seed and scale give byte-identical files.
    ``scale`` multiplies every area's population (0.05 or more keeps the calibration within rounding).
    Returns the data files written (the manifests lie beside them).
    """
    if seed < 0:
        raise ValueError(f"seed {seed} is negative")
    if scale < 0.05:
        raise ValueError(f"scale {scale} is below 0.05: the calibration would drown in rounding")
    if cycles is None:
        cycles = report_cycles(city_dir)
    layouts = load_layouts(city_dir) if layouts is None else layouts
    return [path for cycle in cycles
            for path, _ in generate_cycle(Path(out_dir), int(cycle), seed, scale, city_dir=city_dir, layouts=layouts)]


def report_cycles(city_dir: Path) -> tuple[int, ...]:
    """The city's report cycles (city.yml), the generator's default cycles."""
    return CityConfig.from_file(Path(city_dir) / CITY_FILE).report_cycles


__all__ = ["DEFAULT_SEED", "generate", "generate_cycle", "report_cycles"]
