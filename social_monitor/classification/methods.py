"""Classification methods as configuration: one YAML file per method, no code branch per city.

A method has one or more *dimensions* (Berlin MSS: status and dynamics; Dortmund: one). Each dimension
turns its indicators into an index and cuts the index into classes:

1. each indicator is *standardised* over the included areas of a report cycle:
   ``z_score`` ((x - mean) / SD; the SD over n (``population``) or n - 1 (``sample``)),
   ``deviation_from_city`` (x - city value) or ``worse_than_city`` (1 if worse than the city value, else 0);
   an indicator whose higher values are better is turned round, so a higher index always means more
   social disadvantage;
2. the standardised values are combined by a weighted ``sum`` or ``mean``;
3. optionally the combination is z-standardised again (``restandardise``): that is the index;
4. the index is cut into classes, in order: a class takes the values ``below`` its bound (x < b) or
   ``up_to`` its bound (x <= b); the last class takes the rest. Class codes rise with disadvantage.

The method's ``flag`` names the classes that put an area on the list the method is used for (Dortmund:
Aktionsraum; Berlin: Gebiete mit besonderem Aufmerksamkeitsbedarf); areas are compared with the previous
cycle on it (kept, new, released). Areas below ``min_population``, marked invalid in the input, or named
in ``exclude_areas`` are left out and counted with their reason.

Shipped methods live beside this module in ``methods/``; ``extends`` builds a method on a shipped one and
replaces only the keys it names: a dimension named by ``id`` is merged into the shipped one, the others are
kept, a new ``id`` is added; any other list (indicators, classes) is replaced whole.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

METHODS_DIR = Path(__file__).resolve().parent / "methods"
STANDARDISATIONS = ("z_score", "deviation_from_city", "worse_than_city")
DIRECTIONS = ("higher_is_worse", "higher_is_better")
MISSING_POLICIES = ("error", "exclude_area")
DEFAULT_MARGINS = {"z_score": 0.1, "deviation_from_city": 0.5, "worse_than_city": 0.05}


class MethodError(ValueError):
    """A method configuration that is malformed or cannot be applied to the given indicator table."""


@dataclass(frozen=True)
class IndicatorSpec:
    id: str
    direction: str = "higher_is_worse"
    weight: float = 1.0
    name_de: str | None = None
    unit: str | None = None
    # a derived indicator: the change of ``change_of`` since the previous cycle (or ``change_years`` before)
    change_of: str | None = None
    change_years: int | None = None
    # the report cycles the indicator is part of the method (inclusive; None: open), e.g. an indicator a
    # method dropped from an edition on (Berlin MSS: S2 until the 2017 edition)
    first_cycle: int | None = None
    last_cycle: int | None = None

    def used_in(self, cycle: int) -> bool:
        return (self.first_cycle is None or self.first_cycle <= cycle) and (
            self.last_cycle is None or cycle <= self.last_cycle)

    @property
    def source(self) -> str:
        """The indicator the input table must hold for this one."""
        return self.change_of or self.id


@dataclass(frozen=True)
class ClassSpec:
    code: int
    label: str
    short: str
    below: float | None = None
    up_to: float | None = None

    @property
    def bound(self) -> float | None:
        return self.below if self.below is not None else self.up_to


@dataclass(frozen=True)
class Dimension:
    id: str
    name_de: str
    indicators: tuple[IndicatorSpec, ...]
    classes: tuple[ClassSpec, ...]
    standardisation: str = "z_score"
    sd: str = "population"
    combine: str = "sum"
    restandardise: bool = False
    absent_indicators: str = "error"  # "skip": an indicator without any value in a cycle is left out there
    sensitivity_margin: float = 0.1

    @property
    def ddof(self) -> int:
        return 0 if self.sd == "population" else 1

    def class_of(self, value: float) -> ClassSpec:
        for spec in self.classes[:-1]:
            if (spec.below is not None and value < spec.below) or (spec.up_to is not None and value <= spec.up_to):
                return spec
        return self.classes[-1]


@dataclass(frozen=True)
class Method:
    id: str
    name_de: str
    dimensions: tuple[Dimension, ...]
    description: str = ""
    source: str = ""
    min_population: float = 0
    exclude_areas: tuple[str, ...] = ()
    missing_values: str = "error"
    flag_label: str | None = None
    flag_any_of: tuple[Mapping[str, tuple[int, ...]], ...] = ()
    area_level: str | None = None  # where the pipeline applies it to its own marts
    definition: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def indicator_ids(self) -> list[str]:
        """Every indicator the input table must hold (sources of derived ones included), in order."""
        seen: dict[str, None] = {}
        for dimension in self.dimensions:
            for indicator in dimension.indicators:
                seen.setdefault(indicator.source, None)
        return list(seen)

    def definition_yaml(self) -> str:
        return yaml.safe_dump(dict(self.definition), allow_unicode=True, sort_keys=False)


def shipped_methods() -> list[str]:
    return sorted(path.stem for path in METHODS_DIR.glob("*.yml"))


def load_method(reference: str | Path | Mapping[str, object], *, overrides: Mapping[str, object] | None = None
                ) -> Method:
    """A method from a shipped name (``berlin_mss``), a YAML file path or a mapping (``extends`` resolved)."""
    raw, where = _raw(reference)
    if overrides:
        raw = _merge(raw, overrides)
    return parse_method(raw, where=where)


def _raw(reference: str | Path | Mapping[str, object], depth: int = 0) -> tuple[dict, str]:
    if depth > 5:
        raise MethodError(f"{reference}: `extends` nests more than 5 levels")
    if isinstance(reference, Mapping):
        raw, where = copy.deepcopy(dict(reference)), f"method {reference.get('id', '(inline)')!r}"
    else:
        path = Path(reference)
        if not path.suffix and not path.exists():
            path = METHODS_DIR / f"{reference}.yml"
            if not path.exists():
                raise MethodError(f"unknown method {reference!r}: not a file and not one of the shipped methods "
                                  f"({', '.join(shipped_methods())})")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise MethodError(f"{path}: cannot read the method: {error}") from error
        if not isinstance(raw, dict):
            raise MethodError(f"{path}: a method file must hold a mapping of keys")
        where = str(path)
    base = raw.pop("extends", None)
    if base is None:
        return raw, where
    base_raw, _ = _raw(base, depth + 1)
    return _merge(base_raw, raw), where


def _merge(base: dict, override: Mapping[str, object]) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key == "dimensions" and isinstance(value, list) and isinstance(merged.get(key), list):
            # by id: a named dimension is merged into the base's, others are kept, new ones appended
            given = {d.get("id"): d for d in value if isinstance(d, dict)}
            base_ids = {d.get("id") for d in merged[key] if isinstance(d, dict)}
            merged[key] = [_merge(d, given[d["id"]]) if isinstance(d, dict) and d.get("id") in given else d
                           for d in merged[key]]
            merged[key] += [d for d in value if not isinstance(d, dict) or d.get("id") not in base_ids]
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _number(value: object) -> bool:
    """A finite YAML number: not a boolean (``true`` is 1 in Python), not ``.nan``, ``.inf`` or a string."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _boolean(raw: Mapping, key: str, default: bool, where: str) -> bool:
    """A YAML boolean (``true``/``false``); a string such as ``"false"`` is refused, not read as true."""
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise MethodError(f"{where}: {key} must be true or false (a YAML boolean, without quotes), not {value!r}")
    return value


def _keys(raw: Mapping, known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise MethodError(f"{where}: unknown key(s) {', '.join(unknown)}; known are {', '.join(sorted(known))}")


def _choice(value: object, choices: Sequence[str], where: str) -> str:
    if value not in choices:
        raise MethodError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def parse_method(raw: Mapping[str, object], *, where: str = "method") -> Method:
    """Check and build a method from its mapping; every error names where in the configuration it is."""
    if not isinstance(raw, Mapping):
        raise MethodError(f"{where}: a method must be a mapping of keys")
    _keys(raw, {"id", "name_de", "description", "source", "min_population", "exclude_areas", "missing_values",
                "flag", "dimensions", "area_level"}, where)
    method_id = raw.get("id")
    if not method_id or not isinstance(method_id, str):
        raise MethodError(f"{where}: the method needs an `id`")
    where = f"{where} ({method_id})" if method_id not in where else where
    dimensions_raw = raw.get("dimensions")
    if not isinstance(dimensions_raw, list) or not dimensions_raw:
        raise MethodError(f"{where}: `dimensions` must list at least one dimension")
    dimensions = tuple(_dimension(d, f"{where}: dimension {i + 1}") for i, d in enumerate(dimensions_raw))
    ids = [d.id for d in dimensions]
    if len(set(ids)) != len(ids):
        raise MethodError(f"{where}: dimension ids repeat: {', '.join(ids)}")

    flag = raw.get("flag") or {}
    if not isinstance(flag, Mapping):
        raise MethodError(f"{where}: `flag` must be a mapping with `label` and `any_of`")
    _keys(flag, {"label", "any_of"}, f"{where}: flag")
    conditions = []
    for i, condition in enumerate(flag.get("any_of") or []):
        if not isinstance(condition, Mapping) or not condition:
            raise MethodError(f"{where}: flag.any_of[{i}] must map dimension ids to class codes")
        parsed = {}
        for dimension_id, codes in condition.items():
            dimension = next((d for d in dimensions if d.id == dimension_id), None)
            if dimension is None:
                raise MethodError(f"{where}: flag.any_of[{i}] names unknown dimension {dimension_id!r}")
            codes = tuple(codes) if isinstance(codes, list) else (codes,)
            known_codes = {c.code for c in dimension.classes}
            if not codes or not all(_integer(c) for c in codes) or not set(codes) <= known_codes:
                raise MethodError(f"{where}: flag.any_of[{i}].{dimension_id} must list class codes of "
                                  f"{sorted(known_codes)}, not {list(codes)}")
            parsed[dimension_id] = codes
        conditions.append(parsed)
    if flag and not conditions:
        raise MethodError(f"{where}: flag.any_of is empty")

    min_population = raw.get("min_population")
    min_population = 0 if min_population is None else min_population
    if not _number(min_population) or min_population < 0:
        raise MethodError(f"{where}: min_population must be a finite number >= 0, not {min_population!r}")
    exclude = raw.get("exclude_areas") or []
    if not isinstance(exclude, list):
        raise MethodError(f"{where}: exclude_areas must be a list of area ids")
    return Method(
        id=method_id,
        name_de=str(raw.get("name_de") or method_id),
        description=str(raw.get("description") or ""),
        source=str(raw.get("source") or ""),
        dimensions=dimensions,
        min_population=float(min_population),
        exclude_areas=tuple(str(a) for a in exclude),
        missing_values=_choice(raw.get("missing_values", "error"), MISSING_POLICIES, f"{where}: missing_values"),
        flag_label=str(flag["label"]) if flag.get("label") else None,
        flag_any_of=tuple(conditions),
        area_level=str(raw["area_level"]) if raw.get("area_level") else None,
        definition=dict(raw),
    )


def _dimension(raw: object, where: str) -> Dimension:
    if not isinstance(raw, Mapping):
        raise MethodError(f"{where}: a dimension must be a mapping")
    _keys(raw, {"id", "name_de", "indicators", "classes", "standardisation", "sd", "combine", "restandardise",
                "absent_indicators", "sensitivity_margin"}, where)
    if not raw.get("id"):
        raise MethodError(f"{where}: the dimension needs an `id`")
    where = f"{where} ({raw['id']})"
    standardisation = _choice(raw.get("standardisation", "z_score"), STANDARDISATIONS, f"{where}: standardisation")
    indicators_raw = raw.get("indicators")
    if not isinstance(indicators_raw, list) or not indicators_raw:
        raise MethodError(f"{where}: `indicators` is empty; name at least one indicator")
    indicators = tuple(_indicator(item, f"{where}: indicators[{i}]") for i, item in enumerate(indicators_raw))
    ids = [i.id for i in indicators]
    if len(set(ids)) != len(ids):
        raise MethodError(f"{where}: indicators repeat: {', '.join(ids)}")
    classes = _classes(raw.get("classes"), where)
    margin = raw.get("sensitivity_margin", DEFAULT_MARGINS[standardisation])
    if not _number(margin) or margin < 0:
        raise MethodError(f"{where}: sensitivity_margin must be a finite number >= 0, not {margin!r}")
    return Dimension(
        id=str(raw["id"]),
        name_de=str(raw.get("name_de") or raw["id"]),
        indicators=indicators,
        classes=classes,
        standardisation=standardisation,
        sd=_choice(raw.get("sd", "population"), ("population", "sample"), f"{where}: sd"),
        combine=_choice(raw.get("combine", "sum"), ("sum", "mean"), f"{where}: combine"),
        restandardise=_boolean(raw, "restandardise", False, where),
        absent_indicators=_choice(raw.get("absent_indicators", "error"), ("error", "skip"),
                                  f"{where}: absent_indicators"),
        sensitivity_margin=float(margin),
    )


def _indicator(raw: object, where: str) -> IndicatorSpec:
    if isinstance(raw, str):
        raw = {"id": raw}
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise MethodError(f"{where}: an indicator is an id or a mapping with `id`")
    _keys(raw, {"id", "direction", "weight", "name_de", "unit", "change_of", "change_years", "first_cycle",
                "last_cycle"}, where)
    for key in ("first_cycle", "last_cycle"):
        if raw.get(key) is not None and not _integer(raw[key]):
            raise MethodError(f"{where} ({raw['id']}): {key} must be a report cycle (a whole number)")
    if raw.get("first_cycle") is not None and raw.get("last_cycle") is not None and \
            raw["last_cycle"] < raw["first_cycle"]:
        raise MethodError(f"{where} ({raw['id']}): last_cycle is before first_cycle")
    weight = raw.get("weight", 1.0)
    if not _number(weight) or weight <= 0:
        raise MethodError(f"{where} ({raw['id']}): weight must be a finite number > 0, not {weight!r}")
    change_years = raw.get("change_years")
    if change_years is not None and (not _integer(change_years) or change_years <= 0):
        raise MethodError(f"{where} ({raw['id']}): change_years must be a whole number of years > 0")
    if change_years is not None and not raw.get("change_of"):
        raise MethodError(f"{where} ({raw['id']}): change_years needs change_of")
    return IndicatorSpec(
        id=str(raw["id"]),
        direction=_choice(raw.get("direction", "higher_is_worse"), DIRECTIONS, f"{where} ({raw['id']}): direction"),
        weight=float(weight),
        name_de=raw.get("name_de"),
        unit=raw.get("unit"),
        change_of=str(raw["change_of"]) if raw.get("change_of") else None,
        change_years=change_years,
        first_cycle=raw.get("first_cycle"),
        last_cycle=raw.get("last_cycle"),
    )


def _classes(raw: object, where: str) -> tuple[ClassSpec, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise MethodError(f"{where}: `classes` must list at least two classes")
    classes = []
    for i, item in enumerate(raw):
        here = f"{where}: classes[{i}]"
        if not isinstance(item, Mapping):
            raise MethodError(f"{here}: a class is a mapping with code, label and a bound")
        _keys(item, {"code", "label", "short", "below", "up_to"}, here)
        if not _integer(item.get("code")) or not item.get("label"):
            raise MethodError(f"{here}: a class needs an integer `code` and a `label`")
        last = i == len(raw) - 1
        bounds = [key for key in ("below", "up_to") if item.get(key) is not None]
        if last and bounds:
            raise MethodError(f"{here}: the last class takes the rest and has no bound")
        if not last and len(bounds) != 1:
            raise MethodError(f"{here}: give exactly one of `below` (x < bound) or `up_to` (x <= bound)")
        for key in bounds:
            if not _number(item[key]):
                raise MethodError(f"{here}: {key} must be a finite number, not {item[key]!r}")
        spec = ClassSpec(code=item["code"], label=str(item["label"]), short=str(item.get("short", item["code"])),
                         below=item.get("below"), up_to=item.get("up_to"))
        classes.append(spec)
    bounds = [c.bound for c in classes[:-1]]
    if any(upper <= lower for lower, upper in zip(bounds, bounds[1:], strict=False)):
        raise MethodError(f"{where}: class bounds must rise: {bounds}")
    codes = [c.code for c in classes]
    if any(later <= earlier for earlier, later in zip(codes, codes[1:], strict=False)):
        raise MethodError(f"{where}: class codes must rise in list order (a higher code is a worse class): {codes}")
    return tuple(classes)
