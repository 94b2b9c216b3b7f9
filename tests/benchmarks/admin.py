"""Benchmark 3: admin pages at 100,000 users, 10,000 groups and 1,000,000 memberships.

Candidate: the portal's pages through the test client (server time: the time around
`client.get`, template rendering included), and each page's own query timed alone. Baselines:
OFFSET plus exact COUNT, and lazy loading per row (tests/benchmarks/admin_baselines.py), timed
as bare queries, so the targets compare query with query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from portal.admin import users as users_view
from portal.extensions import db
from portal.models import Group, GroupMembership, User
from portal.models.group import ALL_USERS
from tests.benchmarks import admin_baselines as naive
from tests.benchmarks.harness import Workspace, dispose, fresh_database
from tests.benchmarks.measure import SqlCounter, percentile
from tests.benchmarks.report import Ratio, Report

SIZES: dict[str, dict[str, int]] = {
    "full": {"users": 100_000, "groups": 10_000, "memberships": 1_000_000, "reps": 20},
    "quick": {"users": 20_000, "groups": 2_000, "memberships": 200_000, "reps": 10},
    "smoke": {"users": 300, "groups": 30, "memberships": 3_000, "reps": 2},
}
BASELINE_REPS = 5
PASSWORD = "benchmark-admin-password"  # noqa: S105 - a throwaway account in a throwaway database
# (candidate page, baseline name, baseline kind) pairs compared in the ratios.
PAIRS = [
    ("users: deep page", "users: OFFSET + COUNT deep", "deep"),
    ("group members: deep page", "members: OFFSET + COUNT deep", "deep"),
    ("users: first page", "users: lazy per row", "lazy"),
    ("groups: list with counts", "groups: lazy per row", "lazy"),
    ("user page", "user page: lazy per row", "lazy"),
]


@dataclass
class Positions:
    """Where the deep pages start and which rows the pages show."""

    user_cursor: str
    user_offset: int
    members_group: int
    members_cursor: str
    members_offset: int
    user_id: int
    email: str


def run(ws: Workspace, backends: list[str], size: str) -> Report:
    """Seed each backend, then time the portal's pages and the naive queries."""
    report = Report("admin", "3. Admin pages at scale")
    from portal.dev.seed import seed

    sizes = SIZES[size]
    for backend in backends:
        with fresh_database(backend, ws.scratch) as url:
            app = ws.build_app(url)
            try:
                _backend(report, app, backend, sizes, seed)
            finally:
                dispose(app)
    _targets(report)
    return report


def _backend(report: Report, app: Flask, backend: str, sizes: dict[str, int], seed: Any) -> None:
    """Seed one database and measure every page on it."""
    with app.app_context():
        start = time.perf_counter()
        counts = seed(sizes["users"], sizes["groups"], sizes["memberships"], seed=1)
        seconds = time.perf_counter() - start
        report.notes.append(f"{backend}: seeded {counts} in {seconds:.0f} s")
        admin_id = _admin()
        positions = _positions()
        counter = SqlCounter(db.engine)
    client = _signed_in(app, admin_id)
    _check_pages(report, app, client, backend, positions)
    try:
        for label, path in _pages(app, positions):
            report.rows.append(_time_page(client, counter, backend, label, path, sizes["reps"]))
        report.rows.append(_time_export(client, counter, backend))
        with app.app_context():
            for label, query in _baselines(positions):
                report.rows.append(_time_query(counter, backend, label, query))
            for label, query in _portal_queries(positions):
                row = _time_query(counter, backend, label, query)
                report.rows.append({**row, "variant": "candidate query"})
            report.rows.append(_time_naive_export(counter, backend))
            db.session.remove()
    finally:
        counter.close()


def _admin() -> int:
    """Create a local admin account and return its id."""
    from portal.services import users

    admin = users.create_local("bench-admin", PASSWORD, is_admin=True)
    db.session.commit()
    return admin.id


def _signed_in(app: Flask, admin_id: int) -> FlaskClient:
    """Return a test client whose session belongs to the admin (as after a local sign-in)."""
    from portal.services import sessions

    with app.test_request_context():
        admin = db.session.get(User, admin_id)
        assert admin is not None  # noqa: S101  (just created)
        token = sessions.start(admin, "127.0.0.1", "benchmark")
        db.session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session["sid"] = token
    answer = client.get("/admin/users")
    if answer.status_code != 200:
        raise RuntimeError(f"the admin session does not open /admin/users: {answer.status_code}")
    return client


def _positions() -> Positions:
    """Find a deep page in the users list and in the largest group, and a busy user."""
    from portal.admin.pagination import Cursor, encode

    n_users = db.session.scalar(sa.select(sa.func.count(User.id))) or 0
    deep = n_users // 2
    name, uid = db.session.execute(
        sa.select(User.display_name, User.id).order_by(User.display_name, User.id).offset(deep)
    ).first()
    group_id = db.session.scalar(sa.select(Group.id).where(Group.name == ALL_USERS))
    members = db.session.scalar(
        sa.select(sa.func.count()).where(GroupMembership.group_id == group_id)
    )
    m_deep = (members or 0) // 2
    m_name, m_uid = db.session.execute(
        sa.select(User.display_name, User.id)
        .join(GroupMembership, GroupMembership.user_id == User.id)
        .where(GroupMembership.group_id == group_id)
        .order_by(User.display_name, User.id)
        .offset(m_deep)
    ).first()
    busy = db.session.execute(
        sa.select(GroupMembership.user_id, sa.func.count())
        .group_by(GroupMembership.user_id)
        .order_by(sa.func.count().desc())
        .limit(1)
    ).one()[0]
    email = db.session.scalar(sa.select(User.email).where(User.email.is_not(None)).limit(1))
    return Positions(
        encode(Cursor(0, (name, uid))),
        deep,
        group_id,
        encode(Cursor(0, (m_name, m_uid))),
        m_deep,
        busy,
        email or "nobody",
    )


def _check_pages(
    report: Report, app: Flask, client: FlaskClient, backend: str, p: Positions
) -> None:
    """Check that the pages show what the database holds: list pages, a user's groups, export."""
    with app.app_context():
        first = [u.display_name for u, *_ in naive.users_offset_count(0)]
        deep = [u.display_name for u, *_ in naive.users_offset_count(p.user_offset + 1)]
        # The user page shows the first page of the user's groups, by name.
        names = [name for name, *_ in naive.user_page_lazy(p.user_id)[1]]
        groups = sorted(names, key=str.lower)[: users_view.USER_PAGE_GROUPS]
        total = db.session.scalar(sa.select(sa.func.count(User.id)))
        db.session.remove()
    problems = []
    for label, path, names in (
        ("users first page", "/admin/users", first),
        ("users deep page", f"/admin/users?after={p.user_cursor}", deep),
        ("user page groups", f"/admin/users/{p.user_id}", groups),
    ):
        html = client.get(path).get_data(as_text=True)
        missing = [n for n in names if str(escape(n)) not in html]
        if missing or not names:
            problems.append(f"{label}: {len(missing)} of {len(names)} names missing")
    lines = client.get("/admin/users/export.csv").get_data().count(b"\n") - 1
    if lines != total:
        problems.append(f"export has {lines} rows for {total} users")
    report.correct(
        f"{backend}: pages show the stored users and groups", problems, "equal to the database"
    )


def _pages(app: Flask, p: Positions) -> list[tuple[str, str]]:
    """Return the candidate pages to time."""
    return [
        ("users: first page", "/admin/users"),
        ("users: deep page", f"/admin/users?after={p.user_cursor}"),
        ("users: search selective", f"/admin/users?q={p.email}"),
        ("users: search unselective", "/admin/users?q=a"),
        ("groups: list with counts", "/admin/groups"),
        ("group members: deep page", f"/admin/groups/{p.members_group}?after={p.members_cursor}"),
        ("user page", f"/admin/users/{p.user_id}"),
        ("overview", "/admin/"),
    ]


def _baselines(p: Positions) -> list[tuple[str, Callable[[], Any]]]:
    """Return the naive queries to time."""
    group, offset = p.members_group, p.members_offset
    return [
        ("users: OFFSET + COUNT deep", lambda: naive.users_offset_count(p.user_offset)),
        ("users: lazy per row", lambda: naive.users_lazy(0)),
        ("users: search unselective, OFFSET + COUNT", lambda: naive.users_offset_count(0, "a")),
        ("groups: lazy per row", lambda: naive.groups_lazy(0)),
        ("members: OFFSET + COUNT deep", lambda: naive.members_offset_count(group, offset)),
        ("user page: lazy per row", lambda: naive.user_page_lazy(p.user_id)),
    ]


def _portal_queries(p: Positions) -> list[tuple[str, Callable[[], Any]]]:
    """Return the portal's own page queries, to time alone beside the bare baseline queries."""
    from portal.admin import groups, pagination, users
    from portal.services import queries, user_groups

    def users_page(after: str | None) -> Any:
        filters = users.UserFilters.from_args({})
        return pagination.paginate(users._list_query(filters), filters.order(), after=after)

    def members_page() -> Any:
        group, _, count = groups.group_with_count(p.members_group)  # as the page loads it
        order = pagination.simple_order(User.display_name, User.id)
        query = queries.members(group)
        return pagination.paginate(query, order, after=p.members_cursor, total=count)

    def user_page(user_id: int) -> Any:
        return user_groups.with_user(user_id, size=users.USER_PAGE_GROUPS)

    def groups_page() -> Any:
        order = pagination.simple_order(Group.name, Group.id)
        return pagination.paginate(groups._list_query("", ""), order)

    return [
        ("users: first page (query)", lambda: users_page(None)),
        ("users: deep page (query)", lambda: users_page(p.user_cursor)),
        ("groups: list with counts (query)", groups_page),
        ("group members: deep page (query)", members_page),
        ("user page (query)", lambda: user_page(p.user_id)),
    ]


def _row(
    backend: str, variant: str, label: str, times: list[float], statements: float
) -> dict[str, Any]:
    """Return one table row of page timings."""
    return {
        "page": label,
        "db": backend,
        "variant": variant,
        "n": len(times),
        "p50 ms": percentile(times, 50) * 1000,
        "p95 ms": percentile(times, 95) * 1000,
        "sql stmts": statements,
    }


def _time_page(
    client: FlaskClient, counter: SqlCounter, backend: str, label: str, path: str, reps: int
) -> dict[str, Any]:
    """Request a page `reps` times (after one warm-up) and time each."""
    client.get(path)
    times, statements = [], 0
    for _ in range(reps):
        before = counter.snapshot()
        start = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - start)
        statements = counter.snapshot().minus(before).statements
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}")
    return _row(backend, "candidate", label, times, statements)


def _time_query(
    counter: SqlCounter, backend: str, label: str, query: Callable[[], Any]
) -> dict[str, Any]:
    """Run a naive query a few times (after one warm-up) and time each."""
    query()
    db.session.expunge_all()
    times, statements = [], 0
    for _ in range(BASELINE_REPS):
        before = counter.snapshot()
        start = time.perf_counter()
        query()
        times.append(time.perf_counter() - start)
        statements = counter.snapshot().minus(before).statements
        db.session.expunge_all()  # the next run must load again, as a new request would
    return _row(backend, "baseline", label, times, statements)


def _time_export(client: FlaskClient, counter: SqlCounter, backend: str) -> dict[str, Any]:
    """Stream the whole users CSV once and return its row with rows per second."""
    before = counter.snapshot()
    start = time.perf_counter()
    answer = client.get("/admin/users/export.csv")
    body = answer.get_data()
    seconds = time.perf_counter() - start
    rows = max(body.count(b"\n") - 1, 0)
    row = _row(
        backend,
        "candidate",
        "users: CSV export",
        [seconds],
        counter.snapshot().minus(before).statements,
    )
    row["rows/s"] = rows / seconds
    return row


def _time_naive_export(counter: SqlCounter, backend: str) -> dict[str, Any]:
    """Export every user the naive way once and return its row with rows per second."""
    before = counter.snapshot()
    start = time.perf_counter()
    rows = naive.export_all()
    seconds = time.perf_counter() - start
    db.session.expunge_all()
    row = _row(
        backend,
        "baseline",
        "users: CSV export, all in memory",
        [seconds],
        counter.snapshot().minus(before).statements,
    )
    row["rows/s"] = rows / seconds
    return row


def _targets(report: Report) -> None:
    """Check p95 ≤ 50 ms and ≤ 3 statements per page, the ratios and the export rate."""
    cands = [r for r in report.rows if r["variant"] == "candidate" and "export" not in r["page"]]
    for backend in sorted({r["db"] for r in cands}):
        mine = [r for r in cands if r["db"] == backend]
        slow = [f"{r['page']} {r['p95 ms']:.0f} ms" for r in mine if r["p95 ms"] > 50]
        chatty = [f"{r['page']} {r['sql stmts']}" for r in mine if r["sql stmts"] > 3]
        report.check(f"{backend}: every page p95 ≤ 50 ms", not slow, ", ".join(slow) or "all")
        report.check(
            f"{backend}: ≤ 3 SQL statements per page", not chatty, ", ".join(chatty) or "all"
        )
        _ratios(report, backend)
        export = next(
            r for r in report.rows if r["db"] == backend and r["page"] == "users: CSV export"
        )
        report.check(
            f"{backend}: export ≥ 50,000 rows/s",
            export["rows/s"] >= 50_000,
            f"{export['rows/s']:,.0f}/s",
        )


def _ratios(report: Report, backend: str) -> None:
    """Compare each page with its naive query; check 10× (deep) and 3× (lazy) query to query.

    The baselines are bare queries, so the targets compare them with the portal's own query
    timed alone (like with like); the whole-page ratio is shown beside it.
    """
    rows = {(r["page"], r["variant"]): r for r in report.rows if r["db"] == backend}
    for page, baseline, kind in PAIRS:
        base = rows[(baseline, "baseline")]
        page_row, query_row = (
            rows[(page, "candidate")],
            rows[(f"{page} (query)", "candidate query")],
        )
        report.ratios.append(
            Ratio(
                f"{backend} {page} vs {baseline}", "page p50 ms", page_row["p50 ms"], base["p50 ms"]
            )
        )
        ratio = Ratio(
            f"{backend} {page} vs {baseline}", "query p50 ms", query_row["p50 ms"], base["p50 ms"]
        )
        report.ratios.append(ratio)
        need = 10 if kind == "deep" else 3
        report.check(
            f"{backend}: {page} query ≥ {need}× faster than {baseline}",
            ratio.times >= need,
            f"{ratio.times:.1f}×",
        )
