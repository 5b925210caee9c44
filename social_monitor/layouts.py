"""A city's delivery layouts: how its offices deliver each source (``config/<city>/deliveries.yml``).

Each source has one canonical contract (``schemas/raw.py``: English column names, canonical codes). A city's
layout of a source says how that city delivers it: the file name (``{reference_date}`` = YYYY-MM-DD), the
format (csv or parquet), encoding, separator and date format, the city's header for every contract column
(in the order of the file) and the city's codes for every coded column, mapped to the contract's codes.

``load_layouts(city_dir)`` reads and checks the file; every problem is a ``LayoutError`` naming the file and
the key (``deliveries.yml: register.codes.sex: ...``). The layouts are passed on explicitly (settings are
injected; nothing here reads the environment).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from schemas.aggregates import AGGREGATE_TABLE, AggregateCounts
from schemas.raw import RawDelivery, code_lists, coded_columns, delivered_columns
from social_monitor.deliveries import (
    FORMATS,
    MANIFEST_SUFFIX,
    SOURCES,
    Source,
    delimiter_problem,
    encoding_problem,
    one_line,
)
from social_monitor.geography import Geography

LAYOUT_FILE = "deliveries.yml"
DATE_PLACEHOLDER = "{reference_date}"
KEYS = ("sender", "file_name", "format", "encoding", "separator", "date_format", "headers", "codes")
REQUIRED = ("file_name", "format", "encoding", "date_format", "headers", "codes")
DATE_DIRECTIVES = {"%d": "DD", "%m": "MM", "%Y": "YYYY"}  # the directives a date format may (and must) use
MAX_HEADER_CHARS = 64
AGGREGATES_KEY = "aggregates"  # the list of a city's aggregate deliveries (counts per area of partner offices)
AGGREGATE_KEYS = ("id", "sender", "file_name", "format", "encoding", "separator", "level", "headers", "measures",
                  "gaps")
AGGREGATE_REQUIRED = ("id", "file_name", "format", "encoding", "level", "headers", "measures")
IDENTIFIER = r"[a-z][a-z0-9_]{0,62}"  # an aggregate delivery's id and a measure id


class LayoutError(ValueError):
    """A delivery layout file that cannot be used: one line naming the file and the key."""

    def __init__(self, path: Path | str, key: str, message: str):
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(one_line(where + message, 600))


@dataclass(frozen=True)
class SourceLayout:
    """How one city delivers one source."""

    name: str
    contract: type[RawDelivery]
    sender: str
    file_pattern: str
    file_format: str
    encoding: str
    separator: str | None
    date_format: str
    headers: Mapping[str, str]  # contract column -> the city's header, in the file's order
    codes: Mapping[str, Mapping[str, str]]  # coded contract column -> {city code: contract code}
    # every published code of the city's layouts and of the contracts -> the headers (of any source of the
    # city) it is a code of: such a value may be shown in a message (it identifies nobody)
    city_codes: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    path: Path | None = None  # the layout file

    @property
    def table(self) -> str:
        """The warehouse table in the ``raw`` schema that holds this source."""
        return self.name

    @property
    def extension(self) -> str:
        return self.file_pattern.rsplit(".", 1)[1] if "." in self.file_pattern else ""

    @property
    def file_columns(self) -> dict[str, str]:
        """``{the city's header: contract column}`` in the file's order."""
        return {header: column for column, header in self.headers.items()}

    @property
    def date_expectation(self) -> str:
        """The date format as a person writes it: ``DD.MM.YYYY``."""
        text = self.date_format
        for directive, shown in DATE_DIRECTIVES.items():
            text = text.replace(directive, shown)
        return text

    def file_name(self, reference_date: dt.date) -> str:
        return self.file_pattern.replace(DATE_PLACEHOLDER, reference_date.isoformat())

    def manifest_name(self, reference_date: dt.date) -> str:
        return _manifest_pattern(self.file_pattern).replace(DATE_PLACEHOLDER, reference_date.isoformat())

    @property
    def manifest_glob(self) -> str:
        """The manifest names of this source, as a pattern for a person: ``sgb12_<YYYY-12-31>.manifest.json``."""
        return _manifest_pattern(self.file_pattern).replace(DATE_PLACEHOLDER, "<YYYY-12-31>")

    def date_of_manifest_name(self, name: str) -> dt.date | None | bool:
        """The reference date a manifest's name states (None if it is no date), or False if the name is not
        one of this source's manifests."""
        before, after = _manifest_pattern(self.file_pattern).split(DATE_PLACEHOLDER)
        found = re.fullmatch(re.escape(before) + r"([0-9]{4}-[0-9]{2}-[0-9]{2})" + re.escape(after), name)
        if not found:
            return False
        try:
            return dt.date.fromisoformat(found.group(1))
        except ValueError:
            return None

    @property
    def is_aggregate(self) -> bool:
        return False

    def row_constants(self) -> dict[str, str]:
        """Columns of the stored rows the loader fills from the layout, as SQL expressions (none here)."""
        return {}

    def area_keys(self, geography: Geography, cycle: int) -> tuple[str, ...]:
        """The area keys a delivery of ``cycle`` may carry: the base keys valid in the cycle."""
        return geography.base_keys(cycle)

    def city_code_of(self, column: str) -> dict[str, str]:
        """``{contract code: the city's code}``: the first city code listed for each contract code (what the
        sample generator writes)."""
        inverse: dict[str, str] = {}
        for city, contract in self.codes[column].items():
            inverse.setdefault(contract, city)
        return inverse


@dataclass(frozen=True)
class AggregateLayout(SourceLayout):
    """How one city's partner office delivers one aggregate delivery (``aggregates`` in deliveries.yml): the
    level its area keys are of, its measure codes (``codes['measure']``: city code -> measure id), the measures
    that are not additive (published only at the level delivered) and the areas it may leave out (``gaps``:
    area key -> why). Stored in ``raw.aggregates`` with the delivery's id."""

    level: str = ""
    non_additive: frozenset[str] = frozenset()
    gaps: Mapping[str, str] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return AGGREGATE_TABLE

    @property
    def is_aggregate(self) -> bool:
        return True

    @property
    def measures(self) -> list[str]:
        """The measure ids of the delivery, in the layout's order."""
        return list(dict.fromkeys(self.codes["measure"].values()))

    def row_constants(self) -> dict[str, str]:
        non_additive = ", ".join(_sql_text(m) for m in sorted(self.non_additive)) or "null"
        return {"delivery": _sql_text(self.name), "area_level": _sql_text(self.level),
                "additive": f"coalesce(measure not in ({non_additive}), true)"}

    def area_keys(self, geography: Geography, cycle: int) -> tuple[str, ...]:
        """The keys of the delivery's level valid in ``cycle`` (on that cycle's geography version)."""
        if self.level not in {level.id for level in geography.levels}:
            raise LayoutError(self.path or LAYOUT_FILE, f"{AGGREGATES_KEY}.{self.name}.level",
                              f"{self.level!r} is not a level of the city's geography "
                              f"({', '.join(level.id for level in geography.levels)})")
        return tuple(area.area_id for area in geography.areas_of(self.level, cycle))


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


Layouts = Mapping[str, SourceLayout]


def _manifest_pattern(file_pattern: str) -> str:
    stem = file_pattern.rsplit(".", 1)[0] if "." in file_pattern.replace(DATE_PLACEHOLDER, "") else file_pattern
    return stem + MANIFEST_SUFFIX


def source_of_manifest_name(layouts: Layouts, name: str) -> tuple[str, dt.date | None] | None:
    """The source and reference date a manifest's file name states, by the city's layouts; None if the name
    is no manifest name of any source."""
    for layout in layouts.values():
        date = layout.date_of_manifest_name(name)
        if date is not False:
            return layout.name, date
    return None


def layout_path(city_dir: Path | str) -> Path:
    return Path(city_dir) / LAYOUT_FILE


def load_layouts(city_dir: Path | str, known_measures: Collection[str] | None = None) -> dict[str, SourceLayout]:
    """The delivery layouts of the city in ``city_dir`` (its ``deliveries.yml``), checked: one per person-level
    source (``SOURCES``) and one per aggregate delivery (``aggregates``, ``AggregateLayout``), by name. The
    measures of the aggregate deliveries must be ``known_measures`` (default: the measures the indicator
    catalogue names)."""
    path = layout_path(city_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LayoutError(path, "", "the city folder has no delivery layouts (deliveries.yml); see README, "
                                    "Your own city") from None
    except UnicodeDecodeError:
        raise LayoutError(path, "", "not UTF-8; save it as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise LayoutError(path, "", f"not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise LayoutError(path, "", "expected a mapping of source names to layouts")
    aggregates = _aggregate_layouts(path, raw.pop(AGGREGATES_KEY, None) or [], known_measures)
    unknown = [str(k) for k in raw if k not in SOURCES]
    if unknown:
        raise LayoutError(path, unknown[0], f"unknown source; the sources are {', '.join(SOURCES)}")
    missing = [name for name in SOURCES if name not in raw]
    if missing:
        raise LayoutError(path, missing[0], "no layout for this source (every source needs one)")
    layouts = {name: _source_layout(path, name, raw[name]) for name in SOURCES}
    for name, layout in aggregates.items():
        if name in layouts:
            raise LayoutError(path, f"{AGGREGATES_KEY}.{name}.id", "is the name of a person-level source")
        layouts[name] = layout
    _check_distinct(path, layouts)
    city_codes: dict[str, list[str]] = {}
    for layout in layouts.values():
        published = {column: list(codes) for column, codes in layout.codes.items()}
        for column, codes in code_lists(layout.contract).items():  # the contract's codes, and uncoded lists
            published.setdefault(column, [])
            published[column] += codes
        for column, codes in published.items():
            for code in codes:
                headers = city_codes.setdefault(code, [])
                if layout.headers[column] not in headers:
                    headers.append(layout.headers[column])
    frozen = {code: tuple(headers) for code, headers in city_codes.items()}
    return {name: _with_codes(layout, frozen) for name, layout in layouts.items()}


def _with_codes(layout: SourceLayout, city_codes: Mapping[str, tuple[str, ...]]) -> SourceLayout:
    return type(layout)(**{**layout.__dict__, "city_codes": city_codes})


def _source_layout(path: Path, name: str, raw: object) -> SourceLayout:
    if not isinstance(raw, dict):
        raise LayoutError(path, name, "expected a mapping with the keys " + ", ".join(KEYS))
    for key in raw:
        if key not in KEYS:
            raise LayoutError(path, f"{name}.{key}", f"unknown key; the keys are {', '.join(KEYS)}")
    for key in REQUIRED:
        if key not in raw:
            raise LayoutError(path, f"{name}.{key}", "missing")
    contract = SOURCES[name].contract
    file_format, file_pattern, encoding, separator = _file_fields(path, name, raw)
    date_format = _date_format(path, f"{name}.date_format", raw["date_format"])
    headers = _headers(path, name, raw["headers"], contract, separator)
    codes = _codes(path, name, raw["codes"], contract)
    sender = _sender(path, name, raw)
    return SourceLayout(name=name, contract=contract, sender=sender, file_pattern=file_pattern,
                        file_format=file_format, encoding=encoding, separator=separator,
                        date_format=date_format, headers=headers, codes=codes, path=path)


def _sender(path: Path, name: str, raw: dict) -> str:
    sender = raw.get("sender")
    if sender is not None and not isinstance(sender, str):
        raise LayoutError(path, f"{name}.sender", "expected text")
    return sender or ""


def _file_fields(path: Path, name: str, raw: dict) -> tuple[str, str, str, str | None]:
    """Format, file name pattern, encoding and separator (None for parquet) of a layout, checked."""
    file_format = _text(path, f"{name}.format", raw["format"])
    if file_format not in FORMATS:
        raise LayoutError(path, f"{name}.format", f"{file_format!r} is not one of {', '.join(FORMATS)}")
    file_pattern = _file_pattern(path, f"{name}.file_name", raw["file_name"])
    encoding = _text(path, f"{name}.encoding", raw["encoding"])
    problem = encoding_problem(encoding)
    if problem:
        raise LayoutError(path, f"{name}.encoding", f"{encoding!r} {problem}")
    if "abc;,|\t\n".encode(encoding) != b"abc;,|\t\n":
        raise LayoutError(path, f"{name}.encoding", f"{encoding!r} does not write plain letters and separators "
                                                    "as single bytes (UTF-16 and UTF-32 are not supported)")
    separator = raw.get("separator")
    if file_format == "csv":
        if not isinstance(separator, str):
            raise LayoutError(path, f"{name}.separator", "a csv file needs a separator (one character, e.g. \";\")")
        problem = delimiter_problem(separator)
        if problem:
            raise LayoutError(path, f"{name}.separator", f"{separator!r} {problem}")
    elif separator is not None:
        raise LayoutError(path, f"{name}.separator", "a parquet file has no separator; write null")
    return file_format, file_pattern, encoding, separator if file_format == "csv" else None


def _aggregate_layouts(path: Path, raw: object, known_measures: Collection[str] | None) -> dict[str, AggregateLayout]:
    """The city's aggregate deliveries (``aggregates``: a list of layouts, each with an ``id``), checked."""
    if not isinstance(raw, list):
        raise LayoutError(path, AGGREGATES_KEY, "expected a list of aggregate deliveries (each with an id)")
    if known_measures is None:
        from social_monitor.catalogue import catalogue_measures

        known_measures = catalogue_measures()
    layouts: dict[str, AggregateLayout] = {}
    owner: dict[str, str] = {}  # measure id -> the delivery that delivers it
    for number, entry in enumerate(raw, start=1):
        where = f"{AGGREGATES_KEY}[{number}]"
        if not isinstance(entry, dict):
            raise LayoutError(path, where, "expected a mapping with the keys " + ", ".join(AGGREGATE_KEYS))
        name = entry.get("id")
        if not isinstance(name, str) or not re.fullmatch(IDENTIFIER, name):
            raise LayoutError(path, f"{where}.id", "expected an id of lower-case letters, digits and _ (e.g. "
                                                   "schuleingang)")
        where = f"{AGGREGATES_KEY}.{name}"
        if name in layouts:
            raise LayoutError(path, f"{where}.id", "given to two aggregate deliveries")
        for key in entry:
            if key not in AGGREGATE_KEYS:
                raise LayoutError(path, f"{where}.{key}", f"unknown key; the keys are {', '.join(AGGREGATE_KEYS)}")
        for key in AGGREGATE_REQUIRED:
            if key not in entry:
                raise LayoutError(path, f"{where}.{key}", "missing")
        file_format, file_pattern, encoding, separator = _file_fields(path, where, entry)
        level = _text(path, f"{where}.level", entry["level"])
        headers = _headers(path, where, entry["headers"], AggregateCounts, separator)
        codes, non_additive = _measures(path, where, entry["measures"], known_measures)
        for measure in dict.fromkeys(codes.values()):
            if measure in owner:
                raise LayoutError(path, f"{where}.measures", f"measure {measure!r} is delivered by "
                                                             f"{owner[measure]} too; a measure has one delivery")
            owner[measure] = name
        gaps = entry.get("gaps") or {}
        if not isinstance(gaps, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                 for k, v in gaps.items()):
            raise LayoutError(path, f"{where}.gaps", "expected a mapping of area keys (quoted) to why the area "
                                                     "is not delivered")
        layouts[name] = AggregateLayout(
            name=name, contract=AggregateCounts, sender=_sender(path, where, entry), file_pattern=file_pattern,
            file_format=file_format, encoding=encoding, separator=separator, date_format="%d.%m.%Y",
            headers=headers, codes={"measure": codes}, path=path, level=level, non_additive=non_additive,
            gaps=dict(gaps))
    return layouts


def _measures(path: Path, where: str, raw: object, known: Collection[str]) -> tuple[dict[str, str], frozenset[str]]:
    """``{city code: measure id}`` and the measures that are not additive, from ``measures``: each city code maps
    to a measure id, or to ``{measure: id, additive: false}`` for a measure that must not be added up (an
    index)."""
    key = f"{where}.measures"
    if not isinstance(raw, dict) or not raw:
        raise LayoutError(path, key, "expected a mapping of the city's measure codes to measure ids")
    codes: dict[str, str] = {}
    non_additive: set[str] = set()
    for city_code, target in raw.items():
        if isinstance(city_code, bool) or not isinstance(city_code, str | int) or not str(city_code).strip() \
                or str(city_code) != str(city_code).strip() or not str(city_code).isprintable():
            raise LayoutError(path, f"{key}.{city_code}", "a measure code is printable text without spaces around "
                                                          "it (quote yes/no/on/off and decimals)")
        additive = True
        if isinstance(target, dict):
            unknown = sorted(set(target) - {"measure", "additive"})
            if unknown or not isinstance(target.get("additive", True), bool):
                raise LayoutError(path, f"{key}.{city_code}", "expected a measure id or {measure: <id>, "
                                                              "additive: true|false}")
            additive, target = target.get("additive", True), target.get("measure")
        if not isinstance(target, str) or not re.fullmatch(IDENTIFIER, target):
            raise LayoutError(path, f"{key}.{city_code}", "expected a measure id of lower-case letters, digits "
                                                          "and _")
        if target not in known:
            raise LayoutError(path, f"{key}.{city_code}", f"measure {target!r} is named by no indicator of the "
                                                          "catalogue (numerator_measure or denominator_measure)")
        if target in codes.values():
            raise LayoutError(path, f"{key}.{city_code}", f"measure {target!r} is given two codes")
        codes[str(city_code)] = target
        if not additive:
            non_additive.add(target)
    return codes, frozenset(non_additive)


def _text(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LayoutError(path, key, "expected non-empty text")
    return value


def _file_pattern(path: Path, key: str, value: object) -> str:
    text = _text(path, key, value)
    if text.count(DATE_PLACEHOLDER) != 1:
        raise LayoutError(path, key, f"must contain {DATE_PLACEHOLDER} exactly once (the reference date)")
    rest = text.replace(DATE_PLACEHOLDER, "")
    if any(ch in rest for ch in "{}/\\:\0*?") or not rest.isprintable() or rest.startswith("."):
        raise LayoutError(path, key, "must be a bare file name (no folder, no braces other than "
                                     f"{DATE_PLACEHOLDER}, no wildcards)")
    if "." not in text.split(DATE_PLACEHOLDER)[1]:
        raise LayoutError(path, key, "needs an extension after the date (e.g. .csv), which the manifest's name "
                                     f"replaces by {MANIFEST_SUFFIX}")
    return text


def _date_format(path: Path, key: str, value: object) -> str:
    text = _text(path, key, value)
    directives = re.findall(r"%.", text)
    if sorted(directives) != sorted(DATE_DIRECTIVES) or "%" in re.sub(r"%[dmY]", "", text):
        raise LayoutError(path, key, f"{text!r} must use each of %d, %m and %Y once and no other % directive "
                                     "(e.g. %d.%m.%Y or %Y-%m-%d)")
    return text


def _headers(path: Path, name: str, raw: object, contract: type[RawDelivery], separator: str | None) -> dict[str, str]:
    key = f"{name}.headers"
    columns = delivered_columns(contract)
    if not isinstance(raw, dict):
        raise LayoutError(path, key, f"expected a mapping of the contract's columns ({', '.join(columns)}) to "
                                     "the city's headers")
    for column in raw:
        if column not in columns:
            raise LayoutError(path, f"{key}.{column}", f"not a column of the contract; its columns are "
                                                       f"{', '.join(columns)}")
    for column in columns:
        if column not in raw:
            raise LayoutError(path, f"{key}.{column}", "missing (every column of the contract needs a header)")
    headers: dict[str, str] = {}
    for column, header in raw.items():
        where = f"{key}.{column}"
        if not isinstance(header, str) or not header.strip():
            raise LayoutError(path, where, "expected a header name (non-empty text)")
        if header != header.strip() or not header.isprintable() or len(header) > MAX_HEADER_CHARS \
                or '"' in header or header.startswith("\ufeff"):
            raise LayoutError(path, where, f"a header is printable text of at most {MAX_HEADER_CHARS} characters "
                                           "without spaces around it or quotes")
        if separator is not None and separator in header:
            raise LayoutError(path, where, f"the header contains the separator {separator!r}")
        if header in headers.values():
            raise LayoutError(path, where, f"the header {header!r} is given to two columns")
        headers[column] = header
    return headers


def _codes(path: Path, name: str, raw: object, contract: type[RawDelivery]) -> dict[str, dict[str, str]]:
    key = f"{name}.codes"
    coded = coded_columns(contract)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LayoutError(path, key, "expected a mapping of coded columns to {city code: contract code}")
    for column in raw:
        if column not in coded:
            raise LayoutError(path, f"{key}.{column}", "not a coded column of the contract; its coded columns "
                                                       f"are {', '.join(coded) or 'none'}")
    codes: dict[str, dict[str, str]] = {}
    for column, contract_codes in coded.items():
        where = f"{key}.{column}"
        mapping = raw.get(column)
        if not isinstance(mapping, dict) or not mapping:
            raise LayoutError(path, where, f"missing: map the city's codes to the contract's codes "
                                           f"({', '.join(contract_codes)})")
        codes[column] = {}
        for city_code, contract_code in mapping.items():
            if isinstance(city_code, bool) or not isinstance(city_code, str | int):
                raise LayoutError(path, f"{where}.{city_code}", "a city code is text or a whole number (quote "
                                                                "yes/no/on/off and decimals)")
            city_text = str(city_code)
            if not city_text or city_text != city_text.strip() or not city_text.isprintable():
                raise LayoutError(path, f"{where}.{city_text}", "a city code is printable text without spaces "
                                                                "around it")
            if contract_code not in contract_codes:
                raise LayoutError(path, f"{where}.{city_text}", f"maps to {contract_code!r}, which is not a code "
                                                                f"of the contract ({', '.join(contract_codes)})")
            codes[column][city_text] = contract_code
        unmapped = [code for code in contract_codes if code not in codes[column].values()]
        if unmapped:
            raise LayoutError(path, where, f"no city code for the contract's code(s) {', '.join(unmapped)}")
    return codes


def _check_distinct(path: Path, layouts: dict[str, SourceLayout]) -> None:
    seen: dict[str, str] = {}
    sample = dt.date(2000, 12, 31)
    for name, layout in layouts.items():
        for kind, value in (("file_name", layout.file_name(sample)), ("manifest", layout.manifest_name(sample))):
            other = seen.get(kind + value)
            if other:
                raise LayoutError(path, f"{name}.file_name", f"names the same files as {other}.file_name")
            seen[kind + value] = name
        for other in layouts.values():  # a manifest name of one source must not match another's pattern
            if other.name != name and other.date_of_manifest_name(layout.manifest_name(sample)) is not False:
                raise LayoutError(path, f"{name}.file_name", f"its manifests would also match "
                                                             f"{other.name}.file_name")


def delivered_sources(city_dir: Path | str) -> list[Source]:
    """Every source of the city: the person-level ones (``SOURCES``) and one per aggregate delivery of its layout
    file, by id (stored in ``raw.aggregates``). Read leniently, for wiring (the Dagster raw assets, checks and
    the delivery sensor): a layout file that cannot be read gives the person-level sources only; loading a
    delivery reads it with ``load_layouts``, which names every problem."""
    sources = list(SOURCES.values())
    try:
        raw = yaml.safe_load(layout_path(city_dir).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return sources
    entries = raw.get(AGGREGATES_KEY) if isinstance(raw, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        name = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(name, str) and re.fullmatch(IDENTIFIER, name) and name not in SOURCES \
                and all(s.name != name for s in sources):
            sources.append(Source(name, AggregateCounts, table_name=AGGREGATE_TABLE))
    return sources
