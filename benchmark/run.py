"""The benchmark: the pipeline against DuckDB alone doing the same work, with a two-column DuckDB script and a
pandas script as context.

For every workload (benchmark/workloads.py) it generates the sample city's raw deliveries, then runs, each
as its own process tree, measured alike (wall time, peak RSS of the whole tree, benchmark/measure.py):

1. ``duckdb``: the hand-written DuckDB SQL script (benchmark/baselines/hand_written.sql): reads the columns it
   needs, no orchestration, no validation (context: the least work that gives its numbers);
2. ``equal_work``: DuckDB alone doing the pipeline's work (benchmark/baselines/equal_work.py and .sql): every
   column of every delivery parsed into types, the contracts' row checks, key uniqueness, the same HMAC
   pseudonyms, the typed rows written to a DuckDB file, then every indicator, within the pipeline's DuckDB
   memory limit (``SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT``, default 2GB): the honest limit;
3. ``pandas``: the script an analyst would write in pandas (benchmark/baselines/pandas_script.py), under a
   memory ceiling: where it does not fit, the report says where it stopped;
4. ``pipeline``: the pipeline as a user runs it after installation (one Dagster run: ingest with Pandera,
   then dbt, classification and publication).

Before it reports a time it checks that they give the same numbers: every row of the indicator mart
(``marts.area_indicators``: cycle × area × indicator, numerator, denominator, value, city value) and every
unsuppressed cell of the published file, for the indicators each baseline computes; and that the equal-work
script's typed rows equal the pipeline's raw tables (count and a checksum of every row). The nightly case adds
one report cycle to W2 and runs only its partition and the marts (incremental) against a full rebuild of all
five cycles, and checks both give the same marts.

    python -m benchmark                   # every workload (W1, W2, nightly, W3, W4): about 25 minutes here
    python -m benchmark --workloads W1 W3 # a selection; the figures of the others stay in the report

The figures go to docs/benchmark.json and docs/benchmark.md (with the machine's description).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb
import psutil

from benchmark.baselines.compare import compare_area_indicators
from benchmark.measure import GIB, Measurement, run_measured
from benchmark.workloads import ALL_CYCLES, DEFAULT_RUN, NEW_CYCLE, WORKLOADS, Workload
from social_monitor.deliveries import reference_date_of
from social_monitor.ingest import duckdb_memory_limit
from social_monitor.layouts import delivered_sources, load_layouts
from social_monitor.settings import DEFAULT_CITY, FOLLOW_THE_DATA_DIR, city_dir, copy_city

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEEDS = PROJECT_DIR / "dbt_project" / "seeds"
BASELINES = PROJECT_DIR / "benchmark" / "baselines"
DEFAULT_WORKDIR = PROJECT_DIR / "data" / "benchmark"
DEFAULT_REPORT = PROJECT_DIR / "docs" / "benchmark.md"
PANDAS_CEILING_GIB = 20  # of the machine's 24 GiB: beyond it pandas only measures swapping
PANDAS_TIME_LIMIT = 3600
# exit codes of a script that ran out of memory: the pandas script's own (3), C++ bad_alloc (134), the kernel (137)
OUT_OF_MEMORY = {3, 134, -6, 137, -9}
# issue 14: against DuckDB doing the same work (equal_work), ratios measured in one run
TARGETS = {
    "W1": "pipeline − same-work DuckDB ≤ 10 s",
    "W3": "pipeline ≤ 1.3 × same-work DuckDB",
    "W4": "pipeline ≤ 1.3 × same-work DuckDB and peak memory ≤ 4 GiB",
    "nightly": "incremental run ≤ 0.3 × a full rebuild",
}
BASELINES_RUN = ("duckdb", "equal_work", "pandas")
LABELS = {"duckdb": "DuckDB, two columns", "equal_work": "DuckDB, same work", "pandas": "pandas",
          "pipeline": "pipeline"}


class BenchmarkError(RuntimeError):
    pass


def say(message: str) -> None:
    print(message, flush=True)


# --- inputs -----------------------------------------------------------------------------------------


def generate(landing: Path, scale: float, cycles: Sequence[int]) -> dict[str, object]:
    """The sample city's deliveries for ``cycles`` at ``scale``, written once and reused while unchanged."""
    marker = landing / ".benchmark-generated.json"
    wanted = {"scale": scale, "cycles": list(cycles)}
    if marker.exists() and json.loads(marker.read_text())["spec"] == wanted:
        return json.loads(marker.read_text())
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    say(f"  generating scale {scale:g}, cycles {' '.join(map(str, cycles))} …")
    measured = _check(run_measured([str(BIN / "social-monitor"), "generate", "--out", str(landing),
                                    "--scale", f"{scale:g}", "--cycles", *map(str, cycles)],
                                   log=landing.parent / f"generate-{landing.name}.log"), "the generator")
    rows = {}
    for manifest in sorted(landing.glob("*.manifest.json")):
        meta = json.loads(manifest.read_text())
        rows[manifest.name.removesuffix(".manifest.json")] = int(meta["rows"])
    info = {"spec": wanted, "rows": rows, "seconds": round(measured.seconds, 1),
            "bytes": sum(p.stat().st_size for p in landing.iterdir() if not p.name.startswith("."))}
    marker.write_text(json.dumps(info, indent=1))
    return info


def input_rows(info: dict[str, object], cycles: Sequence[int]) -> dict[str, int]:
    """Rows per source over ``cycles`` (each file named by the city's delivery layouts) and their total."""
    layouts = load_layouts(city_dir(DEFAULT_CITY))
    source_of = {layout.manifest_name(reference_date_of(cycle)).removesuffix(".manifest.json"): name
                 for name, layout in layouts.items() for cycle in cycles}  # generate() keys by manifest stem
    per_source = dict.fromkeys(layouts, 0)
    for name, rows in info["rows"].items():
        if name in source_of:
            per_source[source_of[name]] += rows
    return {**per_source, "total": sum(per_source.values())}


# --- the three contenders -----------------------------------------------------------------------------


def run_baseline(kind: str, landing: Path, cycles: Sequence[int], out: Path, log: Path) -> Measurement:
    script = {"duckdb": "hand_written.py", "equal_work": "equal_work.py", "pandas": "pandas_script.py"}[kind]
    command = [sys.executable, str(BASELINES / script), "--landing", str(landing), "--seeds", str(SEEDS),
               "--cycles", *map(str, cycles), "--out", str(out)]
    if kind == "pandas":
        return run_measured(command, log=log, memory_ceiling_bytes=PANDAS_CEILING_GIB * GIB,
                            time_limit_seconds=PANDAS_TIME_LIMIT)
    if kind == "equal_work":  # within the pipeline's DuckDB memory limit: both spill where one does
        command += ["--memory-limit", duckdb_memory_limit()]
    return run_measured(command, log=log)


def pipeline_env(workdir: Path, landing: Path, cycles: Sequence[int]) -> dict[str, str]:
    """The environment of a pipeline run with its own data folder, Dagster home and city configuration."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "city", ignore_errors=True)
    copy_city(DEFAULT_CITY, workdir / "city", report_cycles=list(cycles))
    home = workdir / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {name: value for name, value in os.environ.items() if name not in FOLLOW_THE_DATA_DIR}
    return {**env, "SOCIAL_MONITOR_DATA_DIR": str(workdir / "data"), "SOCIAL_MONITOR_LANDING_DIR": str(landing),
            "SOCIAL_MONITOR_CITY": str(workdir / "city"), "DAGSTER_HOME": str(home)}


# What the baselines compute and the pipeline is measured on: every asset up to the published file. The German
# report and the Excel/Parquet exports are further products of the published file, outside the comparison.
PIPELINE_SELECTION = '* and not group:report and not key:"published/exports"'


def run_pipeline(env: dict[str, str], partitions: Sequence[int], log: Path) -> dict[str, object]:
    """The pipeline as `make run` runs it: one Dagster run over the report cycles (raw partitions with Pandera,
    dbt, classification, publication, every asset check of them), in one process, up to the published file."""
    selection = (["--partition", str(partitions[0])] if len(partitions) == 1
                 else ["--partition-range", f"{partitions[0]}...{partitions[-1]}"])
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "orchestration.definitions",
               "--select", PIPELINE_SELECTION, *selection]
    measured = _check(run_measured(command, env=env, cwd=PROJECT_DIR, log=log), "the pipeline")
    return {"measured": measured, "steps": step_seconds(log)}


# the step of each asset (a step of an asset check has the check's name after the asset's)
# (every delivery's raw asset, person-level and aggregate, and the two tables they log into)
ASSET_STEPS = {**{f"raw__{name}": "ingest" for name in
                  [*(source.name for source in delivered_sources(city_dir(DEFAULT_CITY))), "deliveries", "aggregates"]},
               "dbt_models": "dbt", "classification__action_areas": "classification",
               "classification__area_classifications": "classification", "published__marts": "publish"}
STEP = re.compile(r'STEP_SUCCESS - Finished execution of step "([^"]+)" in ([0-9hms.]+?)\.?$', re.MULTILINE)
DURATION = re.compile(r"([0-9.]+)(ms|h|m|s)")  # Dagster writes 343ms, 45.73s, 3m41s, 1h2m


def step_seconds(log: Path) -> dict[str, float]:
    """Seconds per kind of step from Dagster's log: ingest (the raw assets), dbt, classification, publish,
    checks (our own asset checks); the rest of the wall time is start-up (imports, loading the code)."""
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    totals = dict.fromkeys(("ingest", "dbt", "classification", "publish", "checks"), 0.0)
    for name, duration in STEP.findall(log.read_text(encoding="utf-8", errors="replace")):
        seconds = sum(float(value) * unit[suffix] for value, suffix in DURATION.findall(duration))
        kind = ASSET_STEPS.get(name, "checks")
        totals[kind] += seconds
    return {kind: round(seconds, 1) for kind, seconds in totals.items()}


def prepare_dbt(env: dict[str, str]) -> None:
    """dagster-dbt prepares dbt's manifest once after installation (part of `make run`'s install, untimed)."""
    _check(run_measured([sys.executable, "-c", "import orchestration.dbt_project"], env=env, cwd=PROJECT_DIR),
           "preparing the dbt manifest")


def _baseline_indicators(pipeline: Path, baseline: Path) -> tuple[int, int]:
    """How many of the pipeline's indicators the baseline computes, and how many it does not."""
    with duckdb.connect() as con:
        ours = {r[0] for r in con.execute(f"select distinct indicator_id from '{pipeline}'").fetchall()}
        theirs = {r[0] for r in con.execute(f"select distinct indicator_id from '{baseline}'").fetchall()}
    if not theirs or not theirs <= ours:
        raise BenchmarkError(f"the baseline {baseline.name} computes indicators the pipeline has not: "
                             f"{sorted(theirs - ours)[:5]}")
    return len(theirs), len(ours - theirs)


def _only(pipeline: Path, baseline: Path) -> Path:
    """The pipeline's rows of the indicators the baseline computes (a Parquet file beside ``pipeline``)."""
    target = pipeline.with_name(f"{pipeline.stem}_as_{baseline.stem}.parquet")
    with duckdb.connect() as con:
        con.execute(f"copy (select * from '{pipeline}' where indicator_id in (select indicator_id from "
                    f"'{baseline}')) to '{target}' (format parquet)")
    return target


def export_marts(env: dict[str, str], out_dir: Path) -> tuple[Path, Path]:
    """The pipeline's indicator mart from the warehouse, and the published one (suppressed cells empty)."""
    data = Path(env["SOCIAL_MONITOR_DATA_DIR"])
    warehouse_out, published_out = out_dir / "pipeline_warehouse.parquet", out_dir / "pipeline_published.parquet"
    columns = "report_cycle, area_level, area_id, indicator_id, numerator, denominator, value, city_value"
    with duckdb.connect(str(data / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        con.execute(f"copy (select {columns} from marts.area_indicators) to '{warehouse_out}' (format parquet)")
    with duckdb.connect(str(data / "published" / "marts.duckdb"), read_only=True) as con:
        con.execute(f"copy (select {columns} from area_indicators where suppression is null) "
                    f"to '{published_out}' (format parquet)")
    return warehouse_out, published_out


# --- workloads ------------------------------------------------------------------------------------------


def run_workload(workload: Workload, workdir: Path) -> dict[str, object]:
    say(f"{workload.name}: {workload.description} (scale {workload.scale:g}, cycles "
        f"{' '.join(map(str, workload.cycles))})")
    wdir = workdir / workload.name
    landing = wdir / "landing"
    info = generate(landing, workload.scale, workload.cycles)
    rows = input_rows(info, workload.cycles)
    say(f"  {rows['total']:,} input rows ({rows['register']:,} register), generated in {info['seconds']} s")
    runs = wdir / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)

    results: dict[str, dict[str, object]] = {}
    outputs: dict[str, Path] = {}
    for kind in BASELINES_RUN:
        if kind == "pandas" and not workload.pandas:
            results[kind] = {"finished": False, "stopped": "not run for this workload"}
            continue
        say(f"  {kind} script …")
        out = runs / f"{kind}.parquet"
        measured = run_baseline(kind, landing, workload.cycles, out, runs / f"{kind}.log")
        if kind != "pandas":
            _check(measured, f"the {LABELS[kind]} script")
        results[kind] = _figures(measured, rows["total"])
        if measured.ok:
            outputs[kind] = out
        say(f"    {_line(results[kind])}")

    say("  pipeline …")
    env = pipeline_env(runs / "pipeline", landing, workload.cycles)
    prepare_dbt(env)
    results["pipeline"] = _combine(run_pipeline(env, workload.cycles, runs / "pipeline.log"), rows["total"])
    say(f"    {_line(results['pipeline'])}")
    warehouse_out, published_out = export_marts(env, runs)
    raw_differences = _raw_differences(env, runs / "equal_work.duckdb")
    if raw_differences:
        raise BenchmarkError(f"{workload.name}: the same-work script's typed rows differ from the pipeline's raw "
                             "tables:\n  " + "\n  ".join(raw_differences))

    checked, indicators = {}, {}
    for kind, out in outputs.items():
        # the two-column and pandas scripts compute the register and transfer-benefit indicators only (the
        # unemployment extract's and the aggregate deliveries' are left out of their comparison, said); the
        # same-work script computes every indicator
        compared, left_out = _baseline_indicators(warehouse_out, out)
        indicators[kind] = {"compared": compared, "left_out": left_out}
        say(f"  {kind}: compares {compared} indicators; not in the baseline: {left_out}")
        differences = compare_area_indicators(_only(warehouse_out, out), out)
        published_differences = _published_differences(_only(published_out, out), out)
        if differences or published_differences:
            raise BenchmarkError(f"{workload.name}: the {kind} script and the pipeline disagree:\n  "
                                 + "\n  ".join(differences + published_differences))
        checked[kind] = _row_count(warehouse_out)
    say(f"  same numbers: {', '.join(f'{k} ({n:,} rows)' for k, n in checked.items())}")
    return {"workload": workload.name, "description": workload.description, "scale": workload.scale,
            "cycles": list(workload.cycles), "input_rows": rows, "input_bytes": info["bytes"],
            "generate_seconds": info["seconds"], "results": results, "same_numbers_rows": checked,
            "indicators": indicators, "ratios": _ratios(results), "measured_at": _now()}


def run_nightly(workdir: Path) -> dict[str, object]:
    """W2 plus one new cycle: the night's run (the new partition, then the marts) against a full rebuild.
    Both must give the same marts: the incremental counts, the comparisons with the previous cycle (2025's
    previous cycle becomes the new one) and the classification of every cycle."""
    cycles = tuple(sorted((*ALL_CYCLES, NEW_CYCLE)))
    say(f"nightly: W2 plus the new cycle {NEW_CYCLE}: incremental run against a full rebuild")
    wdir = workdir / "nightly"
    landing = wdir / "landing"
    info = generate(landing, 1, cycles)
    runs = wdir / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)

    # the state before the night: W2's four cycles loaded and built (not timed)
    say("  the state before the night (W2 loaded and built, not timed) …")
    incremental_env = pipeline_env(runs / "incremental", landing, ALL_CYCLES)
    prepare_dbt(incremental_env)
    run_pipeline(incremental_env, ALL_CYCLES, runs / "incremental-before.log")
    # the night: the city adds the cycle to its configuration, the new partition and the marts are built
    incremental_env = pipeline_env(runs / "incremental", landing, cycles)
    say("  incremental …")
    incremental = _combine(run_pipeline(incremental_env, (NEW_CYCLE,), runs / "incremental.log"),
                           input_rows(info, (NEW_CYCLE,))["total"])
    say(f"    {_line(incremental)}")
    say("  full rebuild …")
    full_env = pipeline_env(runs / "full", landing, cycles)
    full = _combine(run_pipeline(full_env, cycles, runs / "full.log"), input_rows(info, cycles)["total"])
    say(f"    {_line(full)}")
    incremental_out, _ = export_marts(incremental_env, runs / "incremental")
    full_out, _ = export_marts(full_env, runs / "full")
    differences = compare_area_indicators(full_out, incremental_out)
    if differences:
        raise BenchmarkError("nightly: the incremental run and the full rebuild disagree:\n  "
                             + "\n  ".join(differences))
    say(f"  same numbers: incremental and full ({_row_count(full_out):,} rows)")
    return {"workload": "nightly", "description": f"W2 plus the new cycle {NEW_CYCLE}", "scale": 1,
            "cycles": list(cycles), "input_rows": input_rows(info, cycles),
            "results": {"incremental": incremental, "full": full},
            "ratios": {"incremental/full": round(incremental["seconds"] / full["seconds"], 3)},
            "same_numbers_rows": {"incremental": _row_count(full_out)}, "measured_at": _now()}


# --- figures ---------------------------------------------------------------------------------------------


def _check(measured: Measurement, what: str) -> Measurement:
    if not measured.ok:
        raise BenchmarkError(f"{what} failed ({measured.stopped or f'exit code {measured.returncode}'}): "
                             f"{measured.command}\n{measured.output_tail}")
    return measured


def _figures(measured: Measurement, rows: int) -> dict[str, object]:
    if not measured.ok:
        last_line = (measured.output_tail.splitlines() or [""])[-1]
        reason = measured.stopped or f"exit code {measured.returncode}: {last_line}"
        if measured.returncode in OUT_OF_MEMORY and not measured.stopped:
            reason = f"ran out of memory after {measured.seconds:.0f} s (exit code {measured.returncode})"
        return {"finished": False, "stopped": reason, "seconds": round(measured.seconds, 1),
                "peak_gib": round(measured.peak_gib, 2)}
    return {"finished": True, "seconds": round(measured.seconds, 1), "peak_gib": round(measured.peak_gib, 2),
            "rows_per_second": round(rows / measured.seconds)}


def _combine(run: dict[str, object], rows: int) -> dict[str, object]:
    measured: Measurement = run["measured"]
    steps = dict(run["steps"])
    steps["start-up and other"] = round(max(measured.seconds - sum(steps.values()), 0), 1)
    return {**_figures(measured, rows), "steps": steps}


def _ratios(results: dict[str, dict[str, object]]) -> dict[str, float | None]:
    pipeline, duck, same, pandas = results["pipeline"], results["duckdb"], results["equal_work"], results["pandas"]
    return {"pipeline/equal_work": round(pipeline["seconds"] / same["seconds"], 2),
            "pipeline-equal_work": round(pipeline["seconds"] - same["seconds"], 1),
            "pipeline/duckdb": round(pipeline["seconds"] / duck["seconds"], 2),
            "pandas/pipeline": round(pandas["seconds"] / pipeline["seconds"], 2) if pandas.get("finished") else None}


RAW_TABLES = ("register", "sgb2", "sgb12", "asylblg", "unemployment", "aggregates")


def _raw_differences(env: dict[str, str], equal_work: Path) -> list[str]:
    """The same-work script's typed rows against the pipeline's raw tables: the same columns and types, and per
    table the same row count and the same checksum of every row (a sum of row hashes: order-independent, one
    pass), so both parsed, pseudonymised and kept the same rows."""
    warehouse = Path(env["SOCIAL_MONITOR_DATA_DIR"]) / "warehouse" / "warehouse.duckdb"
    differences = []
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as pipeline (read_only)")
        con.execute(f"attach '{equal_work}' as same (read_only)")
        for table in RAW_TABLES:
            figures = []
            for db in ("pipeline", "same"):
                columns = con.execute(f"select column_name, data_type from duckdb_columns() where database_name = "
                                      f"'{db}' and schema_name = 'raw' and table_name = '{table}' "
                                      "order by column_index").fetchall()
                rows, checksum = con.execute(f"select count(*), sum(hash(t)::hugeint) from {db}.raw.{table} as t"
                                             ).fetchone()
                figures.append((columns, rows, checksum))
            (p_columns, p_rows, p_sum), (s_columns, s_rows, s_sum) = figures
            if p_columns != s_columns:
                differences.append(f"raw.{table}: columns {s_columns}, the pipeline's {p_columns}")
            elif (p_rows, p_sum) != (s_rows, s_sum):
                differences.append(f"raw.{table}: {s_rows} rows (checksum {s_sum}), the pipeline's {p_rows} "
                                   f"(checksum {p_sum})")
    return differences


def _published_differences(published: Path, baseline: Path) -> list[str]:
    """Every cell the published file shows equals the baseline's (suppressed cells are not shown)."""
    with duckdb.connect() as con:
        count = con.execute(
            f"select count(*) from read_parquet('{published}') p left join read_parquet('{baseline}') b "
            "using (report_cycle, area_level, area_id, indicator_id) where b.indicator_id is null "
            "or p.numerator is distinct from b.numerator or p.denominator is distinct from b.denominator "
            "or abs(coalesce(p.value, 0) - coalesce(b.value, 0)) > 1e-9 * greatest(1, abs(coalesce(b.value, 0))) "
            "or (p.value is null) <> (b.value is null)").fetchone()[0]
    return [f"{count} published cells differ from the script's"] if count else []


def _row_count(path: Path) -> int:
    with duckdb.connect() as con:
        return con.execute(f"select count(*) from read_parquet('{path}')").fetchone()[0]


def _line(figures: dict[str, object]) -> str:
    if not figures.get("finished"):
        return f"did not finish: {figures.get('stopped')}"
    return (f"{figures['seconds']} s, peak {figures['peak_gib']} GiB, {figures['rows_per_second']:,} rows/s")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    from importlib.metadata import version
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
            "os": platform.platform(), "python": platform.python_version(),
            "packages": {name: version(name) for name in ("dagster", "dagster-dbt", "dbt-core", "dbt-duckdb",
                                                          "duckdb", "pandera", "polars", "pandas")}}


# --- report ---------------------------------------------------------------------------------------------


def target_verdict(name: str, entry: dict[str, object]) -> str:
    r = entry["results"]
    if name == "nightly":
        ratio = entry["ratios"]["incremental/full"]
        return f"{'met' if ratio <= 0.3 else 'NOT met'}: incremental/full {ratio}, target ≤ 0.3"
    if name not in ("W1", "W3", "W4"):
        return "no target"
    if not r.get("equal_work", {}).get("finished"):
        return "not measured against the same-work script yet"
    p, same = r["pipeline"], r["equal_work"]
    if name == "W1":
        gap = round(p["seconds"] - same["seconds"], 1)
        return (f"{'met' if gap <= 10 else 'NOT met'}: pipeline − same work {gap} s ({p['seconds']} s − "
                f"{same['seconds']} s), target ≤ 10 s")
    ratio = round(p["seconds"] / same["seconds"], 2)
    verdict = f"{'met' if ratio <= 1.3 else 'NOT met'}: pipeline/same work {ratio}, target ≤ 1.3"
    if name == "W4":
        memory_ok = p["peak_gib"] <= 4
        verdict += f"; {'met' if memory_ok else 'NOT met'}: peak {p['peak_gib']} GiB, target ≤ 4 GiB"
    return verdict


def render(report: dict[str, object], json_name: str = "benchmark.json") -> str:
    m = report["machine"]
    lines = [
        "# Benchmark: the pipeline against DuckDB doing the same work",
        "",
        "Written by `make benchmark` (`python -m benchmark`, benchmark/run.py); do not edit by hand. The figures of "
        f"each workload are from its last run; the raw figures are in [{json_name}]({json_name}).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
        "",
        "Contenders, each a process tree measured alike (wall time; peak memory = the largest sum of the RSS of "
        "every process in the tree, polled every 0.1 s):",
        "- **DuckDB, same work**: DuckDB alone doing the pipeline's work, as one standalone script "
        "(benchmark/baselines/equal_work.py and equal_work.sql, only duckdb): every column of every delivery "
        "(person-level and aggregate) read and parsed into types, the manifest's rows and checksum, the contracts' "
        "row checks, key uniqueness, person and household keys replaced by the same HMAC-SHA256 pseudonyms, the "
        "typed rows written to a DuckDB file, then every indicator of the catalogue, within the pipeline's DuckDB "
        f"memory limit ({duckdb_memory_limit()}, `SOCIAL_MONITOR_DUCKDB_MEMORY_LIMIT`): the honest limit, and the "
        "ratio the targets are set against.",
        "- **DuckDB, two columns** (context): one hand-written SQL script (benchmark/baselines/hand_written.sql) "
        "from the raw files to the indicator mart, reading only the columns it needs, no validation, nothing kept.",
        "- **pandas** (context): the script an analyst would write (benchmark/baselines/pandas_script.py), stopped "
        f"at {PANDAS_CEILING_GIB} GiB.",
        "- **pipeline**: what `make run` runs after installation, one Dagster run (`dagster asset materialize` over "
        "the cycles) of every asset up to the published file: ingest (manifest, checksum, parsing, Pandera "
        "contracts, pseudonymisation, quarantine), dbt with its tests, classification (every method), the atomic "
        "publication with statistical disclosure control, and every asset check. The German report and the "
        "Excel/Parquet exports, made from the published file afterwards, are not part of the comparison.",
        "",
        "Every figure is reported only after the check that the contenders computed the same numbers: every row of "
        "the indicator mart (cycle × area × indicator: numerator, denominator, value, city value) and every "
        "published cell, for the indicators each script computes (the same-work script: all of them; the "
        "two-column and pandas scripts: the register's and the transfer benefits'), and that the same-work "
        "script's typed rows equal the pipeline's raw tables (row count and a checksum of every row).",
        "",
        "| workload | input rows | contender | wall time | peak memory | rows/s | pipeline / same work "
        "| pipeline / two columns | pandas / pipeline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("smoke", "W1", "W2", "W3", "W4"):
        entry = report["workloads"].get(name)
        if not entry:
            continue
        kinds_run = [kind for kind in ("equal_work", "duckdb", "pandas", "pipeline") if kind in entry["results"]]
        for kind in kinds_run:
            f = entry["results"][kind]
            ratios = entry["ratios"]
            first = kind == kinds_run[0]
            cells = [f"{name}: {entry['description']}" if first else "",
                     f"{entry['input_rows']['total']:,}" if first else "", LABELS[kind]]
            if f.get("finished"):
                cells += [f"{f['seconds']} s", f"{f['peak_gib']} GiB", f"{f['rows_per_second']:,}"]
            else:
                cells += [f"did not finish: {f.get('stopped')}", "", ""]
            if kind == "pipeline":
                cells += [str(ratios.get("pipeline/equal_work") or "not measured yet"), str(ratios["pipeline/duckdb"]),
                          str(ratios["pandas/pipeline"] or "–")]
            else:
                cells += ["", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
    compared = [(name, entry["indicators"]) for name in ("smoke", "W1", "W2", "W3", "W4")
                if (entry := report["workloads"].get(name)) and entry.get("indicators")]
    if compared:
        lines += ["", "Indicators compared (of the pipeline's; the rest are not computed by that script):", ""]
        for name, indicators in compared:
            lines.append(f"- {name}: " + "; ".join(
                f"{LABELS[kind]} {figures['compared']} (left out {figures['left_out']})"
                for kind, figures in indicators.items()))
    nightly = report["workloads"].get("nightly")
    kinds = ("ingest", "dbt", "classification", "publish", "checks", "start-up and other")
    lines += ["", "Where the pipeline's time goes (seconds, from Dagster's step log; ingest = the raw assets with "
              "Pandera, checks = our own asset checks, start-up = imports and loading the code location):", "",
              "| workload | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for name in ("smoke", "W1", "W2", "W3", "W4"):
        entry = report["workloads"].get(name)
        if entry:
            steps = entry["results"]["pipeline"]["steps"]
            lines.append(f"| {name} | " + " | ".join(str(steps.get(k, "")) for k in kinds) + " |")
    if nightly:
        inc, full = nightly["results"]["incremental"], nightly["results"]["full"]
        lines += ["", f"## Nightly: {nightly['description']}", "",
                  "The city adds a report cycle to W2's four; the night's run loads that cycle's partitions and "
                  "rebuilds what depends on them (dbt counts only the new cycle), against a full rebuild of all five "
                  f"cycles. The new cycle is {NEW_CYCLE}, between 2018 and 2025: the sample city's calibration ends "
                  "in 2025, so a later cycle would repeat 2025's counts exactly.", "",
                  "| run | wall time | peak memory | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 3) + "|"]
        for label, f in (("incremental (the new partition, then the marts)", inc),
                         ("full rebuild (all five cycles)", full)):
            lines.append(f"| {label} | {f['seconds']} s | {f['peak_gib']} GiB | "
                         + " | ".join(f"{f['steps'].get(k, '')} s" for k in kinds) + " |")
        lines.append(f"\nincremental / full = {nightly['ratios']['incremental/full']}; both give the same marts.")
    lines += ["", "## Targets", "", "| target | verdict | measured at |", "|---|---|---|"]
    for name, target in TARGETS.items():
        entry = report["workloads"].get(name)
        lines.append(f"| {name}: {target} | {target_verdict(name, entry) if entry else 'not measured yet'} | "
                     f"{entry['measured_at'] if entry else ''} |")
    notes = report.get("notes")
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"


def write_report(report_path: Path, entries: list[dict[str, object]]) -> dict[str, object]:
    json_path = report_path.with_suffix(".json")
    report = json.loads(json_path.read_text()) if json_path.exists() else {"workloads": {}}
    report["machine"] = machine()
    for entry in entries:
        report["workloads"][entry["workload"]] = entry
    notes_path = report_path.parent / "benchmark-notes.md"
    report["notes"] = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
    json_path.write_text(json.dumps({k: v for k, v in report.items() if k != "notes"}, indent=1, ensure_ascii=False)
                         + "\n", encoding="utf-8")
    report_path.write_text(render(report, json_path.name), encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=list(DEFAULT_RUN), choices=[*WORKLOADS, "nightly"],
                        help="what to run (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="where the generated data and the runs go (default: data/benchmark)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT,
                        help="the Markdown report; the figures go beside it as .json (default: docs/benchmark.md)")
    args = parser.parse_args(argv)
    entries = []
    try:
        for name in args.workloads:
            entry = run_nightly(args.workdir) if name == "nightly" else run_workload(WORKLOADS[name], args.workdir)
            entries.append(entry)
            write_report(args.report, entries)  # after every workload: a later failure keeps what was measured
            say(f"  {name}: {target_verdict(name, entry)}")
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    say(f"report: {args.report} (figures: {args.report.with_suffix('.json')})")
    return 0
