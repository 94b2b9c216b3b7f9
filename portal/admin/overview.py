"""The admin overview: recent sign-ins, failed syncs, the last reconciliation, admins and groups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import render_template

from portal.admin import bp
from portal.admin.pagination import COUNT_CAP
from portal.extensions import db
from portal.models import Group, ReconcileRun, SyncRecord, User
from portal.models.base import utcnow
from portal.models.sync import FAILED
from portal.services import queries

PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
ADMINS_SHOWN = 10
SOURCES = ("entra", "local", "builtin")


@dataclass(frozen=True)
class Summary:
    """The overview's counts and the last reconciliation run (None before the first)."""

    active: dict[str, int]
    failed: int
    groups: dict[str, int]
    last_run: ReconcileRun | None


def summary() -> Summary:
    """Count users by recent sign-in, failed syncs, groups by source; load the last run.

    One statement of one-row parts: the user counts stop at the lists' cap (exact counts cost
    57 ms at 100,000 users and 240 ms at 1,000,000), the groups are counted in one scan, the
    failed syncs on the (status, time) index, and the run is an outer join.
    """
    now = utcnow()
    users = [_capped_users().label("all")]
    users += [
        _capped_users(User.last_login_at >= now - span).label(n) for n, span in PERIODS.items()
    ]
    groups = sa.select(
        *(sa.func.count(Group.id).filter(Group.source == s).label(s) for s in SOURCES)
    ).subquery()
    failed = sa.select(sa.func.count(SyncRecord.id)).where(
        SyncRecord.status == FAILED, SyncRecord.synced_at >= now - PERIODS["day"]
    )
    latest = sa.select(ReconcileRun.id).order_by(
        ReconcileRun.started_at.desc(), ReconcileRun.id.desc()
    )
    query = (
        sa.select(*users, groups, failed.scalar_subquery().label("failed"), ReconcileRun)
        .select_from(groups)
        .outerjoin(ReconcileRun, ReconcileRun.id == latest.limit(1).scalar_subquery())
    )
    row = db.session.execute(query).one()._mapping
    return Summary(
        active={name: row[name] for name in ("all", *PERIODS)},
        failed=row["failed"] or 0,
        groups={source: row[source] or 0 for source in SOURCES},
        last_run=row[ReconcileRun],
    )


def _capped_users(*where: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    """Count the users `where` picks, up to COUNT_CAP + 1 (an index range scan)."""
    return queries.capped_count(sa.select(User.id).where(*where), COUNT_CAP)


def admins() -> tuple[list[User], int]:
    """Return the first admins by name and how many there are."""
    count = sa.select(sa.func.count(User.id)).where(User.is_admin).scalar_subquery()
    query = (
        sa.select(User, count)
        .where(User.is_admin)
        .order_by(User.display_name, User.username, User.id)
        .limit(ADMINS_SHOWN)
    )
    rows = db.session.execute(query).all()
    return [user for user, _ in rows], (rows[0][1] if rows else 0)


@bp.get("/")
def overview() -> str:
    """Show the console's overview with links into the lists, in three statements."""
    admin_list, admin_count = admins()
    found = summary()
    return render_template(
        "admin/overview.html",
        cap=COUNT_CAP,
        active=found.active,
        failed=found.failed,
        admins=admin_list,
        admin_count=admin_count,
        groups=found.groups,
        run=found.last_run,
    )
