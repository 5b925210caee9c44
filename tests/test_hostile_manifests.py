"""Hostile manifests: generated ones (hypothesis) and the cases that once loaded the wrong delivery.

Generated: a valid manifest of an SGB XII delivery is mutated at the byte level (truncated, bytes inserted
or replaced, re-encoded as UTF-16/UTF-32, a byte order mark, padded beyond the size limit) and at the JSON
level (every field replaced by a value of every JSON type, dropped or given twice, nested values, other
sources and cycles, path tricks in ``file``, unknown and non-character encodings, a top level that is not an
object). Whatever comes out, reading the manifest and loading its delivery with the real loader ends in one
of: accepted (and then it is the landing folder's own SGB XII 2018 file that was loaded), or refused with a
``ManifestError``/``DeliveryError`` of one line, of bounded length, naming the manifest or the file. Never
another exception. And a bad manifest in the landing folder never stops the sensor: the valid deliveries
are requested and the bad manifest is reported in its skip message.

The found cases (the AsylbLG manifest copied over the SGB XII one, another cycle's manifest, a file outside
the landing folder, a symbolic link) are tested through the real loader and through a real Dagster
materialisation of the raw partition.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestration.assets.raw import raw_assets
from orchestration.jobs import new_delivery_sensor
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.deliveries import (
    MAX_MANIFEST_BYTES,
    MAX_MESSAGE,
    ManifestError,
    check_identity,
    find_manifest,
    read_manifest,
    sha256_of,
)
from social_monitor.ingest import DeliveryError, load_delivery
from social_monitor.settings import PROJECT_DIR, load_settings
from tests.deliveries import LAYOUTS, person, write_delivery

CYCLE = 2018
SGB12_ROWS = [{"Personen_ID": "p3", "Leistungsart": "GSI", "Geburtsdatum": "05.06.1940", "Unterbezirk": "341"},
              {"Personen_ID": "p7", "Leistungsart": "HLU", "Geburtsdatum": "12.12.1975", "Unterbezirk": "001"},
              {"Personen_ID": "p8", "Leistungsart": "GSI", "Geburtsdatum": "30.09.1950", "Unterbezirk": "261"}]
ASYLBLG_ROWS = [{"Personen_ID": "p4", "Geburtsdatum": "07.08.1999", "Geschlecht": "m", "Unterbezirk": "001"},
                {"Personen_ID": "p9", "Geburtsdatum": "01.01.2006", "Geschlecht": "w", "Unterbezirk": "261"}]
# A file outside the landing folder that a manifest must never load: its rows are marked, and its manifest
# fields (checksum, rows) are right for it, so only the path rules can stop it.
OUTSIDE_ROWS = [{"Personen_ID": "OUTSIDE-1", "Leistungsart": "HLU", "Geburtsdatum": "01.01.1970",
                 "Unterbezirk": "001"}]
MANIFEST = "sgb12_2018-12-31.manifest.json"
DATA = "sgb12_2018-12-31.csv"
MAX_DELIVERY_MESSAGE = 1000  # the loader's file-level refusals are one line of a few hundred characters


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    landing, outside = root / "landing", root / "outside"
    write_delivery(landing, "sgb12", CYCLE, SGB12_ROWS)
    write_delivery(outside, "sgb12", CYCLE, OUTSIDE_ROWS)
    return {"root": root, "landing": landing, "outside": outside,
            "valid": json.loads((landing / MANIFEST).read_text(encoding="utf-8")),
            "outside_manifest": json.loads((outside / MANIFEST).read_text(encoding="utf-8"))}


def _outcome(manifest_path: Path, landing: Path) -> str:
    """Read the manifest and load its delivery; check the outcome is one of the three allowed ones."""
    try:
        manifest = read_manifest(manifest_path, LAYOUTS)
    except ManifestError as exc:
        _assert_one_line(str(exc), MAX_MESSAGE)
        assert str(exc).startswith(f"{manifest_path}: "), str(exc)
        return "manifest refused"
    with duckdb.connect() as con:
        try:
            result = load_delivery(con, manifest)
        except DeliveryError as exc:
            _assert_one_line(str(exc), MAX_DELIVERY_MESSAGE)
            assert str(exc).startswith(f"{manifest.data_path.name}: "), str(exc)
            return "delivery refused"
        except ManifestError as exc:
            _assert_one_line(str(exc), MAX_MESSAGE)
            assert str(exc).startswith(f"{manifest_path}: "), str(exc)
            return "manifest refused"
        # accepted: then it is the landing folder's own file, announced as it is
        assert manifest.data_path.parent == landing and not manifest.data_path.is_symlink()
        assert manifest.sha256 == sha256_of(landing / DATA)
        assert result.rows_in == result.rows_accepted + result.rows_rejected == len(SGB12_ROWS)
        loaded = con.execute("select distinct report_cycle, source_file from raw.sgb12").fetchall()
        assert loaded == [(CYCLE, DATA)]
        return "accepted"


def _assert_one_line(message: str, limit: int) -> None:
    assert message and "\n" not in message and "\r" not in message, repr(message[:300])
    assert len(message) <= limit, len(message)


# --- generated manifests ------------------------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
LONG = st.integers(1000, 200_000).map(lambda n: "x" * n)
PATH_TRICKS = st.sampled_from([
    f"../outside/{DATA}", f"..\\outside\\{DATA}", f"./{DATA}", f"{DATA}/", f"sub/../{DATA}", "..", ".", "",
    "/etc/passwd", "C:\\Windows\\win.ini", f"{DATA}\x00", f"{DATA}\n", f"\\\\server\\share\\{DATA}",
    "sgb12_2025-12-31.csv", "asylblg_2018-12-31.csv", DATA.upper(), f"~/{DATA}", "%2e%2e%2foutside",
]) | st.lists(st.sampled_from(["..", ".", "outside", DATA, "", "landing"]), min_size=1, max_size=5).map("/".join)
FIELD_VALUES = {
    "source": st.sampled_from([*LAYOUTS, "SGB12", "wohngeld", ""]),
    "reference_date": st.sampled_from(["2025-12-31", "2012-12-31", "2018-06-30", "20181231", "31.12.2018",
                                       "2018-12-31T00:00", "2018-13-31", "２０１８-12-31", "2018-12-31 "]),
    "file": PATH_TRICKS,
    "format": st.sampled_from(["csv", "parquet", "CSV", "xlsx", ""]),
    "encoding": st.sampled_from(["utf-8", "UTF_8", "cp1252", "latin-1", "utf-16", "utf-8-sig", "ANSI", "rot13",
                                 "base64", "zlib", "undefined", "idna", "unicode_escape", "utf\x008", "mbcs", ""]),
    "delimiter": st.sampled_from([";", ",", "\t", "", ";;", '"', "\n", "\x00", None]),
    "rows": st.sampled_from([3, "3", " 3 ", 3.0, -3, 0, 10**30, "٣", "3e0", True, None, "drei"]),
    "sha256": st.sampled_from(["0" * 64, "z" * 64, "0" * 63, ""]),
    "sender": st.sampled_from(["", "Sozialamt", None]),
}


@st.composite
def json_manifests(draw, valid: dict, outside: dict) -> bytes:
    """A manifest whose fields are each kept, dropped, or replaced (by any JSON value, a plausible hostile
    value of the field, or a long string), wrapped in a top level that may not be an object."""
    base = dict(draw(st.sampled_from([valid, valid, outside])))  # the outside file's own checksum and rows
    changed = draw(st.lists(st.sampled_from(list(FIELD_VALUES)), max_size=3, unique=True))
    for field in changed:
        choice = draw(st.sampled_from(["drop", "any", "field", "field", "long"]))
        if choice == "drop":
            base.pop(field, None)
        elif choice == "any":
            base[field] = draw(JSON_VALUES)
        elif choice == "field":
            base[field] = draw(FIELD_VALUES[field])
        else:
            base[field] = draw(LONG)
    if draw(st.booleans()):
        base["extra"] = draw(JSON_VALUES)
    top = draw(st.sampled_from(["object"] * 6 + ["list", "null", "string", "number", "nested"]))
    document = {"object": base, "list": [base], "null": None, "string": json.dumps(base), "number": 3,
                "nested": {"manifest": base}}[top]
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    if top == "object" and draw(st.integers(0, 9)) == 0:  # a field given twice: the second would win
        text = '{"source": "asylblg", ' + text[1:]
    return text.encode("utf-8")


@st.composite
def byte_mutations(draw, original: bytes) -> bytes:
    """The valid manifest's bytes, changed one to three times."""
    data = original
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "insert", "replace", "delete", "encode", "bom", "pad", "nul"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        elif kind == "replace" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + draw(st.binary(min_size=1, max_size=1)) + data[at + 1:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 10)):]
        elif kind == "encode":
            codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig", "cp1252"]))
            data = data.decode("utf-8", errors="replace").encode(codec, errors="replace")
        elif kind == "bom":
            data = draw(st.sampled_from([codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])) + data
        elif kind == "pad":  # still valid JSON, but far beyond what a manifest may be
            data = data[:1] + b" " * draw(st.sampled_from([10, MAX_MANIFEST_BYTES])) + data[1:]
        elif kind == "nul":
            data = data[:at] + b"\0" + data[at:]
    return data


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_generated_json_manifests_are_accepted_or_refused_in_one_line(folders):
    seen: dict[str, int] = {}

    @given(json_manifests(folders["valid"], folders["outside_manifest"]))
    def check(data: bytes) -> None:
        outcome = _outcome(_write(folders["landing"] / MANIFEST, data), folders["landing"])
        seen[outcome] = seen.get(outcome, 0) + 1

    check()
    assert seen.get("manifest refused", 0) > 0, seen


def test_generated_byte_mutations_are_accepted_or_refused_in_one_line(folders):
    original = (folders["landing"] / MANIFEST).read_bytes()
    seen: dict[str, int] = {}

    @given(byte_mutations(original))
    def check(data: bytes) -> None:
        outcome = _outcome(_write(folders["landing"] / MANIFEST, data), folders["landing"])
        seen[outcome] = seen.get(outcome, 0) + 1

    check()
    assert seen.get("manifest refused", 0) > 0, seen


@pytest.mark.parametrize("data", [
    pytest.param(codecs.BOM_UTF8, id="UTF-8 byte order mark (accepted)"),
])
def test_a_utf8_byte_order_mark_is_accepted(folders, data):
    path = folders["landing"] / MANIFEST
    _write(path, data + json.dumps(folders["valid"]).encode("utf-8"))
    assert _outcome(path, folders["landing"]) == "accepted"


def test_utf16_null_list_and_huge_manifests_name_the_manifest(folders):
    path = folders["landing"] / MANIFEST
    valid = json.dumps(folders["valid"])
    for data, says in [(valid.encode("utf-16"), "UTF-16"), (b"null", "null, not a JSON object"),
                       (json.dumps([folders["valid"]]).encode(), "a list, not a JSON object"),
                       (b"{" + b" " * MAX_MANIFEST_BYTES + valid[1:].encode(), "more than the 65536 a manifest"),
                       (json.dumps({**folders["valid"], "rows": [3]}).encode(), "field rows is a list"),
                       (json.dumps({**folders["valid"], "encoding": "x" * 10_000}).encode(),
                        "field encoding 'xxxxxxx")]:
        _write(path, data)
        with pytest.raises(ManifestError) as raised:
            read_manifest(path, LAYOUTS)
        assert says in str(raised.value) and str(raised.value).startswith(f"{path}: ")
        _assert_one_line(str(raised.value), MAX_MESSAGE)


# --- the sensor goes on --------------------------------------------------------------------------------


def test_one_bad_manifest_does_not_stop_the_sensor(tmp_path, monkeypatch, folders):
    landing = tmp_path / "landing"
    monkeypatch.setenv("SOCIAL_MONITOR_LANDING_DIR", str(landing))
    write_delivery(landing, "register", CYCLE, [person("p1", "01.01.1980", "001")])
    write_delivery(landing, "sgb12", CYCLE, SGB12_ROWS)
    bad_path = landing / "asylblg_2018-12-31.manifest.json"
    valid = {**folders["valid"], "source": "asylblg", "file": "asylblg_2018-12-31.csv"}
    tried = {"reported": 0}

    @given(json_manifests(valid, valid) | byte_mutations(json.dumps(valid).encode()))
    def check(data: bytes) -> None:
        _write(bad_path, data)
        try:
            read_manifest(bad_path, LAYOUTS)
            problem = None
        except ManifestError as exc:
            problem = str(exc)
        with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
            first = new_delivery_sensor(context)
            assert isinstance(first, list)
            requested = {(r.partition_key, r.asset_selection[0].to_user_string()) for r in first}
            assert {("2018", "raw/register"), ("2018", "raw/sgb12")} <= requested
            if problem is not None:
                assert ("2018", "raw/asylblg") not in requested
                second = new_delivery_sensor(context)  # nothing new: the skip message reports the bad manifest
                assert isinstance(second, dg.SkipReason) and problem in second.skip_message
                tried["reported"] += 1

    check()
    assert tried["reported"] > 0


def test_sensor_reports_a_misnamed_manifest_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIAL_MONITOR_LANDING_DIR", str(tmp_path))
    write_delivery(tmp_path, "sgb12", CYCLE, SGB12_ROWS)
    (tmp_path / "SGB12_2012-12-31.manifest.json").write_text("{}", encoding="utf-8")
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        assert [r.partition_key for r in new_delivery_sensor(context)] == ["2018"]
        skipped = new_delivery_sensor(context)
        assert "SGB12_2012-12-31.manifest.json: the name does not follow" in skipped.skip_message


# --- the found cases, through the real loader ---------------------------------------------------------


def _landing_with_two_sources(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    write_delivery(landing, "sgb12", CYCLE, SGB12_ROWS)
    write_delivery(landing, "asylblg", CYCLE, ASYLBLG_ROWS)
    return landing


def test_asylblg_manifest_copied_over_the_sgb12_one_is_refused(tmp_path):
    landing = _landing_with_two_sources(tmp_path)
    shutil.copy(landing / "asylblg_2018-12-31.manifest.json", landing / MANIFEST)
    with pytest.raises(ManifestError) as raised:
        find_manifest(landing, LAYOUTS["sgb12"], CYCLE)
    message = str(raised.value)
    assert message.startswith(f"{landing / MANIFEST}: source and reference date disagree: ")
    assert "the manifest says asylblg 2018-12-31; its file name says sgb12 2018-12-31" in message


def test_another_cycles_manifest_is_refused_for_this_partition(tmp_path):
    landing = tmp_path / "landing"
    write_delivery(landing, "sgb12", 2025, SGB12_ROWS)
    (landing / MANIFEST).write_bytes((landing / "sgb12_2025-12-31.manifest.json").read_bytes())
    with pytest.raises(ManifestError, match=r"the manifest says sgb12 2025-12-31; its file name says sgb12 "
                                            r"2018-12-31; the partition being loaded is sgb12 2018-12-31"):
        find_manifest(landing, LAYOUTS["sgb12"], CYCLE)
    # the asset's source and partition are checked, not only the manifest's own name
    manifest_2025 = read_manifest(landing / "sgb12_2025-12-31.manifest.json", LAYOUTS)
    with pytest.raises(ManifestError, match=r"the partition being loaded is asylblg 2025-12-31"):
        check_identity(manifest_2025, LAYOUTS, LAYOUTS["asylblg"], 2025)
    with pytest.raises(ManifestError, match=r"the partition being loaded is sgb12 2012-12-31"):
        check_identity(manifest_2025, LAYOUTS, LAYOUTS["sgb12"], 2012)
    check_identity(manifest_2025, LAYOUTS, LAYOUTS["sgb12"], 2025)


@pytest.mark.parametrize("file", [f"../outside/{DATA}", "ABSOLUTE", f"sub/../{DATA}"])
def test_a_manifest_cannot_name_a_file_outside_the_landing_folder(folders, tmp_path, file):
    landing = tmp_path / "landing"
    landing.mkdir()
    target = str(folders["outside"] / DATA) if file == "ABSOLUTE" else file
    (landing / MANIFEST).write_text(json.dumps({**folders["outside_manifest"], "file": target}), encoding="utf-8")
    with pytest.raises(ManifestError, match=r"field file .* is not a bare file name in the landing folder"):
        find_manifest(landing, LAYOUTS["sgb12"], CYCLE)


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_a_symbolic_link_is_not_a_delivery(folders, tmp_path, where):
    """A link to a file outside (any file on the machine), or to another file inside the landing folder,
    is refused without reading it; its content never reaches the message."""
    landing = tmp_path / "landing"
    landing.mkdir()
    target = folders["outside"] / DATA if where == "outside" else landing / "elsewhere.csv"
    if where == "inside":
        shutil.copy(folders["outside"] / DATA, target)
    (landing / DATA).symlink_to(target)
    (landing / MANIFEST).write_text(json.dumps(folders["outside_manifest"]), encoding="utf-8")  # right checksum
    with duckdb.connect() as con, pytest.raises(DeliveryError) as raised:
        load_delivery(con, find_manifest(landing, LAYOUTS["sgb12"], CYCLE))
    assert str(raised.value).startswith(f"{DATA}: is a symbolic link; a delivery must be a regular file")
    assert "OUTSIDE-1" not in str(raised.value) and str(target) not in str(raised.value)


def test_a_linked_manifest_and_a_pipe_are_refused_without_reading_them(folders, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / MANIFEST).symlink_to(folders["outside"] / MANIFEST)
    with pytest.raises(ManifestError, match="the manifest is a symbolic link"):
        find_manifest(landing, LAYOUTS["sgb12"], CYCLE)
    (landing / MANIFEST).unlink()
    os.mkfifo(landing / DATA)  # reading it would block forever
    (landing / MANIFEST).write_text(json.dumps(folders["valid"]), encoding="utf-8")
    with duckdb.connect() as con, pytest.raises(DeliveryError, match=r"is not a regular file"):
        load_delivery(con, find_manifest(landing, LAYOUTS["sgb12"], CYCLE))


# --- the found cases, through a real Dagster materialisation ------------------------------------------


def _materialize_sgb12(tmp_path: Path, landing: Path) -> dg.ExecuteInProcessResult:
    asset = next(a for a in raw_assets if isinstance(a, dg.AssetsDefinition) and a.key == dg.AssetKey(["raw", "sgb12"]))
    return dg.materialize(
        [asset], partition_key=str(CYCLE), raise_on_error=False, instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
                   "pipeline": PipelineSettings(landing_dir=str(landing), published_path=str(tmp_path / "pub.duckdb"),
                                                config_path=str(load_settings({}).config_path))})


def _failure(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    [event] = result.get_step_failure_events()
    return event.step_failure_data.user_failure_data.description


def test_dagster_refuses_the_asylblg_manifest_copied_over_the_sgb12_one(tmp_path):
    landing = _landing_with_two_sources(tmp_path)
    shutil.copy(landing / "asylblg_2018-12-31.manifest.json", landing / MANIFEST)
    cause = _failure(_materialize_sgb12(tmp_path, landing))
    assert cause.startswith(f"{landing / MANIFEST}: source and reference date disagree")
    assert "the manifest says asylblg 2018-12-31" in cause and "the partition being loaded is sgb12 2018-12-31" in cause
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:  # nothing was loaded
        assert con.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                           "and table_name = 'deliveries'").fetchone()[0] == 0


def test_dagster_refuses_a_link_out_of_the_landing_folder_and_then_loads_the_real_file(folders, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / DATA).symlink_to(folders["outside"] / DATA)
    (landing / MANIFEST).write_text(json.dumps(folders["outside_manifest"]), encoding="utf-8")
    cause = _failure(_materialize_sgb12(tmp_path, landing))
    assert cause.startswith(f"{DATA}: is a symbolic link") and "OUTSIDE-1" not in cause

    (landing / DATA).unlink()
    write_delivery(landing, "sgb12", CYCLE, SGB12_ROWS)
    assert _materialize_sgb12(tmp_path, landing).success
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert con.execute("select count(*) from raw.sgb12 where report_cycle = ?", [CYCLE]).fetchone()[0] == 3


# --- the catalogue -------------------------------------------------------------------------------------

# The kinds of this file and tests/test_pseudonym_key.py, as docs/bad-input.md lists them
HOSTILE_KINDS = [
    "another source's manifest under this name", "another cycle's manifest under this name",
    "manifest names a file outside the landing folder", "delivery is a symbolic link",
    "delivery is not a regular file", "manifest is a symbolic link, a folder or a pipe",
    "manifest is UTF-16 or UTF-32", "manifest with a UTF-8 byte order mark", "manifest is not a JSON object",
    "manifest field of the wrong JSON type", "manifest field given twice", "manifest too large",
    "encoding that is no character set", "separator that cannot be one", "format that is neither csv nor parquet",
    "reference date not plain YYYY-MM-DD", "load under another pseudonym key",
    "warehouse loaded before key fingerprints were recorded",
]


def test_every_hostile_kind_is_documented():
    documented = (PROJECT_DIR / "docs" / "bad-input.md").read_text(encoding="utf-8")
    assert [kind for kind in HOSTILE_KINDS if f"| {kind} |" not in documented] == []


@pytest.mark.parametrize(("field", "value", "says"), [
    ("file", {"a": 1}, "field file is an object, expected a string"),
    ("encoding", 1252, "field encoding is a number, expected a string"),
    ("source", None, "field source is null, expected a string"),
    ("encoding", "rot13", "field encoding 'rot13' is not a character encoding"),
    ("delimiter", ";;", "field delimiter ';;' is not one character"),
    ("format", "xlsx", "field format 'xlsx' is not one of csv, parquet"),
    ("reference_date", "20181231", "field reference_date '20181231' is not YYYY-MM-DD"),
])
def test_each_field_is_named(folders, tmp_path, field, value, says):
    path = tmp_path / MANIFEST
    path.write_text(json.dumps({**folders["valid"], field: value}), encoding="utf-8")
    with pytest.raises(ManifestError) as raised:
        read_manifest(path, LAYOUTS)
    assert str(raised.value) == f"{path}: {says}" or str(raised.value).startswith(f"{path}: {says}")


def test_a_field_given_twice_is_refused(folders, tmp_path):
    path = tmp_path / MANIFEST
    path.write_text('{"source": "asylblg", ' + json.dumps(folders["valid"])[1:], encoding="utf-8")
    with pytest.raises(ManifestError, match=r": field 'source' is given twice$"):
        read_manifest(path, LAYOUTS)
