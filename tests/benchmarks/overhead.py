"""Benchmark 5: what a signed-in page costs next to a public one, under gunicorn on loopback.

Three pages, each loaded for a fixed time by the same keep-alive load generator: `/login`
(public, anonymous), `/_bench/session` (only checks the session) and `/` (the session plus the
user's 150 group names). The baseline here is the public page: the ratios are throughputs.
"""

from __future__ import annotations

from typing import Any

from tests.benchmarks.harness import (
    Workspace,
    add_groups,
    add_user,
    database_problems,
    fresh_database,
)
from tests.benchmarks.measure import percentile
from tests.benchmarks.report import Ratio, Report
from tests.benchmarks.server import Server, gunicorn, load, size_args

SIZES: dict[str, dict[str, Any]] = {
    "full": {"groups": 150, "seconds": 10.0, "concurrency": 8},
    "quick": {"groups": 150, "seconds": 3.0, "concurrency": 8},
    "smoke": {"groups": 5, "seconds": 0.3, "concurrency": 2},
}
PAGES = [
    ("public /login", "/login", False),
    ("session only", "/_bench/session", True),
    ("signed-in / (groups)", "/", True),
]
# Session only: one statement loads the user and the server-side session record (issue 11: >= 80%).
TARGETS = {"session only": 0.8, "signed-in / (groups)": 0.6}


def run(ws: Workspace, backends: list[str], size: str) -> Report:
    """Load each page for the same time and compare throughputs with the public page."""
    report = Report("overhead", "5. Signed-in page overhead vs a public page")
    sizes = SIZES[size]
    backend = "postgresql" if "postgresql" in backends else backends[0]
    user = add_user(ws, "pages", add_groups(ws, sizes["groups"], "Overhead group"))
    with (
        fresh_database(backend, ws.scratch) as url,
        gunicorn(ws, url, None, size_args(size)) as server,
    ):
        report.notes.extend(server.notes)
        ws.reset()
        load(_job(ws, server, "/", user, sizes, warm_up=True))
        report.correct("signed-in user's memberships and names", database_problems(ws, url, [user]))
        for label, path, signed_in in PAGES:
            report.rows.append(
                _measure(ws, server, label, path, user if signed_in else None, sizes)
            )
    report.notes.append(
        f"database: {backend}; concurrency {sizes['concurrency']}, {sizes['seconds']} s per page"
    )
    _compare(report)
    return report


def _job(
    ws: Workspace,
    server: Server,
    path: str,
    user: str | None,
    sizes: dict[str, Any],
    warm_up: bool = False,
) -> dict[str, Any]:
    """Return a load-generator job that requests one page."""
    return {
        "kind": "pages",
        "base": server.base_url,
        "ca": str(ws.emulator.ca_path),
        "path": path,
        "user": user,
        "concurrency": sizes["concurrency"],
        "seconds": 0.5 if warm_up else sizes["seconds"],
    }


def _measure(
    ws: Workspace, server: Server, label: str, path: str, user: str | None, sizes: dict[str, Any]
) -> dict[str, Any]:
    """Load one page and return its table row."""
    cpu = server.cpu_seconds()
    result = load(_job(ws, server, path, user, sizes))
    cpu = server.cpu_seconds() - cpu
    n = max(result["requests"], 1)
    return {
        "page": label,
        "requests": result["requests"],
        "req/s": result["requests"] / result["seconds"],
        "p50 ms": percentile(result["latency"], 50) * 1000,
        "p95 ms": percentile(result["latency"], 95) * 1000,
        "server cpu ms/req": cpu * 1000 / n,
        "statuses": ",".join(f"{k}:{v}" for k, v in sorted(result["statuses"].items())),
    }


def _compare(report: Report) -> None:
    """Add throughput ratios against the public page and check the targets."""
    rows = {r["page"]: r for r in report.rows}
    public = rows[PAGES[0][0]]
    for label, share in TARGETS.items():
        row = rows[label]
        report.ratios.append(Ratio(label, "req/s vs public", row["req/s"], public["req/s"], True))
        kept = row["req/s"] / public["req/s"] if public["req/s"] else 0.0
        report.check(f"{label} keeps ≥ {share:.0%} of the public page's throughput",
                     kept >= share, f"{kept:.0%}")  # fmt: skip
        report.correct(f"{label}: every request answered 200", _non_200(row), "all 200")


def _non_200(row: dict[str, Any]) -> list[str]:
    """Return a problem when a page answered anything but 200."""
    codes = dict(item.split(":") for item in row["statuses"].split(",") if item)
    return [] if set(codes) == {"200"} else [f"statuses {row['statuses']}"]
