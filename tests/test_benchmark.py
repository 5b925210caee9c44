"""The benchmark harness: a small-scale smoke run of the real benchmark (generator, the two DuckDB scripts, the
pandas script and the real pipeline, compared number for number), and the parts that could silently lie:
the measurement of a process tree, the memory ceiling, the equality check, the same-work script's checks.
No timed assertions here: speed is measured by `make benchmark`, not by tests."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import duckdb

from benchmark.baselines.compare import compare_area_indicators
from benchmark.measure import run_measured
from benchmark.run import step_seconds
from social_monitor.settings import PROJECT_DIR
from tests.waiting import CEILING_SECONDS


def test_smoke_run_of_the_benchmark(tmp_path):
    report = tmp_path / "report.md"
    done = subprocess.run([sys.executable, "-m", "benchmark", "--workloads", "smoke", "--workdir", str(tmp_path / "w"),
                           "--report", str(report)], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=CEILING_SECONDS)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(report.with_suffix(".json").read_text())
    smoke = figures["workloads"]["smoke"]
    for contender in ("duckdb", "equal_work", "pandas", "pipeline"):
        result = smoke["results"][contender]
        assert result["finished"] and result["seconds"] > 0 and result["peak_gib"] > 0.05, contender
    # they agreed on every row of the indicator mart they compute (4 area levels + city, one cycle); the
    # same-work script computes every indicator of the pipeline (its typed rows equal the raw tables, or the
    # run would have failed)
    assert smoke["same_numbers_rows"]["duckdb"] == smoke["same_numbers_rows"]["pandas"] > 4000
    assert smoke["indicators"]["equal_work"]["left_out"] == 0
    assert smoke["indicators"]["equal_work"]["compared"] > smoke["indicators"]["duckdb"]["compared"] > 0
    assert smoke["ratios"]["pipeline/equal_work"] > 0
    assert smoke["input_rows"]["register"] > 50_000
    steps = smoke["results"]["pipeline"]["steps"]
    assert steps["ingest"] > 0 and steps["dbt"] > 0
    text = report.read_text()
    assert "| smoke: " in text and "pipeline / same work" in text and "DuckDB, same work" in text
    assert figures["machine"]["cores"] >= 1


def test_the_equality_check_finds_a_changed_number(tmp_path):
    rows = [(2025, "city", "city", "transfer_rate", 100, 1000, 10.0, 10.0),
            (2025, "sozialraum", "01", "transfer_rate", 20, 100, 20.0, 10.0)]
    with duckdb.connect() as con:
        con.execute("create table t (report_cycle integer, area_level varchar, area_id varchar, indicator_id varchar, "
                    "numerator bigint, denominator bigint, value double, city_value double)")
        con.executemany("insert into t values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute(f"copy t to '{tmp_path / 'expected.parquet'}' (format parquet)")
        con.execute("update t set numerator = 21 where area_id = '01'")
        con.execute(f"copy t to '{tmp_path / 'changed.parquet'}' (format parquet)")
        con.execute("delete from t where area_id = '01'")
        con.execute(f"copy t to '{tmp_path / 'missing.parquet'}' (format parquet)")
    assert compare_area_indicators(tmp_path / "expected.parquet", tmp_path / "expected.parquet") == []
    assert compare_area_indicators(tmp_path / "expected.parquet", tmp_path / "changed.parquet")
    assert compare_area_indicators(tmp_path / "expected.parquet", tmp_path / "missing.parquet")


def test_peak_memory_counts_the_whole_process_tree_and_the_ceiling_stops_it(tmp_path):
    # a parent that starts a child holding 300 MB: the tree's peak includes the child. It holds them for 5 s, 50
    # polls of the sampler, so that a busy machine that delays the sampler's thread does not make it miss them
    child = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    measured = run_measured([sys.executable, "-c", parent])
    assert measured.ok and measured.peak_rss_bytes > 300 * 2**20
    stopped = run_measured([sys.executable, "-c", parent], memory_ceiling_bytes=200 * 2**20)
    assert not stopped.ok and "memory ceiling" in stopped.stopped


def test_step_seconds_sorts_dagster_steps_by_kind(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(
        'x - STEP_SUCCESS - Finished execution of step "raw__register" in 2.5s.\n'
        'x - STEP_SUCCESS - Finished execution of step "raw__sgb2" in 3m41s.\n'
        'x - STEP_SUCCESS - Finished execution of step "raw__register_rows_in_equal_accepted_plus_rejected" in 40ms.\n'
        'x - STEP_SUCCESS - Finished execution of step "raw__unemployment" in 1.5s.\n'
        'x - STEP_SUCCESS - Finished execution of step "raw__schuleingang" in 500ms.\n'
        'x - STEP_SUCCESS - Finished execution of step "raw__deliveries" in 1s.\n'
        'x - STEP_SUCCESS - Finished execution of step "dbt_models" in 1m.\n'
        'x - STEP_SUCCESS - Finished execution of step "published__marts" in 300ms.\n')
    # every delivery's raw asset is ingest, aggregate ones too (they were counted as checks)
    assert step_seconds(log) == {"ingest": 226.5, "dbt": 60.0, "classification": 0.0, "publish": 0.3, "checks": 0.0}


def test_the_benchmark_is_in_the_makefile_and_the_readme():
    assert "python -m benchmark" in (PROJECT_DIR / "Makefile").read_text()
    assert "make benchmark" in (PROJECT_DIR / "README.md").read_text()


def test_the_same_work_script_refuses_a_bad_value_naming_file_line_and_column(tmp_path):
    # the equal-work baseline must do the pipeline's checks, not only its counting: a code that is not the
    # layout's in a delivery whose manifest was updated to match is refused, by file, line and column, without
    # the value
    landing = tmp_path / "landing"
    subprocess.run([sys.executable, "-m", "social_monitor.cli", "generate", "--out", str(landing), "--scale", "0.05",
                    "--cycles", "2025", "-q"], cwd=PROJECT_DIR, check=True, timeout=CEILING_SECONDS)
    data = landing / "sgb12_2025-12-31.csv"
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[3].split(";")
    fields[1] = "HLX"  # Leistungsart
    lines[3] = ";".join(fields)
    data.write_text("".join(lines), encoding="utf-8")
    manifest = landing / "sgb12_2025-12-31.manifest.json"
    meta = json.loads(manifest.read_text())
    meta["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(meta))
    done = subprocess.run([sys.executable, str(PROJECT_DIR / "benchmark" / "baselines" / "equal_work.py"),
                           "--landing", str(landing), "--seeds", str(PROJECT_DIR / "dbt_project" / "seeds"),
                           "--cycles", "2025", "--out", str(tmp_path / "out.parquet")],
                          capture_output=True, text=True, timeout=CEILING_SECONDS)
    assert done.returncode == 2, done.stderr
    assert "sgb12_2025-12-31.csv" in done.stderr and "line 4, column Leistungsart" in done.stderr
    assert "HLX" not in done.stderr and not (tmp_path / "out.parquet").exists()


def test_the_same_work_script_reads_the_deliveries_as_the_citys_layouts_say():
    # the standalone script writes the sample city's layouts out (no project imports); they must not drift
    # from config/dortmund/deliveries.yml, which the pipeline reads
    from benchmark.baselines import equal_work
    from social_monitor.layouts import load_layouts
    from social_monitor.settings import DEFAULT_CITY, city_dir

    layouts = load_layouts(city_dir(DEFAULT_CITY))
    persons = {name: layout for name, layout in layouts.items() if not layout.is_aggregate}
    aggregates = {name: layout for name, layout in layouts.items() if layout.is_aggregate}
    assert set(equal_work.PERSON_SOURCES) == set(persons)
    for name, (pattern, encoding, columns) in equal_work.PERSON_SOURCES.items():
        layout = persons[name]
        assert pattern.replace("{date}", "{reference_date}") == layout.file_pattern, name
        assert encoding == (None if layout.file_format == "parquet" else layout.encoding), name
        assert layout.separator in (None, ";") and layout.date_format == equal_work.DATE_FORMAT, name
        assert [(header, column) for header, column, _, _ in columns] == list(layout.file_columns.items()), name
        assert {column: dict(kind) for _, column, kind, _ in columns if isinstance(kind, dict)} == \
            {column: dict(codes) for column, codes in layout.codes.items()}, name
    assert [delivery[0] for delivery in equal_work.AGGREGATES] == list(aggregates)
    for name, pattern, encoding, level, headers, measures in equal_work.AGGREGATES:
        layout = aggregates[name]
        assert pattern.replace("{date}", "{reference_date}") == layout.file_pattern, name
        assert encoding == (None if layout.file_format == "parquet" else layout.encoding), name
        assert level == layout.level and list(headers) == list(layout.file_columns), name
        assert {code: measure for code, (measure, _) in measures.items()} == dict(layout.codes["measure"]), name
        assert {measure for measure, additive in measures.values() if not additive} == set(layout.non_additive)
        assert not layout.gaps, name
