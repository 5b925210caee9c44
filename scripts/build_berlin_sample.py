"""Build the Berlin sample city's data files from the shared reference (issue 11, part 4).

Reads (the shared folder is expected beside the project: ``../shared``; or give ``--shared``, or set
``SOCIAL_MONITOR_SHARED_DIR``):
  reference/berlin.md                              the Bezirk names (key: name)
  validation/berlin-mss/mss_berlin_2013_2021.csv   PLR keys, names, residents, S1-S4 and D1-D4 per MSS edition

Writes (into config/berlin/, or ``--city``):
  geography/bezirke.csv, prognoseraeume.csv, bezirksregionen.csv, planungsraeume.csv
      both LOR versions; the hierarchy from the 8-digit keys (Bezirk = digits 1-2, Prognoseraum 1-4,
      Bezirksregion 1-6); names of Prognoseräume and Bezirksregionen are not published in shared/: the key,
      marked assumed
  geography/conversion.csv
      the Planungsräume of the LOR until 2019 onto those from 2020 (see ``conversion_rows``)
  sample/calibration.csv
      per report cycle and Planungsraum: residents and the status indicators S1-S4 of the MSS table (in %; S2
      empty from MSS 2019 on, as published; every S empty where the MSS publishes none: an invalid area), and
      a base cycle two years before the first edition for the dynamics (see ``base_cycle_rows``)

Report cycles: a report cycle's reference date is 31 December of its year; the MSS status date is 31 December
of the year before the edition, so MSS edition E is report cycle E - 1 (2013 -> 2012 ... 2021 -> 2020). The
MSS 2021 (status 31.12.2020) is published on the LOR of 2021, so the 542 Planungsräume are valid from report
cycle 2020 and the 447 until report cycle 2019.

Base cycle: MSS 2013's dynamics D1-D4 are the change of S1-S4 over the two years before its status date, so
report cycle 2010 (31.12.2010, on the LOR until 2020) gets S = S(MSS 2013) - D(MSS 2013) where both are
published, and the residents of report cycle 2012 (the MSS publishes none for 2010): marked ``assumed`` in the
column ``value_status``; the rows of the editions are ``published``.

Deterministic: the same inputs give the same files byte for byte. Run: ``.venv/bin/python
scripts/build_berlin_sample.py`` (then ``git diff config/berlin`` shows nothing when nothing changed).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from social_monitor.settings import shared_candidates

PROJECT_DIR = Path(__file__).resolve().parent.parent
MSS_RELATIVE = Path("validation") / "berlin-mss" / "mss_berlin_2013_2021.csv"
BERLIN_MD_RELATIVE = Path("reference") / "berlin.md"

OLD_VERSION, NEW_VERSION = "447", "542"  # the MSS table's lor_vintage
LAST_OLD_CYCLE = 2019  # the last report cycle on the LOR until 2020 (MSS 2019 = 31.12.2018; 31.12.2019 still old)
FIRST_NEW_CYCLE = 2020  # MSS 2021 = status 31.12.2020, published on the LOR of 2021
WEIGHT_PLACES = Decimal("0.000001")
STATUS = ("S1", "S2", "S3", "S4")  # the MSS status indicators, in %
DYNAMICS = {"S1": "D1", "S2": "D2", "S3": "D3", "S4": "D4"}  # the change of each over two years, in points
BASE_CYCLE_YEARS = 2  # the MSS dynamics span two years: the base cycle is this many years before the first
CALIBRATION_HEADER = ["report_cycle", "mss_edition", "lor_version", "plr_id", "plr_name", "residents",
                      "s1_unemployed", "s2_long_term_unemployed", "s3_transfer_not_unemployed", "s4_sgb2_age_0_14",
                      "value_status"]

# Words that say where in a place an area lies, not which place: they do not link an old name to a new one.
GENERIC_WORDS = {
    "nord", "süd", "ost", "west", "mitte", "zentrum", "i", "ii", "am", "an", "im", "in", "der", "die", "das",
    "den", "dem", "und", "straße", "strasse", "platz", "park", "weg", "allee", "alt", "neu", "siedlung",
    "gewerbegebiet", "entwicklungsgebiet", "bahnhof", "viertel", "kiez", "wohngebiet", "dorf",
}


def report_cycle(edition: int) -> int:
    """The report cycle (year of the reference date 31 December) of an MSS edition."""
    return edition - 1


def shared_dir(given: str | None) -> Path:
    candidates = [Path(given)] if given else []
    candidates += shared_candidates()
    for candidate in candidates:
        if (candidate / MSS_RELATIVE).is_file() and (candidate / BERLIN_MD_RELATIVE).is_file():
            return candidate
    raise SystemExit(f"no shared folder with {MSS_RELATIVE} and {BERLIN_MD_RELATIVE} in "
                     f"{', '.join(str(c) for c in candidates)}: expected ../shared beside the project, "
                     "or give --shared / SOCIAL_MONITOR_SHARED_DIR")


def bezirk_names(berlin_md: Path) -> dict[str, str]:
    text = " ".join(berlin_md.read_text(encoding="utf-8").split())
    start = text.index("Bezirk names (key: name):") + len("Bezirk names (key: name):")
    block = text[start:text.index("Names of Prognoseräume", start)]  # "01 Mitte, 02 …, 12 Reinickendorf."
    names = {key: name.strip() for key, name in re.findall(r"(\d{2}) ([^,]+)", block.rstrip(". "))}
    if len(names) != 12:
        raise SystemExit(f"{berlin_md}: expected 12 Bezirk names, found {len(names)}")
    return names


def read_mss(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if not re.fullmatch(r"[0-9]{8}", row["plr_id"]):
            raise SystemExit(f"{path}: plr_id {row['plr_id']!r} is not 8 digits")
    return rows


def plr_by_version(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Planungsraum key -> name per LOR version; a key's name must be the same in every edition."""
    names: dict[str, dict[str, str]] = {OLD_VERSION: {}, NEW_VERSION: {}}
    for row in rows:
        known = names[row["lor_vintage"]].setdefault(row["plr_id"], row["plr_name"])
        if known != row["plr_name"]:
            raise SystemExit(f"PLR {row['plr_id']} has two names: {known!r}, {row['plr_name']!r}")
    return names


def validity(version: str) -> tuple[str, str]:
    return ("", str(LAST_OLD_CYCLE)) if version == OLD_VERSION else (str(FIRST_NEW_CYCLE), "")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def areas_files(names: dict[str, dict[str, str]], bezirke: dict[str, str], out: Path) -> None:
    write_csv(out / "bezirke.csv", ["area_id", "area_name", "name_status"],
              [[key, name, "published"] for key, name in sorted(bezirke.items())])
    for file, digits, parent_digits in (("prognoseraeume.csv", 4, 2), ("bezirksregionen.csv", 6, 4)):
        rows = []
        for version in (OLD_VERSION, NEW_VERSION):
            for key in sorted({plr[:digits] for plr in names[version]}):
                rows.append([key, key, key[:parent_digits], *validity(version), "assumed"])
        write_csv(out / file, ["area_id", "area_name", "parent_id", "valid_from", "valid_to", "name_status"], rows)
    rows = [[key, name, key[:6], *validity(version), "published"]
            for version in (OLD_VERSION, NEW_VERSION) for key, name in sorted(names[version].items())]
    write_csv(out / "planungsraeume.csv", ["area_id", "area_name", "parent_id", "valid_from", "valid_to",
                                           "name_status"], rows)


def words(name: str) -> set[str]:
    text = name.lower().replace("ß", "ss")
    return {word for word in re.split(r"[^a-zäöüé]+", text) if word} - {w.replace("ß", "ss") for w in GENERIC_WORDS}


def spread(old_id: str, targets: list[str], residents: dict[str, float], basis: str) -> list[list[object]]:
    """Weights by the targets' residents (MSS 2021), rounded to 6 places, summing to exactly 1; targets
    without residents get no share unless every target has none (then equal shares)."""
    populated = [t for t in targets if residents.get(t, 0) > 0] or targets
    total = sum(residents.get(t, 0) for t in populated)
    shares = {t: (Decimal(residents[t]) / Decimal(total) if total else Decimal(1) / len(populated))
              for t in populated}
    rounded = {t: share.quantize(WEIGHT_PLACES, rounding=ROUND_HALF_EVEN) for t, share in shares.items()}
    rounded = {t: w for t, w in rounded.items() if w > 0}
    largest = max(rounded, key=lambda t: (rounded[t], t))
    rounded[largest] += Decimal(1) - sum(rounded.values())
    return [[old_id, t, format(rounded[t].normalize(), "f"), "assumed", basis] for t in sorted(rounded)]


def conversion_rows(names: dict[str, dict[str, str]], residents_2021: dict[str, float],
                    residents_2019: dict[str, float]) -> list[list[object]]:
    """Every old Planungsraum onto the new ones.

    1. Same name in the same Bezirk (340 names, Schloßstraße twice): weight 1, published (the pairing is
       published by the name; Berlin's block-level conversion is not in shared/, boundaries may have moved).
    2. Every other old Planungsraum (assumed) is spread over new Planungsräume of its Bezirk that carry no old
       name: those that share a distinctive word of its name (Frohnau -> Frohnau West, Frohnau Ost); where
       none does, those in the Bezirksregionen the kept Planungsräume of its old Bezirksregion went to (the
       successor Bezirksregionen, found by step 1); where none is free there, in the successor Prognoseräume;
       else anywhere in its Bezirk. Weights: the targets' residents of MSS 2021.
    3. Every new Planungsraum with residents that no old one feeds gets one (``feed_unfed``).
    """
    old, new = names[OLD_VERSION], names[NEW_VERSION]
    new_by_name = defaultdict(list)
    for key, name in new.items():
        new_by_name[(key[:2], name)].append(key)
    old_by_name = defaultdict(list)
    for key, name in old.items():
        old_by_name[(key[:2], name)].append(key)
    rows: list[list[object]] = []
    matched_new = set()
    unmatched_old = []
    for key, name in sorted(old.items()):
        same = new_by_name.get((key[:2], name), [])
        if len(same) == 1 and len(old_by_name[(key[:2], name)]) == 1:
            rows.append([key, same[0], "1", "published", "same_name"])
            matched_new.add(same[0])
        else:
            unmatched_old.append(key)
    conversion: list[list[object]] = []
    free_new = defaultdict(list)
    for key in sorted(new):
        if key not in matched_new:
            free_new[key[:2]].append(key)
    # where the renamed-but-kept Planungsräume of an old Bezirksregion (Prognoseraum) went
    successors: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for digits in (6, 4):
            successors[row[0][:digits]].add(row[1][:digits])
    for key in unmatched_old:
        pool = free_new[key[:2]]
        if not pool:
            raise SystemExit(f"old PLR {key}: no new PLR without an old name in Bezirk {key[:2]}")
        linked = [target for target in pool if words(old[key]) & words(new[target])]
        if linked:
            rows_of_key = spread(key, linked, residents_2021, "shared_name_word_residents_2021")
        else:
            for digits, basis in ((6, "successor_bezirksregion_residents_2021"),
                                  (4, "successor_prognoseraum_residents_2021"),
                                  (2, "same_bezirk_residents_2021")):
                narrowed = [t for t in pool if digits == 2 or t[:digits] in successors[key[:digits]]]
                if narrowed:
                    rows_of_key = spread(key, narrowed, residents_2021, basis)
                    break
        conversion += rows_of_key
    rows += conversion
    rows = feed_unfed(rows, names, residents_2021, residents_2019)
    return sorted(rows, key=lambda row: (row[0], row[1]))


UNFED_BASES = ((6, "unfed_successor_bezirksregion_residents_2021"), (4, "unfed_successor_prognoseraum_residents_2021"),
               (2, "unfed_same_bezirk_residents_2021"))


def feed_unfed(rows: list[list[object]], names: dict[str, dict[str, str]], residents_2021: dict[str, float],
               residents_2019: dict[str, float]) -> list[list[object]]:
    """3. A new Planungsraum that steps 1-2 feed from no old one (a part cut from an old Planungsraum that kept
    its name elsewhere) would have no value for any cycle before the reform, so no change since 2018. It is fed
    (assumed) by the old Planungsraum, among those feeding its Bezirksregion (else Prognoseraum, else Bezirk), that
    lost the most residents: residents of MSS 2019 minus the MSS 2021 residents of the new areas it feeds
    (reduced by each area given to it, new areas in key order). That old Planungsraum's rows are spread again by
    the residents of MSS 2021 over its targets and the new one; all its rows are then assumed."""
    targets: dict[str, list[list[object]]] = defaultdict(list)
    for row in rows:
        targets[str(row[0])].append(row)
    fed = {str(row[1]) for row in rows}
    deficit = {old: residents_2019.get(old, 0) - sum(residents_2021.get(str(r[1]), 0) for r in group)
               for old, group in targets.items()}
    for new_id in sorted(set(names[NEW_VERSION]) - fed):
        if not residents_2021.get(new_id, 0):
            continue  # nobody lives there: no value to compare with, whatever feeds it
        candidates, basis = [], ""
        for digits, basis in UNFED_BASES:  # noqa: B007 - the basis of the level that found candidates
            candidates = sorted({old for old, group in targets.items()
                                 if any(str(r[1])[:digits] == new_id[:digits] for r in group)})
            if candidates:
                break
        if not candidates:
            raise SystemExit(f"new PLR {new_id}: no old PLR feeds its Bezirk")
        old = max(candidates, key=lambda key: (deficit[key], key))
        deficit[old] -= residents_2021[new_id]
        bases = {str(r[1]): str(r[4]) for r in targets[old]} | {new_id: basis}
        respread = spread(old, sorted(bases), residents_2021, "")
        targets[old] = [[o, n, w, "assumed", bases[str(n)]] for o, n, w, _, _ in respread]
    return [row for group in targets.values() for row in group]


def calibration_rows(rows: list[dict[str, str]]) -> list[list[object]]:
    """One row per MSS edition and Planungsraum (report cycle = edition - 1), then the base cycle's rows."""
    out = []
    for row in sorted(rows, key=lambda r: (int(r["edition"]), r["plr_id"])):
        residents = row["residents"].strip()
        residents = str(int(float(residents))) if residents else ""
        out.append([report_cycle(int(row["edition"])), row["edition"], row["lor_vintage"], row["plr_id"],
                    row["plr_name"], residents, *(row[s].strip() for s in STATUS), "published"])
    return base_cycle_rows(rows) + out


def base_cycle_rows(rows: list[dict[str, str]]) -> list[list[object]]:
    """The report cycle two years before the first edition's: S - D of the first edition where both are
    published (exact decimal arithmetic, so the file is the same on every machine), the first edition's
    residents; marked assumed (the MSS publishes no values for that date)."""
    first = min(int(row["edition"]) for row in rows)
    out = []
    for row in sorted((r for r in rows if int(r["edition"]) == first), key=lambda r: r["plr_id"]):
        residents = row["residents"].strip()
        residents = str(int(float(residents))) if residents else ""
        values = []
        for status in STATUS:
            s, d = row[status].strip(), row[DYNAMICS[status]].strip()
            if s and d:
                value = Decimal(s) - Decimal(d)
                if value < 0:
                    raise SystemExit(f"PLR {row['plr_id']}: {status} - {DYNAMICS[status]} of MSS {first} is "
                                     f"negative ({value})")
                values.append(format(value, "f"))
            else:
                values.append("")
        out.append([report_cycle(first) - BASE_CYCLE_YEARS, "", row["lor_vintage"], row["plr_id"], row["plr_name"],
                    residents, *values, "assumed"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", help="the shared folder (default ../shared beside the project)")
    parser.add_argument("--city", default=str(PROJECT_DIR / "config" / "berlin"), help="the city folder to write")
    args = parser.parse_args(argv)
    shared = shared_dir(args.shared)
    city = Path(args.city)
    mss = read_mss(shared / MSS_RELATIVE)
    names = plr_by_version(mss)
    areas_files(names, bezirk_names(shared / BERLIN_MD_RELATIVE), city / "geography")
    residents_2021 = {row["plr_id"]: float(row["residents"] or 0) for row in mss if row["lor_vintage"] == NEW_VERSION}
    last_old = max(int(row["edition"]) for row in mss if row["lor_vintage"] == OLD_VERSION)  # MSS 2019
    residents_2019 = {row["plr_id"]: float(row["residents"] or 0) for row in mss if int(row["edition"]) == last_old}
    write_csv(city / "geography" / "conversion.csv", ["old_area_id", "new_area_id", "weight", "weight_status",
                                                      "basis"], conversion_rows(names, residents_2021, residents_2019))
    write_csv(city / "sample" / "calibration.csv", CALIBRATION_HEADER, calibration_rows(mss))
    print(f"wrote {city}/geography/*.csv and {city}/sample/calibration.csv from {shared}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
