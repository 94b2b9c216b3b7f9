"""Benchmark 6: reconciliation between sign-ins (Graph deltas) against the naive rescan.

A tenant of users, groups (some nested) and direct memberships, of which some users are known
to the portal and every group is linked to a local group. The candidate is `sync reconcile`
(users/delta and groups/delta, edges kept in the database); the naive baseline reads
`/groups/{id}/transitiveMembers` for every linked group and diffs. Both run a first full pass,
then an incremental pass after 1% of the memberships and 0.1% of the users changed.

The issue's size (100,000 users, 10,000 groups, 1,000,000 memberships, 20,000 known users) does
not fit a shared 2-core machine in a benchmark run: the emulator alone would hold the directory
in the same process. "full" is a fifth of it in every dimension; the figures scale linearly.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import requests
import sqlalchemy as sa
from flask import Flask

from portal.auth import entra
from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, User
from portal.models.base import utcnow
from portal.services import reconcile
from tests.benchmarks.harness import Workspace, dispose, fresh_database
from tests.benchmarks.measure import SqlCounter, counter_delta, graph_requests
from tests.benchmarks.report import Ratio, Report

SIZES: dict[str, dict[str, Any]] = {
    # A fifth of the size: the rescan baseline alone needs ~2,000 × 100 ms per run, so
    # it runs only with BENCH_RECONCILE_SIZE=fifth (about 15 minutes more).
    "fifth": {"users": 20000, "groups": 2000, "memberships": 200000, "known": 4000},
    "full": {"users": 5000, "groups": 500, "memberships": 50000, "known": 1000},
    "quick": {"users": 5000, "groups": 500, "memberships": 50000, "known": 1000},
    "smoke": {"users": 300, "groups": 30, "memberships": 3000, "known": 60},
}
LATENCY = {"fifth": 0.1, "full": 0.1, "quick": 0.1, "smoke": 0.0}
NESTED = 0.1  # share of groups nested in another group
CHANGED_MEMBERSHIPS = 0.01
CHANGED_USERS = 0.001
TARGET_CALLS = 50  # the incremental run makes at least this many times fewer Graph calls
TARGET_MIB = 512


def run(ws: Workspace, backends: list[str], size: str) -> Report:
    """Build the tenant once, then measure both variants on every backend."""
    report = Report("reconcile", "6. Reconciliation between sign-ins (delta vs rescan)")
    if size == "full":
        size = os.environ.get("BENCH_RECONCILE_SIZE") or size
        backends = backends[-1:]  # PostgreSQL, where operators run it; the smoke test runs both
    sizes = SIZES[size]
    report.notes.append(
        f"{sizes['users']:,} users, {sizes['groups']:,} groups ({NESTED:.0%} nested), "
        f"{sizes['memberships']:,} direct memberships, {sizes['known']:,} known users, "
        f"{LATENCY[size] * 1000:.0f} ms per call"
        + (
            "; a fifth of the issue's size in every dimension (2 shared cores)"
            if size == "fifth"
            else ""
        )
    )
    for backend in backends:
        _backend(report, ws, backend, sizes, LATENCY[size], seed=7)
    return report


def _backend(
    report: Report, ws: Workspace, backend: str, sizes: dict[str, Any], latency: float, seed: int
) -> None:
    tenant = ws.emulator.add_tenant(name=f"Reconcile bench {backend} {seed}")
    rng = random.Random(seed)
    tenant_dir = _build(ws, tenant, sizes, rng)
    with (
        fresh_database(backend, ws.scratch) as cand_url,
        fresh_database(backend, ws.scratch) as base_url,
    ):
        candidate = ws.build_app(cand_url, ENTRA_TENANT_ID=tenant, RECONCILE_MAX_CHANGES="1000000")
        baseline = ws.build_app(base_url, ENTRA_TENANT_ID=tenant)
        for app in (candidate, baseline):
            _seed(app, tenant, tenant_dir)
        ws.emulator.set_latency(fixed=latency)
        try:
            rows = {}
            for phase in ("full", "incremental"):
                if phase == "incremental":
                    ws.emulator.set_latency(fixed=0.0)
                    _mutate(ws, tenant_dir, rng)
                    ws.emulator.set_latency(fixed=latency)
                rows[(phase, "candidate")] = _measure(ws, candidate, lambda app: _candidate(app))
                rows[(phase, "baseline")] = _measure(
                    ws, baseline, lambda app: _naive(app, ws, tenant, tenant_dir)
                )
                for variant, app in (("candidate", candidate), ("baseline", baseline)):
                    report.correct(
                        f"{backend} {phase} {variant}: memberships equal Entra's",
                        _problems(app, ws, tenant_dir),
                    )
        finally:
            ws.emulator.set_latency(fixed=0.0)
            dispose(candidate)
            dispose(baseline)
    for (phase, variant), row in rows.items():
        report.rows.append({"backend": backend, "scenario": phase, "variant": variant, **row})
    for phase in ("full", "incremental"):
        cand, base = rows[(phase, "candidate")], rows[(phase, "baseline")]
        report.ratios.append(
            Ratio(f"{backend} {phase}", "graph calls", cand["graph calls"], base["graph calls"])
        )
        report.ratios.append(Ratio(f"{backend} {phase}", "wall s", cand["wall s"], base["wall s"]))
    inc = rows[("incremental", "candidate")]["graph calls"] or 1
    times = rows[("incremental", "baseline")]["graph calls"] / inc
    report.check(
        f"{backend}: incremental run makes >= {TARGET_CALLS}x fewer Graph calls",
        times >= TARGET_CALLS,
        f"{times:.0f}x",
    )
    peak = rows[("full", "candidate")]["peak MiB"]
    report.check(
        f"{backend}: full run fits in {TARGET_MIB} MiB", peak < TARGET_MIB, f"{peak:.0f} MiB"
    )


# -- the tenant --------------------------------------------------------------------------------


def _build(ws: Workspace, tenant: str, sizes: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Create users, groups (some nested, no cycles) and random direct memberships."""
    emu = ws.emulator
    users = [
        emu.add_user(tenant, f"User {i}", f"u{i}@{tenant[:8]}.example")
        for i in range(sizes["users"])
    ]
    groups = [emu.add_group(tenant, f"Group {i:05d}") for i in range(sizes["groups"])]
    for index in range(1, len(groups)):
        if rng.random() < NESTED:
            emu.add_member(groups[rng.randrange(index)], groups[index])
    pairs: set[tuple[str, str]] = set()
    while len(pairs) < sizes["memberships"]:
        pairs.add((rng.choice(groups), rng.choice(users)))
    for group, user in pairs:
        emu.add_member(group, user)
    return {"users": users, "groups": groups, "known": users[: sizes["known"]], "pairs": pairs}


def _seed(app: Flask, tenant: str, tenant_dir: dict[str, Any]) -> None:
    """Insert the known users and a linked local group per Entra group."""
    now = utcnow()
    with app.app_context():
        db.session.execute(
            sa.insert(User),
            [
                {
                    "tenant_id": tenant,
                    "object_id": oid,
                    "user_type": "External",
                    "display_name": f"Known {i}",
                    "is_active": True,
                    "is_admin": False,
                    "created_at": now,
                }
                for i, oid in enumerate(tenant_dir["known"])
            ],
        )
        names = {gid: f"Group {i:05d}" for i, gid in enumerate(tenant_dir["groups"])}
        db.session.execute(
            sa.insert(EntraGroup),
            [
                {"object_id": g, "tenant_id": tenant, "display_name": n, "read_at": now}
                for g, n in names.items()
            ],
        )
        ids = dict(db.session.execute(sa.select(EntraGroup.object_id, EntraGroup.id)).all())
        db.session.execute(
            sa.insert(Group),
            [
                {
                    "name": n,
                    "source": "entra",
                    "description": "",
                    "entra_group_id": ids[g],
                    "created_at": now,
                }
                for g, n in names.items()
            ],
        )
        db.session.commit()


def _mutate(ws: Workspace, tenant_dir: dict[str, Any], rng: random.Random) -> None:
    """Change 1% of the direct memberships (half removed, half added) and disable 0.1% of users."""
    emu, pairs = ws.emulator, tenant_dir["pairs"]
    count = max(2, int(len(pairs) * CHANGED_MEMBERSHIPS))
    for group, user in rng.sample(sorted(pairs), count // 2):
        emu.remove_member(group, user)
        pairs.discard((group, user))
    while count > count // 2:
        pair = (rng.choice(tenant_dir["groups"]), rng.choice(tenant_dir["users"]))
        if pair not in pairs:
            emu.add_member(*pair)
            pairs.add(pair)
            count -= 1
    for user in rng.sample(
        tenant_dir["users"], max(1, int(len(tenant_dir["users"]) * CHANGED_USERS))
    ):
        emu.set_user(user, account_enabled=False)


# -- the two variants --------------------------------------------------------------------------


def _measure(ws: Workspace, app: Flask, work: Any) -> dict[str, Any]:
    """Run one variant once: Graph calls, wall time, rows written and peak traced memory."""
    with app.app_context():
        counter = SqlCounter(db.engine)
    before = ws.emulator.counters
    tracemalloc.start()
    start = time.perf_counter()
    try:
        work(app)
    finally:
        wall = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tally = counter.snapshot()
        counter.close()
    return {
        "graph calls": graph_requests(counter_delta(before, ws.emulator.counters)),
        "wall s": round(wall, 2),
        "rows written": tally.rows_written,
        "peak MiB": round(peak / 2**20, 1),
    }


def _candidate(app: Flask) -> None:
    with app.app_context():
        outcome = reconcile.run(entra.graph_app_token, force=True)
        if outcome.status != "ok":
            raise RuntimeError(f"reconcile {outcome.status}: {outcome.reason}")


def _naive(app: Flask, ws: Workspace, tenant: str, tenant_dir: dict[str, Any]) -> None:
    """Per linked group, read its transitive members; then diff every known user's memberships."""
    with app.app_context():
        token = entra.graph_app_token(tenant)
        session = requests.Session()
        session.trust_env = False
        session.verify = str(ws.emulator.ca_path)
        session.headers["Authorization"] = f"Bearer {token}"
        linked = dict(
            db.session.execute(
                sa.select(EntraGroup.object_id, Group.id).join(
                    Group, Group.entra_group_id == EntraGroup.id
                )
            ).all()
        )
        known = dict(db.session.execute(sa.select(User.object_id, User.id)).all())
        wanted: set[tuple[int, int]] = set()
        for object_id, group_id in linked.items():
            for member in _pages(
                session,
                f"{ws.emulator.url}/v1.0/groups/{object_id}/transitiveMembers?$select=id&$top=999",
            ):
                if member in known:
                    wanted.add((group_id, known[member]))
        have = {
            (g, u): m
            for m, g, u in db.session.execute(
                sa.select(GroupMembership.id, GroupMembership.group_id, GroupMembership.user_id)
            )
        }
        gone = [m for key, m in have.items() if key not in wanted]
        new = [
            {"group_id": g, "user_id": u, "source": "entra", "created_at": utcnow()}
            for g, u in wanted
            if (g, u) not in have
        ]
        for start in range(0, len(gone), 500):
            db.session.execute(
                sa.delete(GroupMembership).where(GroupMembership.id.in_(gone[start : start + 500]))
            )
        if new:
            db.session.execute(sa.insert(GroupMembership), new)
        db.session.commit()


def _pages(session: requests.Session, url: str | None) -> Iterator[str]:
    while url:
        answer = session.get(url, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        yield from (item["id"] for item in body["value"])
        url = body.get("@odata.nextLink")


def _problems(app: Flask, ws: Workspace, tenant_dir: dict[str, Any]) -> list[str]:
    """Compare every known user's Entra memberships with the emulator's transitive groups."""
    problems: list[str] = []
    with app.app_context():
        names = dict(db.session.execute(sa.select(Group.id, Group.name)).all())
        stored: dict[str, set[str]] = {}
        query = sa.select(User.object_id, GroupMembership.group_id).join(
            GroupMembership, GroupMembership.user_id == User.id
        )
        for oid, gid in db.session.execute(query):
            stored.setdefault(oid, set()).add(names[gid])
        db.session.remove()
    for oid in tenant_dir["known"]:
        want = {ws.emulator.group(g).display_name for g in ws.emulator.transitive_group_ids(oid)}
        have = stored.get(oid, set())
        if have != want:
            problems.append(f"user {oid[:8]}: {len(want - have)} missing, {len(have - want)} extra")
    return problems
