"""Pandas baseline: the indicator mart (marts.area_indicators) from the raw deliveries, as an analyst writes it.

    python benchmark/baselines/pandas_script.py --landing DIR --seeds DIR --cycles 2007 2012 --out FILE.parquet

--seeds is the dbt seeds folder (reference/*.csv, catalogue/indicator_catalogue.csv). Plain pandas (read_csv,
read_parquet, merge, groupby); no DuckDB, no orchestration, no validation, no project imports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SGB2_AGE_BOUND = 65
LEVELS = [  # area level -> column of the hierarchy holding its id
    ("unterbezirk", "unterbezirk_id"),
    ("statistischer_bezirk", "bezirk_id"),
    ("sozialraum", "sozialraum_id"),
    ("stadtbezirk", "stadtbezirk_id"),
    ("city", None),
]


def age_at(birth: pd.Series, on: pd.Timestamp) -> pd.Series:
    """Completed years of age on a date (the birthday counts from its day on)."""
    before_birthday = (on.month * 100 + on.day) < (birth.dt.month * 100 + birth.dt.day)
    return (on.year - birth.dt.year - before_birthday.astype("int64")).astype("int64")


def read_hierarchy(seeds: Path) -> pd.DataFrame:
    ref = seeds / "reference"
    unterbezirke = pd.read_csv(ref / "unterbezirke.csv", dtype=str,
                               usecols=["unterbezirk_id", "bezirk_id", "sozialraum_id"])
    bezirke = pd.read_csv(ref / "statistische_bezirke.csv", dtype=str, usecols=["bezirk_id", "stadtbezirk_id"])
    stadtbezirke = pd.read_csv(ref / "stadtbezirke.csv", dtype=str, usecols=["stadtbezirk_id"])
    sozialraeume = pd.read_csv(ref / "sozialraeume.csv", dtype=str, usecols=["sozialraum_id"])
    return (unterbezirke.merge(bezirke, on="bezirk_id")
            .merge(stadtbezirke, on="stadtbezirk_id")
            .merge(sozialraeume, on="sozialraum_id"))


def main_residents(landing: Path, cycle: int) -> pd.DataFrame:
    """The register's main residents (Wohnungsstatus H) of a cycle."""
    register = pd.read_csv(
        landing / f"bevoelkerung_{cycle}-12-31.csv", sep=";", encoding="cp1252",
        usecols=["Personen_ID", "Geburtsdatum", "Staatsangehörigkeit", "Wohnungsstatus", "Zuzugsdatum",
                 "Unterbezirk", "Staatsangehörigkeit_2", "Geburtsland", "Haushalts_ID"],
        dtype={"Personen_ID": str, "Staatsangehörigkeit": "category", "Wohnungsstatus": "category",
               "Unterbezirk": str, "Staatsangehörigkeit_2": "category", "Geburtsland": "category",
               "Haushalts_ID": str},
        parse_dates=["Geburtsdatum", "Zuzugsdatum"], date_format="%d.%m.%Y",
    )
    return register[register["Wohnungsstatus"] == "H"]  # main residence only


def resident_counts(register: pd.DataFrame, cycle: int, previous: pd.DataFrame | None,
                    previous_cycle: int | None) -> pd.DataFrame:
    """Counts per Unterbezirk of a cycle's main residents; moves against the previous cycle's (if any)."""
    ref = pd.Timestamp(cycle, 12, 31)
    age = age_at(register["Geburtsdatum"], ref)
    flags = pd.DataFrame({
        "unterbezirk_id": register["Unterbezirk"],
        "residents": 1,
        "residents_age_0_14": age < 15,
        "residents_age_15_64": age.between(15, 64),
        "residents_age_65_plus": age >= 65,
        "residents_age_0_17": age < 18,
        "residents_below_sgb2_age_bound": age < SGB2_AGE_BOUND,
        "residents_non_german": register["Staatsangehörigkeit"] != "deutsch",
        # the three criteria of config/dortmund/city.yml: non-German, a second nationality other than
        # German, born abroad
        "residents_migration_background": (register["Staatsangehörigkeit"] != "deutsch")
        | (register["Staatsangehörigkeit_2"].notna() & (register["Staatsangehörigkeit_2"] != "deutsch"))
        | (register["Geburtsland"] == "Ausland"),
    })
    counts = flags.groupby("unterbezirk_id", observed=True).sum().astype("int64")

    # households, each in its oldest member's Unterbezirk
    members = pd.DataFrame({"household": register["Haushalts_ID"], "unterbezirk_id": register["Unterbezirk"],
                            "age": age, "adult": age >= 18, "child": age < 18})
    oldest = members.sort_values("age", ascending=False, kind="stable").drop_duplicates("household")
    per_household = members.groupby("household").agg(adults=("adult", "sum"), children=("child", "sum"))
    per_household = per_household.join(oldest.set_index("household")["unterbezirk_id"])
    households = pd.DataFrame({
        "unterbezirk_id": per_household["unterbezirk_id"],
        "households": 1,
        "households_with_children": per_household["children"] > 0,
        "households_single_parent": (per_household["children"] > 0) & (per_household["adults"] == 1),
    }).groupby("unterbezirk_id").sum().astype("int64")
    counts = counts.join(households, how="outer")

    if previous is not None:
        # moves by person key and Unterbezirk; a birth (move-in date = birth date) is no move
        now = pd.MultiIndex.from_arrays([register["Personen_ID"], register["Unterbezirk"]])
        then = pd.MultiIndex.from_arrays([previous["Personen_ID"], previous["Unterbezirk"]])
        moved_in = ((register["Zuzugsdatum"] > pd.Timestamp(previous_cycle, 12, 31))
                    & (register["Zuzugsdatum"] != register["Geburtsdatum"]) & ~now.isin(then))
        moves_in = register.loc[moved_in, "Unterbezirk"].value_counts().rename("moves_in")
        moves_out = previous.loc[~then.isin(now), "Unterbezirk"].value_counts().rename("moves_out")
        counts = counts.join(moves_in, how="outer").join(moves_out, how="outer")
        counts[["moves_in", "moves_out"]] = counts[["moves_in", "moves_out"]].fillna(0)
    counts = counts.fillna(0).astype("int64")
    counts.index = counts.index.astype(str)
    return counts


def recipient_counts(landing: Path, cycle: int) -> pd.DataFrame:
    ref = pd.Timestamp(cycle, 12, 31)
    sgb2 = pd.read_parquet(landing / f"sgb2_{cycle}-12-31.parquet", columns=["Personen_ID", "Alter", "Unterbezirk"])
    sgb2 = pd.DataFrame({"person_key": sgb2["Personen_ID"], "unterbezirk_id": sgb2["Unterbezirk"],
                         "age_years": sgb2["Alter"].astype("int64"), "scheme": "sgb2", "priority": 1})

    sgb12 = pd.read_csv(landing / f"sgb12_{cycle}-12-31.csv", sep=";", dtype=str,
                        usecols=["Personen_ID", "Leistungsart", "Geburtsdatum", "Unterbezirk"])
    sgb12 = pd.DataFrame({
        "person_key": sgb12["Personen_ID"], "unterbezirk_id": sgb12["Unterbezirk"],
        "age_years": age_at(pd.to_datetime(sgb12["Geburtsdatum"], format="%d.%m.%Y"), ref),
        "scheme": np.where(sgb12["Leistungsart"] == "HLU", "sgb12_hlu", "sgb12_gsi"), "priority": 2,
    })

    asylblg = pd.read_csv(landing / f"asylblg_{cycle}-12-31.csv", sep=";", dtype=str,
                          usecols=["Personen_ID", "Geburtsdatum", "Unterbezirk"])
    asylblg = pd.DataFrame({
        "person_key": asylblg["Personen_ID"], "unterbezirk_id": asylblg["Unterbezirk"],
        "age_years": age_at(pd.to_datetime(asylblg["Geburtsdatum"], format="%d.%m.%Y"), ref),
        "scheme": "asylblg", "priority": 3,
    })

    # a person in several schemes is counted once: SGB II before SGB XII before AsylbLG
    recipients = (pd.concat([sgb2, sgb12, asylblg], ignore_index=True)
                  .sort_values("priority", kind="stable")
                  .drop_duplicates("person_key", keep="first"))
    age, scheme = recipients["age_years"], recipients["scheme"]
    flags = pd.DataFrame({
        "unterbezirk_id": recipients["unterbezirk_id"],
        "recipients_transfer": 1,
        "recipients_transfer_age_0_14": age < 15,
        "recipients_transfer_age_65_plus": age >= 65,
        "recipients_sgb2": scheme == "sgb2",
        "recipients_sgb12_hlu": scheme == "sgb12_hlu",
        "recipients_sgb12_gsi": scheme == "sgb12_gsi",
        "recipients_asylblg": scheme == "asylblg",
    })
    return flags.groupby("unterbezirk_id").sum().astype("int64")


def area_indicators(landing: Path, seeds: Path, cycles: list[int]) -> pd.DataFrame:
    hierarchy = read_hierarchy(seeds)
    catalogue = pd.read_csv(seeds / "catalogue" / "indicator_catalogue.csv",
                            usecols=["indicator_id", "numerator_measure", "denominator_measure", "scale"])

    # counts per cycle and Unterbezirk: every Unterbezirk of the reference, zero where empty
    per_cycle = []
    previous, previous_cycle = None, None
    for cycle in cycles:
        register = main_residents(landing, cycle)
        counts = (hierarchy[["unterbezirk_id"]]
                  .merge(resident_counts(register, cycle, previous, previous_cycle), left_on="unterbezirk_id",
                         right_index=True, how="left")
                  .merge(recipient_counts(landing, cycle), left_on="unterbezirk_id", right_index=True, how="left"))
        measure_columns = [c for c in counts.columns if c != "unterbezirk_id"]
        counts[measure_columns] = counts[measure_columns].fillna(0).astype("int64")
        counts.insert(0, "report_cycle", cycle)
        per_cycle.append(counts)
        previous, previous_cycle = register[["Personen_ID", "Unterbezirk"]], cycle
    ub_counts = pd.concat(per_cycle, ignore_index=True)  # the first cycle has no moves (NaN: no measure)
    measure_columns = [c for c in ub_counts.columns if c not in ("report_cycle", "unterbezirk_id")]
    ub_counts[measure_columns] = ub_counts[measure_columns].astype("Int64")
    ub_counts = ub_counts.merge(hierarchy, on="unterbezirk_id")

    # added up to every level
    levels = []
    for level, key in LEVELS:
        if key is None:
            summed = ub_counts.groupby("report_cycle", as_index=False)[measure_columns].sum(min_count=1)
            summed.insert(1, "area_id", "city")
        else:
            summed = (ub_counts.groupby(["report_cycle", key], as_index=False)[measure_columns].sum(min_count=1)
                      .rename(columns={key: "area_id"}))
        summed.insert(1, "area_level", level)
        levels.append(summed)
    wide = pd.concat(levels, ignore_index=True).sort_values(["area_level", "area_id", "report_cycle"])

    # residents of the previous cycle among the cycles processed
    wide["residents_previous_cycle"] = wide.groupby(["area_level", "area_id"])["residents"].shift(1).astype("Int64")
    wide["residents_change"] = wide["residents"] - wide["residents_previous_cycle"]

    measures = (wide.melt(id_vars=["report_cycle", "area_level", "area_id"], var_name="measure_id",
                          value_name="measure_value")
                .dropna(subset=["measure_value"]))
    measures["measure_value"] = measures["measure_value"].astype("int64")

    # every indicator of the catalogue: value = scale * numerator / denominator
    keys = ["report_cycle", "area_level", "area_id"]
    result = (catalogue
              .merge(measures, left_on="numerator_measure", right_on="measure_id")
              .rename(columns={"measure_value": "numerator"})
              .drop(columns="measure_id")
              .merge(measures.rename(columns={"measure_id": "denominator_measure", "measure_value": "denominator"}),
                     on=keys + ["denominator_measure"], how="left"))
    has_denominator = result["denominator_measure"].notna()
    result = result[~has_denominator | result["denominator"].notna()].copy()
    has_denominator = result["denominator_measure"].notna()
    result["denominator"] = result["denominator"].astype("Int64")
    numerator = result["numerator"].astype("float64")
    denominator = result["denominator"].astype("float64")
    rate = (result["scale"] * result["numerator"]).astype("float64") / denominator.where(denominator > 0)
    result["value"] = np.where(has_denominator, rate, numerator)

    city = result.loc[result["area_level"] == "city", ["report_cycle", "indicator_id", "value"]]
    result = result.merge(city.rename(columns={"value": "city_value"}), on=["report_cycle", "indicator_id"], how="left")

    result = result[["report_cycle", "area_level", "area_id", "indicator_id", "numerator", "denominator", "value",
                     "city_value"]].sort_values(["report_cycle", "area_level", "area_id", "indicator_id"])
    return result.astype({"report_cycle": "int32", "area_level": str, "area_id": str, "indicator_id": str,
                          "numerator": "int64", "denominator": "Int64", "value": "float64",
                          "city_value": "float64"}).reset_index(drop=True)


OUT_OF_MEMORY_EXIT = 3


def _out_of_memory(what: str) -> int:
    print(f"pandas_script: out of memory ({what}); the deliveries do not fit in memory for pandas", file=sys.stderr)
    return OUT_OF_MEMORY_EXIT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True, help="folder with the delivered files")
    parser.add_argument("--seeds", type=Path, required=True, help="dbt_project/seeds (reference/, catalogue/)")
    parser.add_argument("--cycles", type=int, nargs="+", required=True, help="report cycles, e.g. 2007 2012")
    parser.add_argument("--out", type=Path, required=True, help="output Parquet file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        result = area_indicators(args.landing, args.seeds, sorted(set(args.cycles)))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result.to_parquet(args.out, index=False)
    except MemoryError:
        return _out_of_memory("MemoryError")
    except pd.errors.ParserError as error:  # pandas' C parser reports a failed allocation as a ParserError
        if "out of memory" not in str(error):
            raise
        return _out_of_memory("ParserError: out of memory")
    print(f"pandas_script: {len(result)} rows -> {args.out} in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MemoryError:
        sys.exit(_out_of_memory("MemoryError"))
