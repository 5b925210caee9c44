"""The command line as a user meets it: ``--help`` everywhere, an error is one line (the traceback only with
``--debug``), long steps print progress on stderr (none with ``--quiet``), results stay on stdout."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from social_monitor import cli, exports
from social_monitor.report import generator as report_generator
from social_monitor.settings import PROJECT_DIR
from tests.deliveries import ALL_LAYOUTS
from tests.test_exports import CYCLES, write_published_file
from tests.waiting import CEILING_SECONDS

SCRIPT = Path(sys.executable).with_name("social-monitor")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "social_monitor.cli"]
DEBUG_POINTER = "--debug"


def social_monitor(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=CEILING_SECONDS, cwd=cwd)


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def undocumented_options(parser: argparse.ArgumentParser) -> list[str]:
    return [action.dest for action in parser._actions
            if not action.help or action.help == argparse.SUPPRESS or not action.help.strip()]


# --- --help everywhere -----------------------------------------------------------------------------------------

def test_every_command_and_option_has_a_help_text():
    parser = cli.build_parser()
    assert parser.description and undocumented_options(parser) == []
    commands = subparsers(parser)
    assert set(commands) == set(cli.SUBCOMMANDS)
    for name, sub in commands.items():
        assert sub.description and len(sub.description) > 20, name
        assert undocumented_options(sub) == [], name
    top = social_monitor("--help")
    assert top.returncode == 0, top.stderr
    for name, (_, help_text) in cli.SUBCOMMANDS.items():
        assert name in top.stdout and help_text.split()[0] in top.stdout


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_help_of_every_command_exits_0_and_lists_its_options(name):
    done = social_monitor(name, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: social-monitor {name}")
    for action in subparsers(cli.build_parser())[name]._actions:
        if action.option_strings:
            assert action.option_strings[-1] in done.stdout, (name, action.option_strings)


def test_benchmark_help():
    done = subprocess.run([sys.executable, "-m", "benchmark", "--help"], capture_output=True, text=True,
                          timeout=CEILING_SECONDS, cwd=PROJECT_DIR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "--workloads" in done.stdout


# --- errors: one line, a pointer to the details, the traceback only with --debug -------------------------------

def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_missing_published_file_is_one_line_with_the_path_and_the_debug_pointer():
    done = social_monitor("export", "--published", "/nonexistent.duckdb")
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("social-monitor export: error: /nonexistent.duckdb")
    assert DEBUG_POINTER in line
    assert done.stdout == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where):
    args = ["--debug", "export"] if where == "before" else ["export", "--debug"]
    done = social_monitor(*args, "--published", "/nonexistent.duckdb")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "FileNotFoundError" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("social-monitor export: error: /nonexistent.duckdb")


def test_an_unknown_method_is_one_line_and_a_usage_error(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("area_id,report_cycle,x\nA,2021,1\n", encoding="utf-8")
    done = social_monitor("classify", "--method", "no_such_method", "--input", str(source),
                          "--output", str(tmp_path / "out.csv"))
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("social-monitor classify: error: unknown method 'no_such_method'")
    assert DEBUG_POINTER in line
    assert not (tmp_path / "out.csv").exists()


def test_a_bad_scale_is_argparses_usage_error():
    done = social_monitor("generate", "--scale", "0.01", "--out", "/nonexistent/landing")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: social-monitor generate")
    assert done.stderr.splitlines()[-1] == "social-monitor generate: error: argument --scale: the scale must be at " \
                                           "least 0.05"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("argv, code, names", [
    (["classify", "--method", "berlin_mss", "--input", "{tmp}/missing.csv", "--output", "{tmp}/o.csv"], 1,
     "{tmp}/missing.csv"),
    (["classify", "--method", "berlin_mss", "--input", "{tmp}/in.csv", "--output", "{tmp}/o.txt"], 2, "--output"),
    (["classify", "--method", "berlin_mss", "--input", "{tmp}/in.csv", "--output", "{tmp}/o.csv"], 1,
     "{tmp}/in.csv"),
    (["action-areas", "--published", "{tmp}/none.duckdb"], 1, "{tmp}/none.duckdb"),
    (["report", "--published", "{tmp}/none.duckdb", "--out", "{tmp}/report"], 1, "{tmp}/none.duckdb"),
    (["export", "--published", "{tmp}/broken.duckdb", "--out", "{tmp}/exports"], 1, "{tmp}/broken.duckdb"),
    (["action-areas", "--published", "{tmp}/in.csv"], 1, "{tmp}/in.csv"),  # DuckDB cannot open it
    (["catalogue-docs", "--out", "{tmp}/in.csv/docs.md"], 1, "{tmp}/in.csv"),  # OSError: not a folder
])
def test_user_errors_are_one_line_naming_the_file_or_option(tmp_path, capsys, argv, code, names):
    (tmp_path / "in.csv").write_text("area_id,report_cycle,x\nA,2021,1\n", encoding="utf-8")
    (tmp_path / "broken.duckdb").write_bytes(b"not a database")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    line = [line for line in captured.err.splitlines() if ": error: " in line]
    assert len(line) == 1 and "Traceback" not in captured.err, captured.err
    assert line[0].startswith(f"social-monitor {argv[0]}: error: ")
    assert names.format(tmp=tmp_path) in line[0] and DEBUG_POINTER in line[0]
    assert captured.err.splitlines()[-1] == line[0]  # nothing after it


def test_the_one_line_is_the_first_line_of_the_message():
    assert cli.error_line(ValueError("x.csv: wrong\nsecond line")) == "x.csv: wrong"
    assert cli.error_line(FileNotFoundError(2, "No such file or directory", "x.csv")) == \
        "x.csv: No such file or directory"


def test_a_bug_keeps_its_traceback(monkeypatch):
    def broken(args):
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr(exports, "run", broken)
    with pytest.raises(KeyError):
        cli.main(["export", "--published", "/nonexistent.duckdb"])


def test_an_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(exports, "run", interrupted)
    assert cli.main(["export"]) == 130
    assert capsys.readouterr().err == "social-monitor export: interrupted\n"


# --- progress on stderr, results on stdout, --quiet --------------------------------------------------------------

def test_generate_prints_progress_per_cycle_and_quiet_silences_it(tmp_path):
    done = social_monitor("generate", "--scale", "0.05", "--cycles", "2018", "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    progress = done.stderr.splitlines()
    assert len(progress) == 2, done.stderr
    assert all(line.startswith("social-monitor generate: cycle 2018 (1 of 1): ") for line in progress)
    files = len(ALL_LAYOUTS)  # the person-level sources, then the partner offices' aggregate deliveries
    assert progress[-1].split(": ", 2)[2].startswith(f"{files} files, ")
    # stdout as documented: one line per file with its rows, then the total
    lines = done.stdout.splitlines()
    assert len(lines) == files + 1
    assert [line.split(":")[0] for line in lines[:4]] == [
        "bevoelkerung_2018-12-31.csv", "sgb2_2018-12-31.parquet", "sgb12_2018-12-31.csv", "asylblg_2018-12-31.csv"]
    assert lines[files].endswith(f"written to {tmp_path / 'a'}")
    total = sum(int(line.split(": ")[1].split()[0]) for line in lines[:files])
    assert lines[files].startswith(f"{total} rows in ")
    assert f"{total:,} rows" in progress[-1]

    for quiet in (["--quiet", "generate"], ["generate", "-q"]):
        again = social_monitor(*quiet, "--scale", "0.05", "--cycles", "2018", "--out", str(tmp_path / "b"))
        assert again.returncode == 0 and again.stderr == ""
        assert again.stdout.splitlines()[:4] == lines[:4]


def test_export_prints_progress_per_cycle(tmp_path, capsys):
    published = tmp_path / "marts.duckdb"
    write_published_file(published)
    assert cli.main(["export", "--published", str(published), "--out", str(tmp_path / "x")]) == 0
    captured = capsys.readouterr()
    assert [line.rsplit(":", 1)[0] for line in captured.err.splitlines()] == [
        f"social-monitor export: cycle {cycle} ({n} of {len(CYCLES)})" for n, cycle in enumerate(CYCLES, 1)]
    assert all(line.endswith(" rows") and " files, " in line for line in captured.err.splitlines())
    assert [line.split(":")[0] for line in captured.out.splitlines()] == [str(cycle) for cycle in CYCLES]
    assert cli.main(["--quiet", "export", "--published", str(published), "--out", str(tmp_path / "x")]) == 0
    assert capsys.readouterr().err == ""


def test_report_reports_each_cycle_as_it_is_written(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_report(published, out, geometry, code_property, cycles, on_cycle, city_dir):
        calls.append(cycles)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for cycle in cycles or [2018, 2025]:
            written.append(out / f"bericht_{cycle}.html")
            written[-1].write_text("<html></html>", encoding="utf-8")
            on_cycle(written[-1], len(written), len(cycles or [2018, 2025]))
        return written

    monkeypatch.setattr(report_generator, "generate_report", fake_report)
    published = tmp_path / "marts.duckdb"
    assert cli.main(["report", "--published", str(published), "--out", str(tmp_path / "r"), "--pdf", "no"]) == 0
    captured = capsys.readouterr()
    assert calls == [None]  # one call: the published file and the geometry are read once for every cycle
    err = captured.err.splitlines()
    assert len(err) == 2 and err[0].startswith("social-monitor report: report 1 of 2: bericht_2018.html in ")
    assert err[1].startswith("social-monitor report: report 2 of 2: bericht_2025.html in ")
    assert [Path(line.split()[0]).name for line in captured.out.splitlines()] == ["bericht_2018.html",
                                                                                  "bericht_2025.html"]
    assert cli.main(["report", "-q", "--published", str(published), "--out", str(tmp_path / "r"),
                     "--cycle", "2025", "--pdf", "no"]) == 0
    assert capsys.readouterr().err == "" and calls[-1] == [2025]


def test_classify_prints_reading_classifying_writing(tmp_path, capsys):
    method = tmp_path / "m.yml"
    method.write_text("id: mine\ndimensions:\n  - id: lage\n    standardisation: deviation_from_city\n"
                      "    indicators: [x]\n    classes:\n      - {code: 1, label: gut, up_to: 0}\n"
                      "      - {code: 2, label: schlecht}\n", encoding="utf-8")
    source = tmp_path / "in.csv"
    source.write_text("area_id,report_cycle,x\nA,2021,12\nB,2021,8\nSTADT,2021,10\n", encoding="utf-8")
    argv = ["classify", "--method", str(method), "--input", str(source), "--output", str(tmp_path / "o.csv"),
            "--city-area", "STADT"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[0].startswith(f"social-monitor classify: read {source}: 3 rows (wide form): 2 areas, 1 cycles")
    assert err[1] == "social-monitor classify: classifying by mine"
    assert err[2].startswith("social-monitor classify: classified 2 area-cycles in 1 cycles; writing ")
    assert f"written: {tmp_path / 'o.csv'}" in captured.out
    assert cli.main(["-q", *argv]) == 0
    assert capsys.readouterr().err == ""
