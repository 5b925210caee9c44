"""The city's geography, declared once: its area levels and their areas (``<city folder>/geography/``).

``levels.yml`` lists the levels (id, German names, parent level or grouped level, key format, areas file);
one level is the *base*: the level deliveries carry, from which every other level is built. An area may
carry a validity (``valid_from``/``valid_to``, report cycles, inclusive), so a geography reform is data: a
retired area ends, its successors begin. ``conversion.csv`` (``load_conversion``) maps each retired base area
onto its successors with a weight, published or assumed.

Everything that needs a level, a level's name or an area reads it from ``load_geography``. Errors name the
file, the line and the column (``GeographyError``). Plain Python: no Dagster, no dbt.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

GEOGRAPHY_DIR = "geography"
LEVELS_FILE = "levels.yml"
CITY_LEVEL = "city"
STATUS_VALUES = ("published", "assumed")
_LEVEL_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")


class GeographyError(ValueError):
    """A geography file that cannot be used; the message names the file, the line and the column."""


@dataclass(frozen=True)
class Level:
    id: str
    name_de: str
    plural_de: str
    key_pattern: str
    areas_file: Path
    parent: str | None = None  # the level each area lies in (`city` for the top)
    groups: str | None = None  # the base level, for a level that groups base areas across the tree
    base: bool = False

    def key_matches(self, key: str) -> bool:
        return re.fullmatch(self.key_pattern, key) is not None


@dataclass(frozen=True)
class Area:
    level: str
    area_id: str
    area_name: str
    parent_id: str | None
    valid_from: int | None
    valid_to: int | None
    groups: Mapping[str, str]  # base areas only: grouping level -> area id
    status: Mapping[str, str]  # *_status columns

    def valid_in(self, cycle: int) -> bool:
        started = self.valid_from is None or self.valid_from <= cycle
        return started and (self.valid_to is None or cycle <= self.valid_to)


@dataclass(frozen=True)
class Geography:
    directory: Path
    city_name_de: str
    levels: tuple[Level, ...]  # as declared
    areas: tuple[Area, ...]

    @property
    def base(self) -> Level:
        return next(level for level in self.levels if level.base)

    def level(self, level_id: str) -> Level:
        for level in self.levels:
            if level.id == level_id:
                return level
        raise GeographyError(f"{self.directory / LEVELS_FILE}: no level {level_id!r} "
                             f"(the levels are {', '.join(level.id for level in self.levels)})")

    def areas_of(self, level_id: str, cycle: int | None = None) -> list[Area]:
        return [area for area in self.areas
                if area.level == level_id and (cycle is None or area.valid_in(cycle))]

    def base_keys(self, cycle: int | None = None) -> tuple[str, ...]:
        """The keys a delivery may carry: the base areas valid in ``cycle`` (every base area if None)."""
        return tuple(dict.fromkeys(area.area_id for area in self.areas_of(self.base.id, cycle)))

    def memberships(self, cycle: int) -> Iterator[tuple[str, str, str]]:
        """(base area, level, area) for every level and every base area valid in ``cycle``, the base level
        and the city included: each base area's count is added up to every area it lies in."""
        by_key = {(area.level, area.area_id): area for area in self.areas if area.valid_in(cycle)}
        for area in self.areas_of(self.base.id, cycle):
            yield area.area_id, CITY_LEVEL, CITY_LEVEL
            for level in self.levels:
                if level.base:
                    yield area.area_id, level.id, area.area_id
                elif level.groups:
                    yield area.area_id, level.id, area.groups[level.id]
            current: Area | None = area
            while current is not None and current.parent_id is not None:
                parent_level = self.level(current.level).parent
                yield area.area_id, parent_level, current.parent_id
                current = by_key.get((parent_level, current.parent_id))


def geography_dir(city_dir: Path) -> Path:
    return Path(city_dir) / GEOGRAPHY_DIR


def load_geography(city_dir: Path) -> Geography:
    """Read and check the geography of a city folder."""
    directory = geography_dir(city_dir)
    levels_path = directory / LEVELS_FILE
    if not levels_path.is_file():
        raise GeographyError(f"{levels_path}: missing (every city folder declares its area levels there)")
    try:
        raw = yaml.safe_load(levels_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        raise GeographyError(f"{levels_path}{'' if line is None else f', line {line + 1}'}: not valid YAML") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("levels"), list) or not raw["levels"]:
        raise GeographyError(f"{levels_path}: `levels` must be a list of levels")
    levels = tuple(_level(levels_path, i, entry) for i, entry in enumerate(raw["levels"], start=1))
    _check_levels(levels_path, levels)
    city = raw.get("city") or {}
    areas = tuple(area for level in levels for area in _read_areas(levels_path, level, levels))
    geography = Geography(directory, str(city.get("name_de", "Gesamtstadt")), levels, areas)
    _check_areas(geography)
    return geography


def _level(path: Path, number: int, entry: object) -> Level:
    where = f"{path}: level {number}"
    if not isinstance(entry, dict):
        raise GeographyError(f"{where}: must be a mapping with id, name_de, plural_de, key_pattern, areas")
    known = {"id", "name_de", "plural_de", "key_pattern", "areas", "parent", "groups", "base"}
    if unknown := sorted(set(entry) - known):
        raise GeographyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    for key in ("id", "name_de", "plural_de", "key_pattern", "areas"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise GeographyError(f"{where}: `{key}` is missing or not text")
    level_id = entry["id"]
    if not _LEVEL_ID.fullmatch(level_id) or level_id == CITY_LEVEL:
        raise GeographyError(f"{where}: id {level_id!r} must be lower case letters, digits and _ and not 'city'")
    try:
        re.compile(entry["key_pattern"])
    except re.error:
        raise GeographyError(f"{where} ({level_id}): key_pattern is not a regular expression") from None
    if ("parent" in entry) == ("groups" in entry):
        raise GeographyError(f"{where} ({level_id}): give either `parent` or `groups`")
    if "base" in entry and not isinstance(entry["base"], bool):
        raise GeographyError(f"{where} ({level_id}): `base` must be true or false")
    areas_file = Path(entry["areas"])
    if areas_file.is_absolute() or len(areas_file.parts) != 1:
        raise GeographyError(f"{where} ({level_id}): `areas` must be a file name beside {path.name}")
    return Level(id=level_id, name_de=entry["name_de"], plural_de=entry["plural_de"],
                 key_pattern=entry["key_pattern"], areas_file=path.parent / areas_file,
                 parent=entry.get("parent"), groups=entry.get("groups"), base=bool(entry.get("base", False)))


def _check_levels(path: Path, levels: tuple[Level, ...]) -> None:
    ids = [level.id for level in levels]
    if len(set(ids)) != len(ids):
        raise GeographyError(f"{path}: level ids repeat: {', '.join(ids)}")
    bases = [level.id for level in levels if level.base]
    if len(bases) != 1:
        raise GeographyError(f"{path}: exactly one level must be `base: true` (the level deliveries carry), "
                             f"found {len(bases)}")
    by_id = {level.id: level for level in levels}
    for level in levels:
        if level.groups is not None and level.groups != bases[0]:
            raise GeographyError(f"{path}: level {level.id}: `groups` must name the base level {bases[0]}")
        if level.parent is not None and level.parent != CITY_LEVEL:
            parent = by_id.get(level.parent)
            if parent is None:
                raise GeographyError(f"{path}: level {level.id}: parent {level.parent!r} is not a level")
            if parent.groups is not None:
                raise GeographyError(f"{path}: level {level.id}: parent {level.parent!r} is a grouping level")
        seen, current = set(), level
        while current.parent not in (None, CITY_LEVEL):
            if current.id in seen:
                raise GeographyError(f"{path}: the parents of level {level.id} form a cycle")
            seen.add(current.id)
            current = by_id[current.parent]
        if level.base and level.groups is not None:
            raise GeographyError(f"{path}: the base level {level.id} cannot group")
    children = {level.parent for level in levels}
    if bases[0] in children:
        raise GeographyError(f"{path}: the base level {bases[0]} cannot be the parent of another level")


def _cycle(path: Path, line: int, column: str, text: str) -> int | None:
    if not text.strip():
        return None
    if not re.fullmatch(r"[0-9]{4}", text.strip()):
        raise GeographyError(f"{path}, line {line}, column {column}: not a year (report cycle)")
    return int(text)


def _read_areas(levels_path: Path, level: Level, levels: tuple[Level, ...]) -> list[Area]:
    path = level.areas_file
    if not path.is_file():
        raise GeographyError(f"{levels_path}: level {level.id}: areas file {path.name} is missing")
    groupings = [other.id for other in levels if other.groups == level.id] if level.base else []
    required = ["area_id", "area_name"] + (["parent_id"] if level.parent not in (None, CITY_LEVEL) else [])
    required += [f"{grouping}_id" for grouping in groupings]
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [column for column in required if column not in header]
            if missing:
                raise GeographyError(f"{path}, line 1: column {missing[0]} is missing (the columns of a "
                                     f"{level.name_de} are {', '.join(required)})")
            areas = []
            for line, row in enumerate(reader, start=2):
                if None in row or any(value is None for value in row.values()):
                    raise GeographyError(f"{path}, line {line}: has another number of fields than the header")
                area_id = row["area_id"].strip()
                if not level.key_matches(area_id):
                    raise GeographyError(f"{path}, line {line}, column area_id: the key does not match the "
                                         f"format of a {level.name_de} ({level.key_pattern})")
                if not row["area_name"].strip():
                    raise GeographyError(f"{path}, line {line}, column area_name: empty")
                status = {column: row[column].strip() for column in header if column.endswith("_status")}
                for column, value in status.items():
                    if value not in STATUS_VALUES:
                        raise GeographyError(f"{path}, line {line}, column {column}: must be published or assumed")
                valid_from = _cycle(path, line, "valid_from", row.get("valid_from") or "")
                valid_to = _cycle(path, line, "valid_to", row.get("valid_to") or "")
                if valid_from is not None and valid_to is not None and valid_to < valid_from:
                    raise GeographyError(f"{path}, line {line}, column valid_to: before valid_from")
                areas.append(Area(
                    level=level.id, area_id=area_id, area_name=row["area_name"].strip(),
                    parent_id=row["parent_id"].strip() if "parent_id" in required else None,
                    valid_from=valid_from, valid_to=valid_to,
                    groups={grouping: row[f"{grouping}_id"].strip() for grouping in groupings}, status=status))
    except UnicodeDecodeError:
        raise GeographyError(f"{path}: not UTF-8 text") from None
    except csv.Error as error:
        raise GeographyError(f"{path}: not a CSV file ({error})") from None
    if not areas:
        raise GeographyError(f"{path}: no areas")
    return areas


def _overlap(a: Area, b: Area) -> bool:
    start = max(a.valid_from or 0, b.valid_from or 0)
    end = min(a.valid_to or 9999, b.valid_to or 9999)
    return start <= end


def _check_areas(geography: Geography) -> None:
    """Keys unique within their validity; every parent and group exists for the whole life of its child."""
    by_key: dict[tuple[str, str], list[Area]] = {}
    for area in geography.areas:
        for other in by_key.get((area.level, area.area_id), []):
            if _overlap(area, other):
                raise GeographyError(f"{geography.level(area.level).areas_file}: area {area.area_id} appears twice "
                                     "with overlapping validity")
        by_key.setdefault((area.level, area.area_id), []).append(area)
    for area in geography.areas:
        level = geography.level(area.level)
        targets = [(level.parent, area.parent_id, "parent_id")] if area.parent_id is not None else []
        targets += [(grouping, key, f"{grouping}_id") for grouping, key in area.groups.items()]
        for target_level, key, column in targets:
            candidates = by_key.get((target_level, key), [])
            first, last = area.valid_from or 0, area.valid_to or 9999
            covered = any((c.valid_from or 0) <= first and last <= (c.valid_to or 9999) for c in candidates)
            if not covered:
                raise GeographyError(f"{level.areas_file}: area {area.area_id}, column {column}: "
                                     f"{geography.level(target_level).name_de} {key} does not exist for the "
                                     "whole validity of the area")


# --- Conversion between geography versions --------------------------------------------------------------
# ``conversion.csv`` beside levels.yml maps each retired base area (one with a valid_to) onto the base areas
# valid in the first report cycle after it: columns old_area_id, new_area_id, weight (the share of the old
# area that goes to the new one, in (0, 1]; the weights of an old area sum to 1), weight_status (published
# or assumed) and basis (how the row was found, free text). An old area with one row of weight 1 continues
# unsplit; a split or an assumed row makes every figure converted through it an estimate.

CONVERSION_FILE = "conversion.csv"
CONVERSION_COLUMNS = ("old_area_id", "new_area_id", "weight", "weight_status", "basis")
WEIGHT_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ConversionRow:
    line: int
    old_area_id: str
    new_area_id: str
    weight: float
    weight_status: str
    basis: str


@dataclass(frozen=True)
class Conversion:
    path: Path
    level: str  # the base level
    rows: tuple[ConversionRow, ...]

    def targets(self, old_area_id: str) -> list[ConversionRow]:
        return [row for row in self.rows if row.old_area_id == old_area_id]

    def is_exact(self, old_area_id: str) -> bool:
        """True where the old area goes whole to one new area by a published row (not an estimate)."""
        rows = self.targets(old_area_id)
        return len(rows) == 1 and rows[0].weight == 1 and rows[0].weight_status == "published"


def conversion_path(geography: Geography) -> Path:
    return geography.directory / CONVERSION_FILE


def load_conversion(geography: Geography) -> Conversion | None:
    """Read and check the conversion of the retired base areas; None where no base area retires and there is
    no conversion file. Errors name the file, the line (where the fault is on one) and the column."""
    path = conversion_path(geography)
    base = geography.base
    retired = {area.area_id: area for area in geography.areas_of(base.id) if area.valid_to is not None}
    if not path.is_file():
        if retired:
            first = sorted(retired)[0]
            raise GeographyError(f"{path}: missing, but {len(retired)} {base.plural_de} retire (the first: "
                                 f"{first}, valid to {retired[first].valid_to}); list their successors there")
        return None
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            for column in CONVERSION_COLUMNS:
                if column not in header:
                    raise GeographyError(f"{path}, line 1, column {column}: missing (the columns are "
                                         f"{', '.join(CONVERSION_COLUMNS)})")
            rows = [_conversion_row(path, line, row, geography, retired) for line, row in enumerate(reader, start=2)]
    except UnicodeDecodeError:
        raise GeographyError(f"{path}: not UTF-8 text") from None
    except csv.Error as error:
        raise GeographyError(f"{path}: not a CSV file ({error})") from None
    seen: dict[tuple[str, str], int] = {}
    by_old: dict[str, list[ConversionRow]] = {}
    for row in rows:
        pair = (row.old_area_id, row.new_area_id)
        if pair in seen:
            raise GeographyError(f"{path}, line {row.line}, column new_area_id: {row.old_area_id} -> "
                                 f"{row.new_area_id} already on line {seen[pair]}")
        seen[pair] = row.line
        by_old.setdefault(row.old_area_id, []).append(row)
    for old_id, old_rows in by_old.items():
        total = sum(row.weight for row in old_rows)
        if abs(total - 1) > WEIGHT_SUM_TOLERANCE:
            lines = ", ".join(str(row.line) for row in old_rows)
            raise GeographyError(f"{path}, line {old_rows[0].line}, column weight: the weights of {old_id} sum "
                                 f"to {total:.6g}, not 1 (lines {lines})")
    if missing := sorted(set(retired) - set(by_old)):
        raise GeographyError(f"{path}, column old_area_id: no row converts the retired {base.name_de} "
                             f"{missing[0]} (valid to {retired[missing[0]].valid_to})"
                             f"{f' nor {len(missing) - 1} more' if len(missing) > 1 else ''}")
    return Conversion(path=path, level=base.id, rows=tuple(rows))


def _conversion_row(path: Path, line: int, row: dict, geography: Geography, retired: Mapping[str, Area]
                    ) -> ConversionRow:
    if None in row or any(value is None for value in row.values()):
        raise GeographyError(f"{path}, line {line}: has another number of fields than the header")
    base = geography.base
    old_id = row["old_area_id"].strip()
    old = retired.get(old_id)
    if old is None:
        raise GeographyError(f"{path}, line {line}, column old_area_id: not a retired {base.name_de} (a key "
                             f"of {base.areas_file.name} with a valid_to)")
    new_id = row["new_area_id"].strip()
    after = old.valid_to + 1
    if not any(area.area_id == new_id for area in geography.areas_of(base.id, after)):
        raise GeographyError(f"{path}, line {line}, column new_area_id: not a {base.name_de} valid in report "
                             f"cycle {after}, the first after {old_id} retires")
    text = row["weight"].strip()
    try:
        weight = float(text)
    except ValueError:
        weight = float("nan")
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) or not 0 < weight <= 1:
        raise GeographyError(f"{path}, line {line}, column weight: must be a decimal number above 0 and at most 1")
    status = row["weight_status"].strip()
    if status not in STATUS_VALUES:
        raise GeographyError(f"{path}, line {line}, column weight_status: must be published or assumed")
    basis = row["basis"].strip()
    if not basis:
        raise GeographyError(f"{path}, line {line}, column basis: empty (say how the row was found)")
    return ConversionRow(line=line, old_area_id=old_id, new_area_id=new_id, weight=weight,
                         weight_status=status, basis=basis)
# ------------------------------------------------------------------------------ the warehouse's reference

REFERENCE_SCHEMA = "reference"
# the tables the pipeline reads the geography from (dbt sources of the same names), with their columns
REFERENCE_TABLES: dict[str, dict[str, str]] = {
    "area_levels": {"area_level": "varchar", "name_de": "varchar", "plural_de": "varchar",
                    "parent_level": "varchar", "grouped_level": "varchar", "is_base": "boolean",
                    "level_order": "integer"},
    "areas": {"area_level": "varchar", "area_id": "varchar", "area_name": "varchar", "parent_level": "varchar",
              "parent_id": "varchar", "valid_from": "integer", "valid_to": "integer", "name_status": "varchar"},
    "area_memberships": {"report_cycle": "integer", "base_area_id": "varchar", "area_level": "varchar",
                         "area_id": "varchar"},
    "area_containers": {"area_level": "varchar", "area_id": "varchar", "container_level": "varchar",
                        "container_id": "varchar", "is_direct": "boolean", "valid_from": "integer",
                        "valid_to": "integer"},
    # conversion.csv without its basis (free text): empty for a city whose base areas never retire
    "area_conversion": {"old_area_id": "varchar", "new_area_id": "varchar", "weight": "double",
                        "weight_status": "varchar"},
}


def containers(geography: Geography) -> list[tuple[str, str, str, str, bool, int | None, int | None]]:
    """(level, area, container level, container area, direct, valid from, valid to) for every area and every area
    it lies in, the city included: along the parents, and from a base area to the areas of the levels grouping
    it. Direct: the declared relation (parent, group; the city for the top level and for grouping levels), the
    one the area's counts add up along. Valid from/to: the report cycles the area lies there (its own validity;
    a key with several validities in one container gets their span, None where open)."""
    by_key = {(area.level, area.area_id): area for area in geography.areas}
    found: dict[tuple[str, str, str, str, bool], list[tuple[int | None, int | None]]] = {}
    for area in geography.areas:
        level = geography.level(area.level)
        validity = (area.valid_from, area.valid_to)
        if level.groups is not None:
            found.setdefault((area.level, area.area_id, CITY_LEVEL, CITY_LEVEL, True), []).append(validity)
            continue
        current, direct = area, True
        while True:
            parent_level = geography.level(current.level).parent
            if parent_level == CITY_LEVEL or current.parent_id is None:
                found.setdefault((area.level, area.area_id, CITY_LEVEL, CITY_LEVEL, direct), []).append(validity)
                break
            found.setdefault((area.level, area.area_id, parent_level, current.parent_id, direct), []).append(validity)
            current, direct = by_key[(parent_level, current.parent_id)], False
        for grouping, group_id in area.groups.items():
            found.setdefault((area.level, area.area_id, grouping, group_id, True), []).append(validity)
    rows = []
    for row, validities in found.items():
        starts, ends = [v[0] for v in validities], [v[1] for v in validities]
        rows.append((*row, None if None in starts else min(starts), None if None in ends else max(ends)))
    return rows


def reference_rows(geography: Geography, cycles: Iterable[int]) -> dict[str, list[tuple]]:
    """The rows of the reference tables (``REFERENCE_TABLES``, columns in that order) for ``cycles``; the
    conversion is read and checked here (``load_conversion``), so a faulty conversion.csv stops the load."""
    levels = [(CITY_LEVEL, geography.city_name_de, geography.city_name_de, None, None, False, 0)]
    levels += [(level.id, level.name_de, level.plural_de, None if level.groups else level.parent, level.groups,
                level.base, order) for order, level in enumerate(geography.levels, start=1)]
    areas = [(CITY_LEVEL, CITY_LEVEL, geography.city_name_de, None, None, None, None, "published")]
    for area in geography.areas:
        level = geography.level(area.level)
        parent_level = None if level.groups else level.parent
        areas.append((area.level, area.area_id, area.area_name, parent_level,
                      CITY_LEVEL if parent_level == CITY_LEVEL else area.parent_id, area.valid_from, area.valid_to,
                      # a city's own geography without a name_status column is its official one
                      area.status.get("name_status", "published")))
    memberships = [(cycle, *membership) for cycle in sorted(set(cycles)) for membership in geography.memberships(cycle)]
    conversion = load_conversion(geography)
    conversion_rows = [(row.old_area_id, row.new_area_id, row.weight, row.weight_status)
                       for row in (conversion.rows if conversion else ())]
    return {"area_levels": levels, "areas": areas, "area_memberships": memberships,
            "area_containers": containers(geography), "area_conversion": conversion_rows}
