"""Benchmark 7: purging session records at 1,000,000 rows, one tenth of them dead.

Candidate: the portal's purge, which reads one indexed column (`expires_at`): a batch of 500 as
sign-ins run, and `flask sessions purge` (batches of 10,000). Baseline: the same purge written
against the columns that say a session is over (ended, idle, too old), none of them indexed for it.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from portal.cli.sessions import BATCH
from portal.extensions import db
from portal.models import User, UserSession
from portal.models.base import UTCDateTime
from portal.services import sessions
from tests.benchmarks.harness import Workspace, dispose, fresh_database
from tests.benchmarks.report import Ratio, Report

SIZES: dict[str, dict[str, int]] = {
    "full": {"records": 1_000_000, "users": 1000, "reps": 5},
    "quick": {"records": 200_000, "users": 1000, "reps": 5},
    "smoke": {"records": 2_000, "users": 20, "reps": 2},
}
DEAD_EVERY = 10  # one record in ten ended more than a day ago
IDLE, MAX_AGE = timedelta(hours=1), timedelta(hours=12)
STEADY_BATCH_TARGET_MS = 5.0


def run(ws: Workspace, backends: list[str], size: str) -> Report:
    """Seed the records on each backend and time the candidate's and the baseline's purges."""
    report = Report("purge", "7. Purging session records (one tenth dead)")
    sizes = SIZES[size]
    for backend in backends:
        with fresh_database(backend, ws.scratch) as url:
            app = ws.build_app(url)
            try:
                with app.app_context():
                    _run_backend(report, app, backend, sizes)
            finally:
                dispose(app)
    _compare(report)
    return report


def _run_backend(report: Report, app: Flask, backend: str, sizes: dict[str, int]) -> None:
    """Measure batches with dead rows, full purges, and batches once nothing is left."""
    records, reps = sizes["records"], sizes["reps"]
    now = datetime.now(UTC)
    seed_seconds = _seed(now, sizes["users"], records, 0, everyone=True)
    report.notes.append(f"{backend}: seeded {records:,} records in {seed_seconds:.1f} s")
    dead, alive = records // DEAD_EVERY, records - records // DEAD_EVERY
    for variant, batch in (("candidate", _candidate_batch), ("baseline", _baseline_batch)):
        report.rows.append(_row(backend, "batch of 500, dead rows present", variant, batch, reps))
    start = time.perf_counter()
    _candidate_full()
    report.rows.append(_single(backend, "purge everything dead", "candidate", start))
    report.correct(f"{backend}: candidate purged exactly the dead", _left(alive, 0))
    for variant, batch in (("candidate", _candidate_batch), ("baseline", _baseline_batch)):
        report.rows.append(_row(backend, "batch of 500, nothing dead", variant, batch, reps))
    _seed(now, sizes["users"], dead * DEAD_EVERY, records, everyone=False)
    start = time.perf_counter()
    _baseline_full(now)
    report.rows.append(_single(backend, "purge everything dead", "baseline", start))
    report.correct(f"{backend}: baseline purged exactly the dead", _left(alive, 0))


def _seed(now: datetime, users: int, count: int, offset: int, *, everyone: bool) -> float:
    """Insert `count` records (only the dead tenth unless `everyone`) in one statement."""
    start = time.perf_counter()
    if offset == 0:
        _users(users)
    first_user = db.session.scalar(sa.select(sa.func.min(User.id)))
    old, alive = now - timedelta(days=2), now - timedelta(minutes=5)
    dialect = db.session.get_bind().dialect.name
    # Integers of our own making only: nothing from outside reaches this SQL text.
    numbers = (
        f"WITH RECURSIVE n(i) AS (SELECT {offset + 1} UNION ALL SELECT i + 1 FROM n "  # noqa: S608
        f"WHERE i < {offset + count}) "
        if dialect == "sqlite"
        else ""
    )
    source = (
        "FROM n"
        if dialect == "sqlite"
        else f"FROM generate_series({offset + 1}, {offset + count}) AS n(i)"
    )
    token = "printf('%064d', i)" if dialect == "sqlite" else "lpad(i::text, 64, '0')"
    dead = f"i % {DEAD_EVERY} = 0"
    statement = sa.text(
        f"{numbers}INSERT INTO user_sessions (token_hash, user_id, started_at, last_seen_at, "
        "expires_at, address, user_agent, ended_at, end_reason) "
        f"SELECT {token}, :first + i % :users, "
        f"CASE WHEN {dead} THEN :old ELSE :started END, "
        f"CASE WHEN {dead} THEN :old ELSE :alive END, "
        f"CASE WHEN {dead} THEN :old ELSE :expires END, '192.0.2.1', 'benchmark', "
        f"CASE WHEN {dead} THEN :old END, CASE WHEN {dead} THEN 'logout' END "
        f"{source}" + ("" if everyone else f" WHERE {dead}")
    ).bindparams(
        *(
            sa.bindparam(name, type_=UTCDateTime())
            for name in ("old", "started", "alive", "expires")
        )
    )
    db.session.execute(
        statement,
        {
            "first": first_user,
            "users": users,
            "old": old,
            "started": now - timedelta(hours=1),
            "alive": alive,
            "expires": alive + IDLE,
        },
    )
    db.session.commit()
    if dialect == "postgresql":
        db.session.execute(sa.text("ANALYZE user_sessions"))
        db.session.commit()
    return time.perf_counter() - start


def _users(count: int) -> None:
    """Insert the users the records belong to."""
    rows = [
        {"username": f"purge-{i}", "user_type": "Local", "display_name": f"Purge {i}"}
        for i in range(count)
    ]
    db.session.execute(
        sa.insert(User).values(is_active=True, is_admin=False, created_at=datetime.now(UTC)), rows
    )
    db.session.commit()


def _naive_dead(now: datetime) -> sa.ColumnElement[bool]:
    """Say a record is over a day past its end from the columns alone, as a naive purge would."""
    cut = now - sessions.KEEP_ENDED
    return sa.or_(
        UserSession.ended_at < cut,
        UserSession.last_seen_at < cut - IDLE,
        UserSession.started_at < cut - MAX_AGE,
    )


def _candidate_batch() -> int:
    """One batch as a sign-in runs it."""
    count = sessions.purge(sessions.PURGE_BATCH)
    db.session.commit()
    return count


def _baseline_batch() -> int:
    """One batch of the naive purge."""
    batch = sa.select(UserSession.id).where(_naive_dead(datetime.now(UTC)))
    batch = batch.limit(sessions.PURGE_BATCH).scalar_subquery()
    count = db.session.execute(sa.delete(UserSession).where(UserSession.id.in_(batch))).rowcount
    db.session.commit()
    return int(count)


def _candidate_full() -> None:
    """Purge everything dead as `flask sessions purge` does."""
    while sessions.purge(BATCH):
        db.session.commit()
    db.session.commit()


def _baseline_full(now: datetime) -> None:
    """Purge everything dead in one naive statement."""
    db.session.execute(sa.delete(UserSession).where(_naive_dead(now)))
    db.session.commit()


def _row(backend: str, scenario: str, variant: str, batch: Any, reps: int) -> dict[str, Any]:
    """Time `reps` batches and return the median as a table row."""
    seconds, deleted = [], 0
    for _ in range(reps):
        start = time.perf_counter()
        deleted += batch()
        seconds.append(time.perf_counter() - start)
    return {
        "database": backend,
        "scenario": scenario,
        "variant": variant,
        "ms": statistics.median(seconds) * 1000,
        "deleted": deleted,
    }


def _single(backend: str, scenario: str, variant: str, start: float) -> dict[str, Any]:
    """Return a table row for one timed purge that began at `start`."""
    return {
        "database": backend,
        "scenario": scenario,
        "variant": variant,
        "ms": (time.perf_counter() - start) * 1000,
        "deleted": None,
    }


def _left(alive: int, dead: int) -> list[str]:
    """Compare the records left with what should be: every live one, no dead one."""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) or 0
    dead_left = db.session.scalar(
        sa.select(sa.func.count()).where(UserSession.ended_at.is_not(None))
    )
    if (total - (dead_left or 0), dead_left) == (alive, dead):
        return []
    return [
        f"left {total - (dead_left or 0)} live and {dead_left} dead, expected {alive} and {dead}"
    ]


def _compare(report: Report) -> None:
    """Add candidate/baseline ratios and check the steady-state batch target."""
    by = {(r["database"], r["scenario"], r["variant"]): r for r in report.rows}
    for (backend, scenario, variant), row in by.items():
        if variant == "candidate" and (base := by.get((backend, scenario, "baseline"))):
            report.ratios.append(Ratio(f"{backend}: {scenario}", "ms", row["ms"], base["ms"]))
        if variant == "candidate" and scenario == "batch of 500, nothing dead":
            target = STEADY_BATCH_TARGET_MS
            report.check(
                f"{backend}: a sign-in's purge batch with nothing dead ≤ {target} ms",
                row["ms"] <= target,
                f"{row['ms']:.3g} ms",
            )
