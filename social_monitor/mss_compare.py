"""Berlin's MSS reproduced from person-level data, compared with what Berlin published (issue 12, part 5).

``social-monitor mss-compare`` reads the warehouse of a Berlin run (the marts ``area_indicators`` and
``area_indicators_harmonised``: S1-S4 and D1-D4 computed in dbt from the generated deliveries), classifies
its Planungsräume with the city's ``berlin_mss`` method (city.yml) through the engine, and compares the
classes with the published ones of ``mss_berlin_2013_2021.csv`` (../shared/validation/berlin-mss/): MSS
edition E is report cycle E - 1; only the area-editions the MSS lists as valid (2,277) are compared.

At a reduced scale the generator scales every area's residents, so the method's ``min_population`` (300
residents) is scaled alike (``scale`` × 300: the published residents have no Planungsraum between 285 and
363, so the valid set is the same at every scale from 0.05).

Each disagreement is listed with the published index (the engine on the published S1-S4, D1-D4 of the valid
areas that our classification includes too: over all of them it reproduces every published class), its
distance to the nearest class border and a bound on how far rounding to whole persons can move the index
(``rounding_bound``). Why the bound holds: the generator plans an area's count as the published rate × its
planned denominator d, rounded to a whole person, so our rate differs from the published one by at most e =
100 × 0.5 / d percentage points (a change: the sum of both cycles' e). A z-score z = (x - m) / s over the
valid areas then moves by at most (e + mean(e)) / (s - rms(e)) + |z| × rms(e) / (s - rms(e)) (the mean moves
by at most mean(e), the population SD by at most rms(e)); the index is the sum of the z-scores standardised
again, so the same bound applied to the sums bounds the index. A disagreement whose published index lies
closer to a border than that bound is explained by rounding.

Plain Python (polars, DuckDB, the classification engine); no Dagster.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from social_monitor.classification.engine import Classification, classify
from social_monitor.classification.methods import Method
from social_monitor.classification.warehouse import indicator_table, restated_values
from social_monitor.settings import PROJECT_DIR, load_settings, shared_candidates

DESCRIPTION = ("Compare the berlin_mss classification of a Berlin run's warehouse with Berlin's published MSS "
               "classes (2013-2021) and write the agreement table (docs/berlin-mss-agreement.md).")
METHOD_ID = "berlin_mss"
MSS_RELATIVE = Path("validation") / "berlin-mss" / "mss_berlin_2013_2021.csv"
DOC_PATH = PROJECT_DIR / "docs" / "berlin-mss-agreement.md"
# our indicator per published column (catalogue ids; the method in city.yml names the same)
STATUS = {"S1": "unemployment_rate", "S2": "long_term_unemployment_rate", "S3": "transfer_rate_not_unemployed",
          "S4": "sgb2_rate_age_0_14"}
DYNAMICS = {"D1": "unemployment_rate_change", "D2": "long_term_unemployment_rate_change",
            "D3": "transfer_rate_not_unemployed_change", "D4": "sgb2_rate_age_0_14_change"}
SOURCE_OF_CHANGE = dict(zip(DYNAMICS.values(), STATUS.values(), strict=True))
DIMENSION_COLUMNS = {"status": ("status_class", STATUS), "dynamics": ("dynamik_class", DYNAMICS)}
HALF_PERSON_POINTS = 50.0  # 100 (a rate in %) × half a person
KEY = ["report_cycle", "area_id"]
# why a class differs: rounding explains it (ROUNDING, ZERO_DENOMINATOR); the others do not
ROUNDING = "Rundung"
ZERO_DENOMINATOR = "Rundung: Nenner 0 Personen"  # the scaled denominator rounds to nobody: no rate, not classified
NOT_CLASSIFIED = "nicht klassifiziert"
CONVERSION = "Umschlüsselung 2021 (angenommen)"  # the change since 2018 rests on the assumed conversion.csv
REVISED = "veröffentlichtes D ≠ Differenz der veröffentlichten S"  # Berlin's D is not S(E) - S(E - 2)
UNEXPLAINED = "ungeklärt"
EXPLAINED = (ROUNDING, ZERO_DENOMINATOR)


def shared_mss(given: Path | None = None) -> Path:
    """The MSS table: ``given``, else $SOCIAL_MONITOR_SHARED_DIR, ../shared beside the project, /work/shared."""
    candidates = [Path(given)] if given else []
    candidates += [shared / MSS_RELATIVE for shared in shared_candidates()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no MSS table at {', '.join(map(str, candidates))}: give --mss or set "
                            "SOCIAL_MONITOR_SHARED_DIR")


def read_mss(path: Path) -> pl.DataFrame:
    """The published table, one row per edition and Planungsraum, with our report cycle (edition - 1)."""
    frame = pl.read_csv(path, schema_overrides={"plr_id": pl.Utf8})
    return frame.with_columns((pl.col("edition") - 1).cast(pl.Int32).alias("report_cycle"),
                              pl.col("plr_id").alias("area_id"))


def published_classification(mss: pl.DataFrame, method: Method) -> Classification:
    """The engine on the published indicators (valid rows only), with our indicator ids: it reproduces every
    published class (tests/test_berlin_mss.py), so its index is the published index of every edition."""
    columns = {**STATUS, **DYNAMICS}
    long = mss.filter(pl.col("valid")).unpivot(index=["report_cycle", "area_id", "residents"],
                                               on=list(columns), variable_name="column", value_name="value")
    table = long.filter(pl.col("value").is_not_null()).select(
        "report_cycle", "area_id", pl.col("column").replace_strict(columns).alias("indicator_id"),
        pl.col("value").cast(pl.Float64), pl.col("residents").cast(pl.Float64).alias("population"))
    # the published values are what they are: no population rule, no outliers to name, no restated base
    reference = dataclasses.replace(method, min_population=0, exclude_areas=(),
                                    dimensions=tuple(dataclasses.replace(d, indicators=tuple(
                                        dataclasses.replace(i, first_cycle=None, last_cycle=None)
                                        for i in d.indicators)) for d in method.dimensions))
    return classify(table, reference)


def our_classification(con: duckdb.DuckDBPyConnection, method: Method) -> Classification:
    """The method on the warehouse's marts, as the pipeline's classification asset runs it."""
    return classify(indicator_table(con, method), method, restated=restated_values(con, method))


def rounding_errors(con: duckdb.DuckDBPyConnection, level: str) -> pl.DataFrame:
    """Per report cycle, area and indicator of the method: the largest rounding error of our value in points
    (status: 50 / denominator; a change: the sum over both cycles, the previous one on the same version)."""
    rates = con.execute(
        "select report_cycle, area_id, indicator_id, denominator from marts.area_indicators "
        f"where area_level = ? and indicator_id in ({', '.join('?' for _ in STATUS)})",
        [level, *STATUS.values()]).pl()
    harmonised = con.execute(
        "select report_cycle, area_id, indicator_id, denominator from marts.area_indicators_harmonised "
        f"where area_level = ? and indicator_id in ({', '.join('?' for _ in STATUS)})",
        [level, *STATUS.values()]).pl()
    cycles = con.execute("select report_cycle, previous_report_cycle from intermediate.int_report_cycles").pl()
    version = con.execute("select max(geography_version) from marts.area_indicators_harmonised").fetchone()[0]

    def error(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.when(pl.col("denominator") > 0).then(HALF_PERSON_POINTS / pl.col("denominator"))
            .otherwise(float("inf")).alias("error")).drop("denominator")

    status = error(rates)
    previous = pl.concat([status.filter(pl.col("report_cycle") < version).with_columns(pl.lit(False).alias("on")),
                          error(harmonised).with_columns(pl.lit(True).alias("on"))])
    changes = (status.join(cycles.rename({"previous_report_cycle": "previous"}), on="report_cycle")
               .with_columns((pl.col("report_cycle") >= version).alias("on"))
               .join(previous.rename({"report_cycle": "previous", "error": "previous_error"}),
                     on=["previous", "area_id", "indicator_id", "on"], how="inner")
               .select("report_cycle", "area_id",
                       pl.col("indicator_id").replace_strict({v: k for k, v in SOURCE_OF_CHANGE.items()}),
                       (pl.col("error") + pl.col("previous_error")).alias("error")))
    return pl.concat([status, changes]).with_columns(pl.col("report_cycle").cast(pl.Int32))


def _shift_bound(values: pl.Series, errors: pl.Series, ddof: int = 0) -> pl.Series:
    """Per area: how far the z-score of ``values`` can move when each value moves by at most its error."""
    n = len(values)
    mean_error = float(errors.mean())
    rms_error = math.sqrt(float((errors ** 2).sum()) / max(n - ddof, 1))
    sd = float(values.std(ddof=ddof))
    if not sd > rms_error:
        return pl.Series([float("inf")] * n)
    z = (values - values.mean()) / sd
    return (errors + mean_error) / (sd - rms_error) + z.abs() * rms_error / (sd - rms_error)


def rounding_bounds(reference: Classification, errors: pl.DataFrame, dimension: str) -> pl.DataFrame:
    """Per cycle and valid area: the bound on the index shift of ``dimension`` (see the module's docstring)."""
    spec = next(d for d in reference.method.dimensions if d.id == dimension)
    inputs = reference.indicators.filter(pl.col("dimension_id") == dimension).join(
        errors, on=[*KEY, "indicator_id"], how="left").with_columns(pl.col("error").fill_null(float("inf")))
    frames = []
    for cycle in sorted(inputs["report_cycle"].unique().to_list()):
        rows = inputs.filter(pl.col("report_cycle") == cycle)
        per_indicator = []
        for indicator in sorted(rows["indicator_id"].unique().to_list()):
            one = rows.filter(pl.col("indicator_id") == indicator).sort("area_id")
            per_indicator.append(one.select("area_id", _shift_bound(one["value"], one["error"], spec.ddof)
                                            .alias(indicator)))
        combined = per_indicator[0]
        for frame in per_indicator[1:]:
            combined = combined.join(frame, on="area_id", how="inner")
        sums = reference.dimensions.filter((pl.col("report_cycle") == cycle) & (pl.col("dimension_id") == dimension)
                                           ).sort("area_id").join(combined, on="area_id", how="inner")
        shifts = sums.select(pl.sum_horizontal([c for c in combined.columns if c != "area_id"])).to_series()
        frames.append(sums.select(pl.lit(cycle, dtype=pl.Int32).alias("report_cycle"), "area_id").with_columns(
            _shift_bound(sums["raw_index"], shifts, spec.ddof).alias("rounding_bound")))
    return pl.concat(frames)


def differences_classes(mss: pl.DataFrame, method: Method, included: pl.DataFrame) -> pl.DataFrame:
    """The dynamics class the published data would give if each D were the difference of the published S of
    this and the previous edition (same Planungsraum key; the first edition keeps its D, the base cycle is
    S - D): where it differs from the published class, Berlin's D is not that difference (revised data)."""
    editions = sorted(mss["edition"].unique().to_list())
    status = mss.select("edition", "area_id", *STATUS)
    frames = [mss.filter(pl.col("edition") == editions[0])]
    for previous, edition in zip(editions, editions[1:], strict=False):
        now = mss.filter(pl.col("edition") == edition)
        before = status.filter(pl.col("edition") == previous).drop("edition")
        if now["lor_vintage"][0] != mss.filter(pl.col("edition") == previous)["lor_vintage"][0]:
            continue  # a new geography: no difference by key
        joined = now.join(before, on="area_id", how="left", suffix="_before")
        frames.append(joined.with_columns(
            *[(pl.col(s) - pl.col(f"{s}_before")).alias(d) for s, d in zip(STATUS, DYNAMICS, strict=True)]
        ).select(mss.columns))
    rebuilt = pl.concat(frames).join(included, on=KEY, how="semi")
    result = published_classification(rebuilt, method)
    return result.dimensions.filter(pl.col("dimension_id") == "dynamics").select(
        *KEY, pl.col("class_code").alias("difference_class"))


@dataclass(frozen=True)
class Comparison:
    per_edition: pl.DataFrame  # edition, report_cycle, valid, classified, status_agree, dynamics_agree, ...
    disagreements: pl.DataFrame  # one row per disagreeing area-edition and dimension
    notes: tuple[str, ...]

    @property
    def status_agreement(self) -> float:
        return float(self.per_edition["status_agree"].sum() / self.per_edition["valid"].sum())

    @property
    def dynamics_agreement(self) -> float:
        return float(self.per_edition["dynamics_agree"].sum() / self.per_edition["valid"].sum())

    def unexplained(self, dimension: str = "status") -> pl.DataFrame:
        """Disagreements that rounding to whole persons does not explain."""
        return self.disagreements.filter((pl.col("dimension_id") == dimension) & ~pl.col("reason").is_in(EXPLAINED))


def compare(con: duckdb.DuckDBPyConnection, mss: pl.DataFrame, method: Method, scale: float = 1.0) -> Comparison:
    """Our classes of the warehouse beside the published ones, per edition, with every disagreement."""
    method = dataclasses.replace(method, min_population=method.min_population * scale)
    ours = our_classification(con, method)
    # the published values over the valid areas we classify too (at full scale: all of them), so that both
    # indices standardise over the same areas and the rounding bound compares like with like
    included = ours.areas.filter("is_included").select(*KEY)
    reference = published_classification(mss.join(included, on=KEY, how="semi"), method)
    errors = rounding_errors(con, method.area_level or "planungsraum")
    valid = mss.filter(pl.col("valid")).select("edition", *KEY, "plr_name", *[c for c, _ in
                                                                             DIMENSION_COLUMNS.values()])
    ours_wide = ours.wide().select(*KEY, "is_included", "exclusion_reason",
                                   pl.col("status_class").alias("our_status"),
                                   pl.col("dynamics_class").alias("our_dynamics"),
                                   pl.col("status_index").alias("our_status_index"),
                                   pl.col("dynamics_index").alias("our_dynamics_index"))
    both = valid.join(ours_wide, on=KEY, how="left").with_columns(pl.col("is_included").fill_null(False))
    per_edition = both.group_by("edition", "report_cycle").agg(
        pl.len().alias("valid"), pl.col("is_included").sum().alias("classified"),
        (pl.col("our_status") == pl.col("status_class")).fill_null(False).sum().alias("status_agree"),
        (pl.col("our_dynamics") == pl.col("dynamik_class")).fill_null(False).sum().alias("dynamics_agree"),
    ).sort("edition")

    rows = []
    for dimension, (published_column, _) in DIMENSION_COLUMNS.items():
        ours_column = "our_status" if dimension == "status" else "our_dynamics"
        index = reference.dimensions.filter(pl.col("dimension_id") == dimension).select(
            *KEY, pl.col("index_value").alias("published_index"), "distance_to_border")
        bounds = rounding_bounds(reference, errors, dimension)
        differ = both.filter(pl.col(ours_column).is_null() | (pl.col(ours_column) != pl.col(published_column)))
        differ = differ.join(index, on=KEY, how="left").join(bounds, on=KEY, how="left")
        rows.append(differ.select(
            "edition", *KEY, "plr_name", pl.lit(dimension).alias("dimension_id"),
            pl.col(published_column).alias("published_class"), pl.col(ours_column).alias("our_class"),
            "published_index",
            pl.col("our_status_index" if dimension == "status" else "our_dynamics_index").alias("our_index"),
            "distance_to_border", "rounding_bound", "exclusion_reason"))
    zero = errors.filter(pl.col("error").is_infinite()).select(*KEY).unique().with_columns(
        pl.lit(True).alias("zero_denominator"))
    differences = differences_classes(mss, method, included)
    disagreements = (pl.concat(rows).join(zero, on=KEY, how="left").join(differences, on=KEY, how="left")
                     .with_columns(
        pl.when(pl.col("our_class").is_null() & pl.col("zero_denominator").fill_null(False)
                & pl.col("exclusion_reason").str.starts_with("fehlender Wert").fill_null(False))
        .then(pl.lit(ZERO_DENOMINATOR))
        .when(pl.col("our_class").is_null()).then(pl.lit(NOT_CLASSIFIED))
        # a dynamics class the published data itself would not give as a difference of its S, or one that rests
        # on the assumed conversion, is said so first (the rounding bound of a change is wide: D varies little)
        .when((pl.col("dimension_id") == "dynamics") & (pl.col("difference_class") != pl.col("published_class")))
        .then(pl.lit(REVISED))
        .when((pl.col("dimension_id") == "dynamics") & (pl.col("edition") == mss["edition"].max()))
        .then(pl.lit(CONVERSION))
        .when(pl.col("distance_to_border") <= pl.col("rounding_bound")).then(pl.lit(ROUNDING))
        .otherwise(pl.lit(UNEXPLAINED)).alias("reason"))
        .drop("zero_denominator", "difference_class").sort("dimension_id", "edition", "area_id"))
    return Comparison(per_edition=per_edition, disagreements=disagreements, notes=tuple(ours.notes))


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %".replace(".", ",") if whole else "–"


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}".replace(".", ",")


def render_markdown(result: Comparison, *, scale: float, source: str, seconds: float | None = None,
                    pipeline_seconds: float | None = None) -> str:
    table = result.per_edition
    total = {c: int(table[c].sum()) for c in ("valid", "classified", "status_agree", "dynamics_agree")}
    lines = [
        "# Berliner MSS aus den Einzeldaten: Übereinstimmung mit den veröffentlichten Klassen",
        "",
        f"Written by `social-monitor mss-compare` (`make mss-compare SCALE={scale:g}`); do not edit by hand. "
        f"Beispielstadt Berlin im Maßstab {scale:g}: Register, SGB II, SGB XII und Arbeitslose als Einzeldaten "
        "erzeugt, S1–S4 je Planungsraum aus der MSS-Tabelle auf ganze Personen kalibriert, die Pipeline "
        "(Dagster, dbt) berechnet S1–S4 und D1–D4, das Verfahren `berlin_mss` (city.yml) klassifiziert die "
        "Planungsräume. Verglichen mit den veröffentlichten Klassen "
        f"({source}); Ausgabe E = Berichtsjahr E − 1, nur die im MSS gültigen Gebiete.",
        "",
        "## Übereinstimmung je Ausgabe",
        "",
        "| Ausgabe | Berichtsjahr | gültige Gebiete (MSS) | klassifiziert | Status gleich | Status % | "
        "Dynamik gleich | Dynamik % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.iter_rows(named=True):
        lines.append(f"| {row['edition']} | {row['report_cycle']} | {row['valid']} | {row['classified']} | "
                     f"{row['status_agree']} | {_percent(row['status_agree'], row['valid'])} | "
                     f"{row['dynamics_agree']} | {_percent(row['dynamics_agree'], row['valid'])} |")
    lines.append(f"| **alle** | | {total['valid']} | {total['classified']} | {total['status_agree']} | "
                 f"{_percent(total['status_agree'], total['valid'])} | {total['dynamics_agree']} | "
                 f"{_percent(total['dynamics_agree'], total['valid'])} |")
    if pipeline_seconds is not None:
        lines += ["", f"Laufzeit der Pipeline (Lieferungen laden, dbt, Klassifikation; `make mss-compare`): "
                      f"{pipeline_seconds:.0f} s."]
    if seconds is not None:
        lines += ["", f"Laufzeit des Vergleichs (Klassifikation und Tabelle): {seconds:.0f} s."]
    lines += [
        "",
        "## Warum ein Gebiet abweichen kann",
        "",
        "- **Rundung auf ganze Personen**: der Generator plant je Gebiet die veröffentlichte Quote × den eigenen "
        "Nenner, auf ganze Personen gerundet; die Quote weicht also um höchstens 50 / Nenner Prozentpunkte ab "
        "(eine Veränderung: die Summe beider Jahre). Daraus folgt eine Schranke, wie weit sich der Index eines "
        "Gebiets verschieben kann (`rounding_bound`, Herleitung in social_monitor/mss_compare.py). Liegt der "
        "veröffentlichte Index näher an einer Klassengrenze als diese Schranke, ist die Abweichung durch "
        "Rundung erklärt.",
        "- **Dynamik**: die Rundungsschranke einer Veränderung ist weit (D streut wenig, der Rundungsfehler zweier "
        "Jahre addiert sich). Die veröffentlichten D-Werte sind nicht immer die Differenz der veröffentlichten S-Werte "
        "(die Daten wurden revidiert, 2021 auf die neuen LOR harmonisiert). Die Beispielstadt reproduziert S "
        "und berechnet D als Differenz zum vorigen Berichtsjahr (für 2013 aus dem Basisjahr 2010 = S − D der "
        "Ausgabe 2013, daher genau); 2021 vergleicht mit 2018, umgerechnet auf die LOR 2021 über die "
        "angenommene Umschlüsselung (conversion.csv, aus den Namen).",
        f"- **{ZERO_DENOMINATOR}**: im verkleinerten Maßstab hat ein Gebiet keine Person im Nenner einer Quote "
        "(z. B. kein Kind unter 15): keine Quote, das Gebiet wird nicht klassifiziert (Rundung der skalierten "
        "Einwohnerzahl; im Maßstab 1 nicht).",
        f"- **{NOT_CLASSIFIED}**: das Gebiet fehlt aus anderem Grund in unserer Klassifikation (Grund in der Liste).",
        f"- **{REVISED}**: die Dynamik-Klasse, die die veröffentlichten Daten mit D = S(E) − S(E − 2) ergäben, ist "
        "schon eine andere als die veröffentlichte.",
        f"- **{CONVERSION}**: 2021 vergleicht mit 2018 über die angenommene Umschlüsselung (conversion.csv).",
        f"- **{UNEXPLAINED}**: keiner der Gründe oben.",
        "",
    ]
    status = result.disagreements.filter(pl.col("dimension_id") == "status")
    lines += [f"## Abweichende Status-Klassen ({status.height})", ""]
    if status.height:
        lines += ["| Ausgabe | Planungsraum | Name | veröffentlicht | berechnet | Index (veröff.) | Index (berechnet) "
                  "| Abstand zur Grenze | Rundungsschranke | Grund |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in status.iter_rows(named=True):
            lines.append(_disagreement_line(row))
    else:
        lines.append("Keine.")
    dynamics = result.disagreements.filter(pl.col("dimension_id") == "dynamics")
    reasons = dynamics.group_by("edition", "reason").len().sort("edition", "reason")
    lines += ["", f"## Abweichende Dynamik-Klassen ({dynamics.height})", ""]
    if dynamics.height:
        lines += ["| Ausgabe | Grund | Gebiete |", "|---|---|---|"]
        lines += [f"| {r['edition']} | {r['reason']} | {r['len']} |" for r in reasons.iter_rows(named=True)]
        lines += ["", "Gebiete, deren Abweichung einen anderen Grund als Rundung hat:", "",
                  "| Ausgabe | Planungsraum | Name | veröffentlicht | berechnet | Index (veröff.) | Index (berechnet) "
                  "| Abstand zur Grenze | Rundungsschranke | Grund |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_disagreement_line(r) for r in dynamics.filter(~pl.col("reason").is_in(EXPLAINED))
                  .iter_rows(named=True)]
    else:
        lines.append("Keine.")
    if result.notes:
        lines += ["", "## Hinweise der Klassifikation", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def _disagreement_line(row: dict) -> str:
    return (f"| {row['edition']} | {row['area_id']} | {row['plr_name']} | {row['published_class']} | "
            f"{row['our_class'] if row['our_class'] is not None else '–'} | {_number(row['published_index'])} | "
            f"{_number(row['our_index'])} | {_number(row['distance_to_border'])} | "
            f"{_number(row['rounding_bound'])} | {row['reason']}"
            f"{': ' + row['exclusion_reason'] if row['exclusion_reason'] else ''} |")


def city_method(methods: list[Method]) -> Method:
    found = [m for m in methods if m.id == METHOD_ID]
    if not found:
        raise ValueError(f"the city configures no method {METHOD_ID!r} (city.yml classification_methods); "
                         "run with SOCIAL_MONITOR_CITY=berlin")
    return found[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", type=Path, help="the warehouse of a Berlin run (default: the city's)")
    parser.add_argument("--mss", type=Path, help="mss_berlin_2013_2021.csv (default: ../shared/validation/...)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="the scale the sample was generated at (scales min_population; default 1)")
    parser.add_argument("--out", type=Path, default=DOC_PATH, help=f"the Markdown file (default: {DOC_PATH})")
    parser.add_argument("--pipeline-seconds", type=float, help="the run time of the pipeline, for the table's notes")


def run(args: argparse.Namespace) -> int:
    import time

    settings = load_settings()
    warehouse = args.warehouse or settings.warehouse_path
    if not Path(warehouse).is_file():
        raise FileNotFoundError(f"{warehouse}: no warehouse (run the Berlin pipeline first: make mss-compare)")
    mss_path = shared_mss(args.mss)
    method = city_method(settings.config().methods())
    started = time.monotonic()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = compare(con, read_mss(mss_path), method, scale=args.scale)
    text = render_markdown(result, scale=args.scale, source=f"`{MSS_RELATIVE.as_posix()}`",
                           seconds=time.monotonic() - started, pipeline_seconds=args.pipeline_seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    table = result.per_edition
    for row in table.iter_rows(named=True):
        print(f"{row['edition']}: status {row['status_agree']}/{row['valid']}, "
              f"dynamics {row['dynamics_agree']}/{row['valid']}")
    print(f"status {100 * result.status_agreement:.2f} %, dynamics {100 * result.dynamics_agreement:.2f} %, "
          f"unexplained status disagreements: {result.unexplained().height}; wrote {args.out}")
    return 0
