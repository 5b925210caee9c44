"""BI tools: Superset and Metabase reach DuckDB through SQLAlchemy and duckdb-engine. Such a client opens the
published file read-only, lists its tables and reads every one of them while a run publishes a new file.

A small real sample city (the generator and one Dagster run of every asset), then a background process that
republishes it (social_monitor.publish, the step of published/marts) while this process connects through a
SQLAlchemy engine, a new connection per iteration (NullPool, Superset's default for analytical databases).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from schemas.published import DOCUMENTED_TABLES
from tests.pipeline_env import BIN, DAGSTER, environment, sh
from tests.waiting import CEILING_SECONDS

PUBLICATIONS = 2  # each runs the disclosure audit (linear programs, about a minute here)
TABLES = list(DOCUMENTED_TABLES)
# a small city: the file is small, the read loop fast. At scale 0.05 the secondary suppression does not converge
SCALE = "0.1"  # (a known limit, README "Privacy"): publication then fails with a clear error


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """A warehouse of the real pipeline: the sample city, every asset materialised in one Dagster run."""
    root = tmp_path_factory.mktemp("bi_tools")
    env = environment(root)
    sh(env, str(BIN / "social-monitor"), "generate", "--out", str(root / "data" / "landing"), "--scale", SCALE)
    sh(env, *DAGSTER, "asset", "materialize", "-m", "orchestration.definitions", "--select", "*",
       "--partition-range", "2007...2025")
    assert (root / "data" / "published" / "marts.duckdb").exists()
    return root / "data" / "warehouse" / "warehouse.duckdb"


def engine_for(path: Path) -> sa.Engine:
    """The engine a BI tool creates: duckdb-engine, read-only (``connect_args``, duckdb-engine's README)."""
    return sa.create_engine(f"duckdb:///{path.as_posix()}", connect_args={"read_only": True}, poolclass=NullPool)


def _republish(warehouse: str, target: str, started, results) -> None:
    from social_monitor.publish import publish

    durations = []
    started.set()
    for run in range(1, PUBLICATIONS + 1):
        begun = time.perf_counter()
        publish(Path(warehouse), Path(target), city_name=f"Lauf {run}")
        durations.append(time.perf_counter() - begun)
    results.put(durations)


def test_a_bi_tool_reads_every_published_table_while_a_run_publishes(warehouse, tmp_path, record_property):
    from social_monitor.publish import publish

    target = tmp_path / "published" / "marts.duckdb"
    publish(warehouse, target, city_name="Lauf 0")
    engine = engine_for(target)
    context = multiprocessing.get_context("spawn")
    started, results = context.Event(), context.Queue()
    publisher = context.Process(target=_republish, args=(str(warehouse), str(target), started, results))
    publisher.start()
    assert started.wait(timeout=CEILING_SECONDS), "the publishing process did not start"

    reads, failed, mixed, connections = Counter(), Counter(), 0, 0
    listed: set[str] = set()
    errors: list[str] = []
    began = time.perf_counter()
    try:
        while publisher.is_alive() or connections < 3:
            connections += 1
            try:
                with engine.connect() as conn:  # a new DuckDB connection: the file published last
                    listed |= set(sa.inspect(conn).get_table_names())
                    announced = dict(conn.execute(sa.text("select table_name, row_count from publication")).all())
                    for table in TABLES:
                        try:
                            rows = conn.execute(sa.text(f'select count(*) from "{table}"')).scalar_one()
                            sample = conn.execute(sa.text(f'select * from "{table}" limit 5')).all()
                            assert len(sample) == min(rows, 5)
                            reads[table] += 1
                            if table in announced and rows != announced[table]:
                                mixed += 1  # counts of one file, announced by another: never
                        except Exception as error:  # noqa: BLE001 - every failed read is counted
                            failed[table] += 1
                            errors.append(f"{table}: {type(error).__name__}: {error}"[:300])
            except Exception as error:  # noqa: BLE001 - a refused connection counts as a failed read
                failed["<connect>"] += 1
                errors.append(f"connect: {type(error).__name__}: {error}"[:300])
    finally:
        publisher.join(timeout=CEILING_SECONDS)
        if publisher.is_alive():
            publisher.kill()
    seconds = time.perf_counter() - began
    assert publisher.exitcode == 0, "the publishing process failed"
    durations = results.get(timeout=CEILING_SECONDS)
    done, lost = sum(reads.values()), sum(failed.values())
    print(f"\n{connections} connections, {PUBLICATIONS} publications ({sum(durations):.1f} s) in {seconds:.1f} s: "
          f"{done} table reads ok, {lost} failed, {mixed} mixed")
    for name, figure in [("connections", connections), ("publications", PUBLICATIONS), ("reads_ok", done),
                         ("reads_failed", lost), ("reads_mixed", mixed)]:
        record_property(name, figure)
    assert lost == 0, errors[:5]
    assert mixed == 0
    assert listed == set(TABLES)  # the inspector lists exactly the published tables
    assert all(reads[table] >= 1 for table in TABLES), reads
    # the reads really ran while the file was replaced, not before or after it
    assert connections > PUBLICATIONS and done > PUBLICATIONS * len(TABLES)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select any_value(city_name) from publication")).scalar_one() == \
            f"Lauf {PUBLICATIONS}"
    engine.dispose()


def test_the_read_only_engine_refuses_to_write(warehouse, tmp_path):
    from social_monitor.publish import publish

    target = tmp_path / "marts.duckdb"
    publish(warehouse, target, city_name="Nur lesen")
    engine = engine_for(target)
    for statement in ["create table notes (note varchar)", "delete from areas",
                      "insert into publication select * from publication", "drop table action_areas"]:
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from areas")).scalar_one() > 0
        assert "notes" not in sa.inspect(conn).get_table_names()
    engine.dispose()
