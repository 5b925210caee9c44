"""Statistical disclosure control of the published marts (statistische Geheimhaltung).

Applied when publishing, never in the private warehouse. By configuration (``publication`` in
city.yml, read into ``DisclosureRule``):

- **small counts**: a count from 1 to ``min_count - 1`` (default 1 or 2 persons) is never published; every
  cell that shows it as numerator or denominator is suppressed (``small_count``);
- **small areas**: every rate of an area with fewer than ``min_population_for_rates`` residents is
  withheld as unreliable (``small_population``); its counts are not secret and may be published elsewhere;
- **secondary suppression** (``secondary``): published cells are tied together by additive relations, so a
  suppressed count could be recovered from the published ones. The relations are declared once, from the
  indicator catalogue and the area hierarchy (``declared_relations``):

  * across area levels: every count of an area is the sum over the areas that lie directly in it, as the
    city's geography declares them (``Hierarchy``, from the published area_levels and area_hierarchy): a
    base area adds up to its parent and to the area of every level grouping it (Dortmund's Unterbezirke to
    both their statistischer Bezirk and their Sozialraum, which cut across Bezirk lines), every area to its
    parent, the top level and every grouping level to the city;
  * between counts: a count is the sum of others (catalogue column ``numerator_sum_of`` /
    ``denominator_sum_of``: residents and their age groups, transfer recipients and their four schemes);
  * between cycles: a change since the previous cycle (catalogue column ``change_of``) is the count minus
    the previous cycle's count, and its denominator is the previous cycle's count;
  * rates: a rate publishes its numerator and denominator, which are counts of other cells: the audit works
    on counts (``Key``: cycle, level, area, measure), and a count is published when any published cell
    shows it.

  Secondary suppression is greedy: while the audit (``audit``) finds a suppressed cell it can recover or a
  small count it can narrow below the protection interval, the cheapest published counts whose suppression
  gives it room are suppressed too (a linear program on the count's neighbourhood in the relations, widened
  until feasible: ``_Protector``), and the audit runs again. A round that can suppress nothing more ends
  with an error naming the counts (measure, area, cycle; never a value).

The audit recovers what a reader of the published file can: by subtraction in every declared relation
(one suppressed count in a relation whose other counts are published), and by linear programming: for each
suppressed count, its minimum and maximum subject to every declared relation, the published counts and
non-negativity (HiGHS through ``highspy``: one model per group of linked counts, solved again for each
objective). A suppressed cell is recoverable when every
suppressed count it shows is pinned to one value; a small-count cell is under-protected when one of its
suppressed counts can move by less than ``protection_interval`` persons (default ``min_count``: the
interval then always reaches a count of at least ``min_count``, so a reader can neither pin the count
nor tell that it is small).

A suppressed cell keeps its row (so BI tools see the gap) with numerator, denominator and value empty and
the reason in ``suppression``. Plain Python on polars frames, no Dagster.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

# scipy (about 0.8 s to import) and highspy are imported where a linear program is solved, not by the many
# importers of the rule and the constants below (the Dagster code location, the report, the exports).

REASONS = ("small_count", "small_population", "secondary")
KEY = ["report_cycle", "area_level", "area_id", "indicator_id"]
POPULATION_INDICATOR = "residents"
CITY_ID = "city"
MAX_ROUNDS = 20

Key = tuple[int, str, str, str]  # report_cycle, area_level, area_id, measure


@dataclass(frozen=True)
class DisclosureRule:
    min_count: int = 3
    min_population_for_rates: int = 100
    # a small count must keep an interval at least this wide; None: min_count
    protection_interval: int | None = None

    @property
    def protection(self) -> int:
        return self.min_count if self.protection_interval is None else self.protection_interval

    @classmethod
    def from_config(cls, config: Mapping[str, object] | None) -> DisclosureRule:
        config = dict(config or {})
        unknown = sorted(set(config) - {"min_count", "min_population_for_rates", "protection_interval"})
        if unknown:
            raise ValueError(f"publication: unknown key(s) {', '.join(unknown)}")
        interval = config.get("protection_interval")
        rule = cls(min_count=int(config.get("min_count", 3)),
                   min_population_for_rates=int(config.get("min_population_for_rates", 100)),
                   protection_interval=None if interval is None else int(interval))
        if rule.min_count < 3 or rule.min_population_for_rates < 0:
            raise ValueError("publication: min_count must be at least 3 (counts of 1 and 2 are never published; "
                             "the published contract checks it) and min_population_for_rates >= 0")
        if rule.protection < 1:
            raise ValueError("publication: protection_interval must be at least 1 person")
        return rule

    def texts_de(self) -> dict[str, str]:
        """The rule in German words, for every text that describes it (report, Excel notes, data dictionary,
        dbt docs): each names the numbers of this rule, none is written by hand elsewhere."""
        return {
            "small_count": f"Fallzahl von 1 bis {self.min_count - 1}",
            "small_counts": f"Fallzahlen von 1 bis {self.min_count - 1}",
            "small_population": f"Quote eines Gebiets mit weniger als {self.min_population_for_rates} Einwohnern",
            "small_populations": f"Quoten von Gebieten mit weniger als {self.min_population_for_rates} Einwohnern",
            "secondary": "Sekundärsperrung, damit kein gesperrter Wert aus den veröffentlichten Werten errechnet "
                         "werden kann",
            "protection": "kein gesperrter Wert lässt sich aus den veröffentlichten Werten errechnen, und eine "
                          f"gesperrte kleine Fallzahl lässt sich nicht enger als auf {self.protection} Personen "
                          "eingrenzen",
        }

    def describe_de(self, text: str) -> str:
        """``text`` with every ``{name}`` of ``texts_de`` filled in."""
        for name, words in self.texts_de().items():
            text = text.replace("{" + name + "}", words)
        return text


@dataclass(frozen=True)
class Catalogue:
    """What the disclosure control needs from the indicator catalogue: the counts each indicator shows and
    the declared additive facts between counts."""

    numerator: Mapping[str, str]
    denominator: Mapping[str, str | None]
    sums: tuple[tuple[str, tuple[str, ...]], ...]  # (total measure, part measures)
    changes: tuple[tuple[str, str | None, str], ...]  # (change measure, previous-cycle measure, of measure)
    # (indicator, the indicator it is the change of): no counts of its own; social_monitor/publish.py publishes
    # such a cell only where both cells it is the difference of are published (``change_of_indicator``)
    indicator_changes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]]) -> Catalogue:
        numerator, denominator, sums, changes, indicator_changes = {}, {}, [], [], []
        for row in rows:
            indicator = row["indicator_id"]
            if row.get("change_of_indicator"):
                indicator_changes.append((indicator, row["change_of_indicator"]))
                continue
            numerator[indicator] = row["numerator_measure"]
            denominator[indicator] = row.get("denominator_measure") or None
            for column, measure in (("numerator_sum_of", numerator[indicator]),
                                    ("denominator_sum_of", denominator[indicator])):
                parts = tuple((row.get(column) or "").split())
                if parts:
                    if measure is None:
                        raise ValueError(f"indicator catalogue, indicator {indicator!r}: {column} without a measure")
                    sums.append((measure, parts))
            if row.get("change_of"):
                changes.append((numerator[indicator], denominator[indicator], row["change_of"]))
        return cls(numerator, denominator, tuple(dict.fromkeys(sums)), tuple(dict.fromkeys(changes)),
                   tuple(indicator_changes))

    @property
    def change_measures(self) -> frozenset[str]:
        """Measures that may be negative."""
        return frozenset(change for change, _, _ in self.changes)


Child = tuple[str, int | None, int | None]  # area id, valid from, valid to (report cycles, inclusive; None: open)


def _valid(child: Child, cycle: int) -> bool:
    return (child[1] is None or child[1] <= cycle) and (child[2] is None or cycle <= child[2])


@dataclass(frozen=True)
class Hierarchy:
    """Which areas add up to which: per step (part level, total level), each total area with the areas that lie
    directly in it, each with the report cycles it lies there (a geography reform ends some, begins others).
    Steps run from the deepest part level up (a base area to its parent before its groups), parts in the order
    of their keys: the relations come in one order for one geography (the linear programs of the secondary
    suppression may choose other partners among equally cheap ones in another order)."""

    steps: tuple[tuple[str, str, tuple[tuple[str, tuple[Child, ...]], ...]], ...]

    @classmethod
    def from_tables(cls, levels: pl.DataFrame, hierarchy: pl.DataFrame) -> Hierarchy:
        """From the published ``area_levels`` (area_level, parent_level, level_order) and ``area_hierarchy``
        (area_level, area_id, container_level, container_id, is_direct, and where areas change, valid_from and
        valid_to)."""
        parent = dict(zip(levels["area_level"].to_list(), levels["parent_level"].to_list(), strict=True))
        order = dict(zip(levels["area_level"].to_list(), levels["level_order"].to_list(), strict=True))

        def depth(level: str) -> int:
            steps, current = 0, level
            while current != CITY_ID and steps <= len(parent):
                current, steps = parent.get(current) or CITY_ID, steps + 1
            return steps

        for column in ("valid_from", "valid_to"):
            if column not in hierarchy.columns:
                hierarchy = hierarchy.with_columns(pl.lit(None, dtype=pl.Int64).alias(column))
        # parts in the order of their keys, totals in the order of their first part
        members: dict[tuple[str, str], dict[str, list[Child]]] = defaultdict(lambda: defaultdict(list))
        for level, area, total_level, total, valid_from, valid_to in hierarchy.filter(pl.col("is_direct")).sort(
                "area_id", "valid_from", nulls_last=False).select(
                "area_level", "area_id", "container_level", "container_id", "valid_from", "valid_to").iter_rows():
            members[(level, total_level)][total].append((area, valid_from, valid_to))
        for level, total_level in members:
            if level not in order or total_level not in order:
                raise ValueError(f"area_hierarchy: level {level if level not in order else total_level!r} is not in "
                                 "area_levels")
        pairs = sorted(members, key=lambda p: (-depth(p[0]), -depth(p[1]), order[p[0]], order[p[1]]))
        return cls(tuple((part, total, tuple((t, tuple(children)) for t, children in members[(part, total)].items()))
                         for part, total in pairs))


# ------------------------------------------------------------------------------------- geography versions
# A city whose geography changed publishes each cycle on its own version and, harmonised, on the latest one
# (issue 11, part 3). For the disclosure control both are one system of counts: a harmonised cell's level is
# tagged with its version (``tagged``), so its counts are other counts than the same area's on the cycle's own
# version, tied to them by the conversion (``Versions``).

VERSION_TAG = "@"


def tagged(level: str, version: int) -> str:
    """The level of a harmonised cell: ``planungsraum@2020`` is the Planungsraum level on the version of 2020. The
    city is the city on every version: its harmonised counts are its own (every person is placed once)."""
    return level if level == CITY_ID else f"{level}{VERSION_TAG}{version}"


def untagged(level: str) -> tuple[str, int | None]:
    name, _, version = level.partition(VERSION_TAG)
    return name, int(version) if version else None


@dataclass(frozen=True)
class Versions:
    """The geography version of every report cycle (the first report cycle of the version), the base level, and
    the conversion of retired base areas onto their successors (old area id, new area id): the persons of an
    old area are counted in its successors, so per cycle the counts of every connected set of old areas add up
    to those of their successors. A base area that is not retired is its own successor."""

    of_cycle: Mapping[int, int]
    base_level: str
    conversion: tuple[tuple[str, str], ...] = ()

    def components(self, old_ids: Iterable[str], new_ids: Iterable[str]) -> list[tuple[list[str], list[str]]]:
        """The sets of old areas (``old_ids``: those with a count in the cycle) and of their successors
        (``new_ids``: those of the harmonised cells) that hold the same persons."""
        old_ids, new_ids = set(old_ids), set(new_ids)
        retired = {old for old, _ in self.conversion}
        pairs = [(o, n) for o, n in self.conversion if o in old_ids]
        pairs += [(o, o) for o in sorted(old_ids - retired) if o in new_ids]
        parent: dict[tuple[str, str], tuple[str, str]] = {}

        def find(x: tuple[str, str]) -> tuple[str, str]:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for o, n in pairs:
            parent[find(("old", o))] = find(("new", n))
        groups: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        for side, area in sorted(parent):
            groups[find((side, area))][0 if side == "old" else 1].append(area)
        return [group for group in groups.values() if group[0] and group[1]]


@dataclass(frozen=True)
class Relation:
    kind: str  # hierarchy, sum_of, change_of
    terms: tuple[tuple[Key, int], ...]  # sum of coefficient * count == 0


def declared_relations(keys: Iterable[Key], hierarchy: Hierarchy, catalogue: Catalogue,
                       versions: Versions | None = None) -> list[Relation]:
    """Every additive relation between the counts ``keys``, from the area hierarchy and the catalogue, and between
    a cycle's counts on its own geography version and its harmonised counts (``versions``).

    A relation is declared only when all its counts are among ``keys``."""
    keys = set(keys)
    measures = sorted({k[3] for k in keys})
    cycles = sorted({k[0] for k in keys})
    tags: dict[int, set[int | None]] = defaultdict(set)  # per cycle: None (its own version), harmonised versions
    areas_of: dict[tuple[int, str], set[str]] = defaultdict(set)
    for cycle, level, area, _ in keys:
        tags[cycle].add(untagged(level)[1])
        areas_of[(cycle, level)].add(area)
    relations: list[Relation] = []

    def add(kind: str, terms: list[tuple[Key, int]]) -> None:
        if all(k in keys for k, _ in terms):
            relations.append(Relation(kind, tuple(terms)))

    for part_level, total_level, members in hierarchy.steps:
        for cycle in cycles:
            for tag in sorted(tags[cycle], key=lambda t: -1 if t is None else t):
                on = cycle if tag is None else tag  # the cycle whose geography the counts are on
                part, total_at = (part_level, total_level) if tag is None else (
                    tagged(part_level, tag), tagged(total_level, tag))
                valid = [(total, [c[0] for c in children if _valid(c, on)]) for total, children in members]
                for measure in measures:
                    for total, children in valid:
                        if children:
                            add("hierarchy", [((cycle, total_at, total, measure), 1)]
                                + [((cycle, part, child, measure), -1) for child in children])
    places = sorted({k[:3] for k in keys})
    for total, parts in catalogue.sums:
        for place in places:
            add("sum_of", [((*place, total), 1)] + [((*place, part), -1) for part in parts])

    def previous_level(cycle: int, level: str, before: int) -> str:
        """The level of a count's previous-cycle count: a change is on one version, the cycle's own (or for a
        harmonised count, its version); a previous cycle on another version is read harmonised onto it."""
        if versions is None:
            return level
        name, tag = untagged(level)
        on = versions.of_cycle[cycle] if tag is None else tag
        return name if versions.of_cycle[before] == on else tagged(name, on)

    for change, previous_measure, of in catalogue.changes:
        for cycle, before in zip(cycles[1:], cycles[:-1], strict=True):
            for place in (p for p in places if p[0] == cycle):
                now, then = (*place, of), (before, previous_level(cycle, place[1], before), place[2], of)
                add("change_of", [((*place, change), 1), (now, -1), (then, 1)])
                if previous_measure:
                    add("change_of", [((*place, previous_measure), 1), (then, -1)])
    if versions is not None:
        base = versions.base_level
        for cycle in cycles:
            for tag in sorted(t for t in tags[cycle] if t is not None):
                harmonised = tagged(base, tag)
                for olds, news in versions.components(areas_of[(cycle, base)], areas_of[(cycle, harmonised)]):
                    for measure in measures:
                        add("conversion", [((cycle, base, o, measure), 1) for o in olds]
                            + [((cycle, harmonised, n, measure), -1) for n in news])
    return relations


def counts_of(cells: pl.DataFrame, catalogue: Catalogue) -> tuple[dict[Key, int | None], list[tuple[Key, ...]]]:
    """The count behind every numerator and denominator of ``cells`` (None where the cell is emptied) and,
    per cell in row order, the counts it shows."""
    values: dict[Key, int | None] = {}
    shown: list[tuple[Key, ...]] = []
    for cycle, level, area, indicator, num, den in cells.select(
            "report_cycle", "area_level", "area_id", "indicator_id", "numerator", "denominator").iter_rows():
        if indicator not in catalogue.numerator:
            raise ValueError(f"area_indicators: indicator {indicator!r} is not in the indicator catalogue")
        cell_keys = [((cycle, level, area, catalogue.numerator[indicator]), num)]
        if catalogue.denominator[indicator]:
            cell_keys.append(((cycle, level, area, catalogue.denominator[indicator]), den))
        for key, value in cell_keys:
            if value is not None:
                values[key] = value
            else:
                values.setdefault(key, None)
        shown.append(tuple(k for k, _ in cell_keys))
    return values, shown


def check_relations(relations: Sequence[Relation], values: Mapping[Key, int | None]) -> None:
    """Every declared relation must hold on the private counts: a wrong declaration is refused, not used."""
    for relation in relations:
        if any(values[k] is None for k, _ in relation.terms):
            continue
        if sum(c * values[k] for k, c in relation.terms) != 0:
            cycle, level, area, measure = relation.terms[0][0]
            raise ValueError(
                f"declared {relation.kind} relation of {measure!r} does not hold in cycle {cycle}, {level} {area} "
                f"({' '.join(f'{c:+d} {k[3]}@{k[1]}:{k[2]}' for k, c in relation.terms[:6])}"
                f"{' ...' if len(relation.terms) > 6 else ''}): correct the indicator catalogue "
                "(numerator_sum_of, denominator_sum_of, change_of) or the area hierarchy")


# ---------------------------------------------------------------------------------------------------- audit

@dataclass
class Audit:
    """What a reader of the published cells can recover of the suppressed ones."""

    protection: int
    suppressed: dict[int, int] = field(default_factory=dict)  # per cycle: suppressed cells
    confidential: dict[int, int] = field(default_factory=dict)  # of which hide a count
    by_subtraction: dict[int, int] = field(default_factory=dict)  # cells recoverable by one subtraction
    recoverable: dict[int, int] = field(default_factory=dict)  # cells pinned by the linear programs
    under_protected: dict[int, int] = field(default_factory=dict)  # small-count cells narrower than protection
    # the counts to widen, for the secondary suppression: hidden count -> interval width
    failing: dict[Key, float] = field(default_factory=dict)
    intervals: dict[Key, tuple[float, float]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failing

    def per_cycle(self) -> list[dict[str, int]]:
        return [{"report_cycle": cycle, "suppressed_cells": self.suppressed[cycle],
                 "confidential_cells": self.confidential.get(cycle, 0),
                 "recoverable_by_subtraction": self.by_subtraction.get(cycle, 0),
                 "recoverable_by_linear_program": self.recoverable.get(cycle, 0),
                 "narrower_than_protection": self.under_protected.get(cycle, 0),
                 "protection_interval": self.protection} for cycle in sorted(self.suppressed)]


def _intervals(hidden: set[Key], known: Mapping[Key, int], relations: Sequence[Relation],
               free: frozenset[str]) -> tuple[dict[Key, tuple[float, float]], set[Key]]:
    """Min and max of every hidden count given the known ones, and the counts one subtraction gives."""
    reduced: list[tuple[list[tuple[Key, int]], float]] = []
    by_subtraction: set[Key] = set()
    for relation in relations:
        unknown = [(k, c) for k, c in relation.terms if k in hidden]
        if not unknown:
            continue
        rest = -float(sum(c * known[k] for k, c in relation.terms if k not in hidden))
        reduced.append((unknown, rest))
        if len(unknown) == 1:
            by_subtraction.add(unknown[0][0])
    # connected components of the hidden counts through the relations (union-find)
    parent = {k: k for k in hidden}

    def find(k: Key) -> Key:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for unknown, _ in reduced:
        root = find(unknown[0][0])
        for k, _ in unknown[1:]:
            other = find(k)
            if other != root:
                parent[other] = root
    components: dict[Key, list[Key]] = defaultdict(list)
    for k in sorted(hidden):
        components[find(k)].append(k)
    rows_of: dict[Key, list[int]] = defaultdict(list)
    for i, (unknown, _) in enumerate(reduced):
        rows_of[find(unknown[0][0])].append(i)

    # HiGHS directly (what scipy's linprog wraps): one model per component, solved again for each objective
    # from the previous basis; linprog built the model anew for each of the 2 × n programs (1.3 s of 1.7 s
    # at W1, 784 programs)
    import highspy

    infinity = highspy.kHighsInf
    unbounded = {highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible}
    intervals: dict[Key, tuple[float, float]] = {}
    for root, members in components.items():
        index = {k: i for i, k in enumerate(members)}
        lower = np.array([-infinity if k[3] in free else 0.0 for k in members])
        rows = rows_of.get(root, [])
        if not rows:
            for k, low in zip(members, lower, strict=True):
                intervals[k] = (-np.inf if low == -infinity else 0.0, np.inf)
            continue
        starts, columns, values, rhs = [], [], [], []
        for i in rows:
            unknown, rest = reduced[i]
            starts.append(len(columns))
            for k, c in unknown:
                columns.append(index[k])
                values.append(float(c))
            rhs.append(rest)
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.addVars(len(members), lower, np.full(len(members), infinity))
        # every relation an equality: the row's lower and upper bound are both its known rest
        highs.addRows(len(rows), np.array(rhs), np.array(rhs), len(columns), np.array(starts, dtype=np.int32),
                      np.array(columns, dtype=np.int32), np.array(values))
        for k, i in index.items():
            ends = []
            for sign in (1.0, -1.0):
                highs.changeColCost(i, sign)
                highs.run()
                status = highs.getModelStatus()
                if status in unbounded:  # the model is feasible (the true counts satisfy it): unbounded
                    ends.append(-np.inf if sign > 0 else np.inf)
                elif status == highspy.HighsModelStatus.kOptimal:
                    ends.append(sign * highs.getInfo().objective_function_value)
                else:
                    raise RuntimeError(f"disclosure audit: linear program for {k[3]} in cycle {k[0]}, {k[1]} "
                                       f"{k[2]} ended with status {highs.modelStatusToString(status)}")
            highs.changeColCost(i, 0.0)
            intervals[k] = (ends[0], ends[1])
    return intervals, by_subtraction


def audit(cells: pl.DataFrame, hierarchy: Hierarchy, catalogue: Catalogue, rule: DisclosureRule,
          relations: Sequence[Relation] | None = None, versions: Versions | None = None) -> Audit:
    """Try to recover every suppressed cell of the published ``cells`` (numbers emptied, ``suppression``)."""
    values, shown = counts_of(cells, catalogue)
    if relations is None:
        relations = declared_relations(values, hierarchy, catalogue, versions)
    hidden = {k for k, v in values.items() if v is None}
    known = {k: v for k, v in values.items() if v is not None}
    intervals, by_subtraction = _intervals(hidden, known, relations, catalogue.change_measures)
    result = Audit(protection=rule.protection, intervals=intervals)
    for (cycle, reason), cell_keys in zip(
            cells.select("report_cycle", "suppression").iter_rows(), shown, strict=True):
        if reason is None:
            continue
        result.suppressed[cycle] = result.suppressed.get(cycle, 0) + 1
        secret = [k for k in cell_keys if k in hidden]
        if not secret or reason == "small_population":
            # a rate withheld as unreliable: its counts are not secret (a count of 1 or 2 makes the cell
            # small_count), even where no other cell shows them (an area that had nobody, say)
            continue
        result.confidential[cycle] = result.confidential.get(cycle, 0) + 1
        widths = {k: intervals[k][1] - intervals[k][0] for k in secret}
        if all(k in by_subtraction for k in secret):
            result.by_subtraction[cycle] = result.by_subtraction.get(cycle, 0) + 1
        if all(w < 0.5 for w in widths.values()):
            result.recoverable[cycle] = result.recoverable.get(cycle, 0) + 1
            result.failing.setdefault(secret[0], widths[secret[0]])
        # under-protected: a count of the cell that may be the small one can move by less than protection
        narrow = [k for k in secret if widths[k] < rule.protection - 1e-6
                  and intervals[k][0] < rule.min_count - 0.5 and intervals[k][1] > 0.5]
        if reason == "small_count" and narrow:
            result.under_protected[cycle] = result.under_protected.get(cycle, 0) + 1
            for k in narrow:
                result.failing.setdefault(k, widths[k])
    for cycle in {k[0] for k in values}:
        result.suppressed.setdefault(cycle, 0)
    return result


# ------------------------------------------------------------------------------------------- suppression

def _primary(cells: pl.DataFrame, rule: DisclosureRule) -> pl.DataFrame:
    small = pl.col("numerator").is_between(1, rule.min_count - 1) | pl.col("denominator").is_between(
        1, rule.min_count - 1)
    # one row per area (the city's cells come twice where a cycle is also published harmonised)
    population = cells.filter(pl.col("indicator_id") == POPULATION_INDICATOR).select(
        "report_cycle", "area_level", "area_id", pl.col("value").alias("area_population")).unique(
        ["report_cycle", "area_level", "area_id"])
    return cells.join(population, on=["report_cycle", "area_level", "area_id"], how="left",
                      maintain_order="left").with_columns(
        pl.when(small).then(pl.lit("small_count"))
        .when(pl.col("denominator").is_not_null() & (pl.col("area_population") < rule.min_population_for_rates))
        .then(pl.lit("small_population"))
        .otherwise(pl.lit(None, dtype=pl.Utf8)).alias("suppression")
    ).drop("area_population")


def _emptied(flagged: pl.DataFrame) -> pl.DataFrame:
    hidden = pl.col("suppression").is_not_null()
    # the city is the city on every geography version (``tagged``): its cells empty the city value of every row
    city = (flagged.filter((pl.col("area_level") == CITY_ID) & hidden)
            .select("report_cycle", "indicator_id", pl.lit(True).alias("_city_hidden")).unique())
    return flagged.with_columns(
        *[pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in ("numerator", "denominator", "value")]
    ).join(city, on=["report_cycle", "indicator_id"], how="left", maintain_order="left").with_columns(
        pl.when(pl.col("_city_hidden")).then(None).otherwise(pl.col("city_value")).alias("city_value")
    ).drop("_city_hidden")


class _Protector:
    """Finds, for a suppressed count that the audit pins or narrows, published counts whose suppression gives it
    room: a linear program that moves the count up by the required width while every declared relation still
    holds, moving published counts at the cost of the cells they would empty (the classic cost-minimising
    protection of one cell). The counts it moves, once suppressed, leave the reader a second consistent
    solution, so the count can be anything between its value and value + width.

    The program is solved on a neighbourhood of the count first (the relations within ``depth`` steps of it;
    every count with a relation outside stays at its value, so a solution there is a solution of the whole
    system), widened until it is feasible: the whole system of a city has tens of thousands of counts, a
    neighbourhood tens. Published counts of the count's own cycle move first; of other cycles only when
    nothing else will do (a count tied to the previous cycle's by a change); published counts of the city only
    in the whole system, where their cost keeps them last."""

    DEPTHS = (2, 4, 8, None)  # None: every relation

    def __init__(self, values: Mapping[Key, int | None], relations: Sequence[Relation], free: frozenset[str]):
        from scipy.sparse import csr_matrix

        self.keys = sorted(values)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.value = np.array([values[k] or 0 for k in self.keys], dtype=float)
        self.free = np.array([k[3] in free for k in self.keys])
        self.cycle = np.array([k[0] for k in self.keys])
        data, rows, cols = [], [], []
        for r, relation in enumerate(relations):
            for k, c in relation.terms:
                data.append(float(c))
                rows.append(r)
                cols.append(self.index[k])
        self.matrix = csr_matrix((data, (rows, cols)), shape=(len(relations), len(self.keys)))
        self.by_key = self.matrix.tocsc()
        self.city = np.array([untagged(k[1])[0] == CITY_ID for k in self.keys])
        self.row_count = np.diff(self.by_key.indptr)  # relations per count

    def _neighbourhood(self, target: int, depth: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Relations within ``depth`` steps of ``target``, the counts in them, and which of those may move (all of
        whose relations are among them)."""
        if depth is None:
            rows = np.arange(self.matrix.shape[0])
        else:
            keys, rows = np.array([target]), np.array([], dtype=np.int64)
            for _ in range(depth):
                new_rows = np.setdiff1d(np.unique(self.by_key[:, keys].nonzero()[0]), rows)
                if not len(new_rows):
                    break
                rows = np.union1d(rows, new_rows)
                keys = np.unique(self.matrix[new_rows].nonzero()[1])
        sub = self.matrix[rows]
        used = np.unique(sub.nonzero()[1])
        inside = np.diff(sub[:, used].tocsc().indptr)  # relations of each count inside the neighbourhood
        return rows, used, inside == self.row_count[used]

    def partners(self, target: Key, width: float, published: np.ndarray, cost: np.ndarray) -> list[Key] | None:
        """The published counts to suppress so that ``target`` can move up by ``width``; None if none can."""
        t_index = self.index[target]
        # neighbourhoods first (own cycle, then other cycles), the whole system (where the city may move) last
        tries = [(depth, other) for other in (False, True) for depth in self.DEPTHS if depth is not None]
        for depth, other_cycles in tries + [(None, False), (None, True)]:
            moved = self._solve(t_index, depth, width, published, cost, other_cycles)
            if moved is not None:
                return [self.keys[i] for i in moved]
        return None

    def _solve(self, t_index: int, depth: int | None, width: float, published: np.ndarray, cost: np.ndarray,
               other_cycles: bool) -> np.ndarray | None:
        from scipy.optimize import linprog
        from scipy.sparse import hstack

        rows, used, interior = self._neighbourhood(t_index, depth)
        a = self.matrix[rows][:, used]
        value, free, pub = self.value[used], self.free[used], published[used]
        # displacement d = up - down of every count from its value; the relations hold for the values, so
        # a @ d == 0 keeps them; a count may move when all its relations are here, a published one only in the
        # target's cycle (unless other_cycles), every count stays >= 0 (except changes)
        movable = interior & (~pub | other_cycles | (self.cycle[used] == self.cycle[t_index]))
        if depth is not None:  # a published count of the city (shown beside every area) only in the whole system
            movable &= ~(pub & self.city[used])
        up_bounds = [(0, None if m else 0) for m in movable]
        down_bounds = [(0, (None if f else v) if m else 0) for m, f, v in zip(movable, free, value, strict=True)]
        t = int(np.searchsorted(used, t_index))
        up_bounds[t] = (width, None)
        down_bounds[t] = (0, 0)
        unit = np.where(pub, cost[used], 0.0)
        result = linprog(np.concatenate([unit, unit]), A_eq=hstack([a, -a]).tocsr(), b_eq=np.zeros(len(rows)),
                         bounds=up_bounds + down_bounds, method="highs")
        if result.status != 0:
            return None
        n = len(used)
        moved = (np.abs(result.x[:n]) + np.abs(result.x[n:]) > 1e-6) & pub
        return used[moved]


def suppress(cells: pl.DataFrame, hierarchy: Hierarchy, rule: DisclosureRule, catalogue: Catalogue,
             versions: Versions | None = None) -> pl.DataFrame:
    """``cells`` (marts.area_indicators) with ``suppression`` set: primary reasons, then secondary cells until
    the audit can recover no suppressed cell and narrow no small count below the protection interval."""
    flagged = _primary(cells, rule)
    values, shown = counts_of(cells, catalogue)
    relations = declared_relations(values, hierarchy, catalogue, versions)
    check_relations(relations, values)
    reasons = flagged["suppression"].to_list()
    cells_of: dict[Key, list[int]] = defaultdict(list)
    for row, cell_keys in enumerate(shown):
        for k in cell_keys:
            cells_of[k].append(row)
    for k, v in values.items():  # a small count is hidden in every cell that shows it
        if v is not None and 1 <= v < rule.min_count:
            for row in cells_of[k]:
                if reasons[row] is None:
                    reasons[row] = "small_count"
    protector = _Protector(values, relations, catalogue.change_measures)

    def is_published(k: Key) -> bool:
        return any(reasons[r] is None for r in cells_of[k])

    def cost(x: Key) -> float:
        # the cells moving a count would empty; counts of the city (shown beside every area as the city value)
        # only when nothing else will do
        city = untagged(x[1])[0] == CITY_ID
        return 1.0 + sum(1 for r in cells_of[x] if reasons[r] is None) + (1000.0 if city else 0.0)

    for _ in range(MAX_ROUNDS):  # each round protects every count the audit finds failing
        current = flagged.with_columns(pl.Series("suppression", reasons, dtype=pl.Utf8))
        result = audit(_emptied(current), hierarchy, catalogue, rule, relations)
        if result.passed:
            return current
        published = np.array([is_published(x) for x in protector.keys])
        costs = np.array([cost(x) for x in protector.keys])
        unprotectable, changed = [], False
        for k, width in sorted(result.failing.items()):
            small = values[k] is not None and 1 <= values[k] < rule.min_count
            need = rule.protection if width > 0.5 or small else 1
            partners = protector.partners(k, float(need), published, costs)
            if partners is None:
                unprotectable.append(k)
                continue
            for partner in partners:
                for row in cells_of[partner]:
                    if reasons[row] is None:
                        reasons[row] = "secondary"
                        changed = True
                        for x in shown[row]:
                            i = protector.index[x]
                            published[i], costs[i] = is_published(x), cost(x)
        if not changed:
            raise RuntimeError(f"disclosure control: no further suppression protects {_named(unprotectable)}; check "
                               "the declared relations (indicator catalogue, area hierarchy)")
    raise RuntimeError(f"disclosure control: secondary suppression did not converge in {MAX_ROUNDS} rounds; still "
                       f"failing: {_named(sorted(result.failing))}")


def _named(keys: Sequence[Key]) -> str:
    """Counts by name (measure, area, cycle: no value), the first five."""
    named = "; ".join(f"{k[3]} of {k[1]} {k[2]} in cycle {k[0]}" for k in keys[:5])
    return f"{len(keys)} count(s) ({named}{' ...' if len(keys) > 5 else ''})"


def apply(cells: pl.DataFrame, hierarchy: Hierarchy, rule: DisclosureRule, catalogue: Catalogue,
          versions: Versions | None = None) -> pl.DataFrame:
    """The published form of ``cells``: suppressed cells keep their row, with their numbers emptied (and the
    city value of an indicator whose city cell is suppressed)."""
    return _emptied(suppress(cells, hierarchy, rule, catalogue, versions))
