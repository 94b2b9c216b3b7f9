"""The admin overview: recent sign-ins, failed syncs, admins and groups, linking into lists."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import render_template

from portal.admin import bp
from portal.extensions import db
from portal.models import Group, SyncRecord, User
from portal.models.base import utcnow
from portal.models.sync import FAILED

PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
ADMINS_SHOWN = 10


def active_users() -> dict[str, int]:
    """Count all users and those signed in within each period, in one statement."""
    now = utcnow()
    counts = [sa.func.count(User.id)] + [
        sa.func.count(User.id).filter(User.last_login_at >= now - span) for span in PERIODS.values()
    ]
    row = db.session.execute(sa.select(*counts)).one()
    return dict(zip(["all", *PERIODS], row, strict=True))


def failed_syncs_last_day() -> int:
    """Count the sync records of the last day that failed (by the status, time index)."""
    since = utcnow() - PERIODS["day"]
    query = sa.select(sa.func.count(SyncRecord.id)).where(
        SyncRecord.status == FAILED, SyncRecord.synced_at >= since
    )
    return db.session.scalar(query) or 0


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


def groups_by_source() -> dict[str, int]:
    """Count groups per source: Entra, local and built-in."""
    query = sa.select(Group.source, sa.func.count(Group.id)).group_by(Group.source)
    found = dict(db.session.execute(query).tuples().all())
    return {source: found.get(source, 0) for source in ("entra", "local", "builtin")}


@bp.get("/")
def overview() -> str:
    """Show the console's overview with links into the lists."""
    admin_list, admin_count = admins()
    return render_template(
        "admin/overview.html",
        active=active_users(),
        failed=failed_syncs_last_day(),
        admins=admin_list,
        admin_count=admin_count,
        groups=groups_by_source(),
    )
