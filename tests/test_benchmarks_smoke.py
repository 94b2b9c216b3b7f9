"""A tiny run of every benchmark, so `make bench` never rots: results must equal the ground truth.

Timings are not asserted here (they belong to `make bench`); correctness checks and the shape of
each report are. In-process benchmarks run on every backend; the gunicorn ones on the last.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.benchmarks.harness import (
    Workspace,
    add_groups,
    add_user,
    database_problems,
    fresh_database,
)
from tests.benchmarks.measure import SqlCounter, percentile
from tests.benchmarks.report import Ratio, Report

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A private emulator for the benchmarks (they change its latency, faults and counters)."""
    with Workspace.start(tmp_path_factory.mktemp("bench")) as ws:
        yield ws


def run_smoke(name: str, ws: Workspace, backend: str) -> Report:
    """Run one benchmark at its smoke size on one backend."""
    report: Report = importlib.import_module(f"tests.benchmarks.{name}").run(ws, [backend], "smoke")
    ws.reset()
    return report


def assert_sound(report: Report) -> None:
    """Assert the report measured something and every correctness check passed."""
    assert report.rows, report.render()
    assert [c for c in report.checks if c.kind == "correctness"], report.render()
    assert not report.failed, report.render()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sign_in_benchmark_results_equal_ground_truth(workspace: Workspace, backend: str) -> None:
    report = run_smoke("signin", workspace, backend)
    assert_sound(report)
    for row in report.rows:
        groups = int(row["scenario"].split()[0])
        if row["variant"] == "baseline":  # getMemberGroups, then one GET per group
            assert row["graph calls"] == groups + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_admin_benchmark_pages_equal_database(workspace: Workspace, backend: str) -> None:
    assert_sound(run_smoke("admin", workspace, backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scale_benchmark_pages_equal_database(workspace: Workspace, backend: str) -> None:
    assert_sound(run_smoke("scale", workspace, backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_reconcile_benchmark_results_equal_ground_truth(workspace: Workspace, backend: str) -> None:
    report = run_smoke("reconcile", workspace, backend)
    assert_sound(report)
    calls = {(r["scenario"], r["variant"]): r["graph calls"] for r in report.rows}
    assert calls[("incremental", "candidate")] < calls[("incremental", "baseline")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_purge_benchmark_purges_exactly_the_dead_records(
    workspace: Workspace, backend: str
) -> None:
    report = run_smoke("purge", workspace, backend)
    assert_sound(report)
    assert {row["variant"] for row in report.rows} == {"candidate", "baseline"}


@pytest.mark.parametrize("name", ["repeat", "throttle", "overhead"])
def test_gunicorn_benchmark_results_equal_ground_truth(workspace: Workspace, name: str) -> None:
    assert_sound(run_smoke(name, workspace, BACKENDS[-1]))


def test_missing_memberships_are_reported(workspace: Workspace) -> None:
    oid = add_user(workspace, "never-signed-in", add_groups(workspace, 2, "Unsynced group"))
    with fresh_database("sqlite", workspace.scratch) as url:
        problems = database_problems(workspace, url, [oid])
    assert problems == [f"user {oid[:8]}: 3 missing, 0 extra"]


def test_sql_counter_counts_statements_and_rows_written(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'count.db'}")
    counter = SqlCounter(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO t (x) VALUES (1), (2), (3)"))
        conn.execute(sa.text("UPDATE t SET x = x + 1 WHERE x > 1"))
        conn.execute(sa.text("SELECT * FROM t"))
    tally = counter.snapshot()
    counter.close()
    engine.dispose()
    assert (tally.statements, tally.rows_written, tally.rows_by_table["t"]) == (4, 5, 5)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0], 95) == pytest.approx(1.95)


def test_ratio_says_how_many_times_better_the_candidate_is() -> None:
    assert Ratio("s", "seconds", 0.5, 100.0).times == 200
    assert Ratio("s", "per second", 150.0, 50.0, higher_is_better=True).times == 3
