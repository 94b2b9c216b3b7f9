"""Benchmark 8: how admin page time grows with the number of users (scale notes).

The portal's admin pages (the same pages and positions as benchmark 3) timed at several sizes
of the same seeded shape: users, a tenth as many groups, ten memberships per user. Only the
candidate runs: this is about growth, not about a baseline. `make bench` runs the 10,000-user
size (benchmark 3 covers 100,000); `--only scale --scale-max 1000000` adds 100,000 and
1,000,000 users (seeding a million users and ten million memberships takes minutes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from portal.extensions import db
from tests.benchmarks.admin import _admin, _check_pages, _pages, _positions, _signed_in, _time_page
from tests.benchmarks.harness import Workspace, dispose, fresh_database
from tests.benchmarks.measure import SqlCounter
from tests.benchmarks.report import Report

SIZES = {"full": [10_000, 100_000, 1_000_000], "quick": [2_000, 20_000], "smoke": [300]}
REPS = {"full": 20, "quick": 10, "smoke": 2}
DEFAULT_MAX = 10_000  # what `make bench` runs; BENCH_SCALE_MAX raises it
TARGET_MS = 50.0


def run(ws: Workspace, backends: list[str], size: str) -> Report:
    """Seed each size on each backend and time every admin page."""
    report = Report("scale", "8. Admin page time against the number of users")
    from portal.dev.seed import seed

    top = int(os.environ.get("BENCH_SCALE_MAX") or DEFAULT_MAX)
    sizes = [n for n in SIZES[size] if size != "full" or n <= top]
    for backend in backends:
        for users in sizes:
            with fresh_database(backend, ws.scratch) as url:
                app = ws.build_app(url)
                try:
                    _measure(report, app, backend, users, seed, REPS[size])
                finally:
                    dispose(app)
    _summary(report)
    return report


def _measure(
    report: Report, app: Flask, backend: str, users: int, seed: Callable[..., Any], reps: int
) -> None:
    """Seed `users` users and time each admin page."""
    with app.app_context():
        start = time.perf_counter()
        seed(users, max(users // 10, 10), users * 10, seed=1)
        seconds = time.perf_counter() - start
        report.notes.append(f"{backend}: {users:,} users seeded in {seconds:.0f} s")
        admin_id, positions = _admin(), _positions()
        counter = SqlCounter(db.engine)
    client = _signed_in(app, admin_id)
    _check_pages(report, app, client, f"{backend} {users:,} users", positions)
    try:
        for label, path in _pages(app, positions):
            row = _time_page(client, counter, backend, label, path, reps)
            report.rows.append({"users": users, **row})
    finally:
        counter.close()


def _summary(report: Report) -> None:
    """Check the 50 ms p95 target at every size measured."""
    slow = [f"{r['db']} {r['users']:,} {r['page']} {r['p95 ms']:.0f} ms" for r in report.rows
            if r["p95 ms"] > TARGET_MS]  # fmt: skip
    report.check(f"every page p95 ≤ {TARGET_MS:.0f} ms at every size", not slow,
                 ", ".join(slow) or "all")  # fmt: skip
