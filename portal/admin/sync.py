"""Admin view of sync activity: recent sync records across users, failures first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import render_template, request

from portal.admin import bp, pagination
from portal.models import SyncRecord, User
from portal.models.base import utcnow
from portal.models.sync import FAILED, OK, SKIPPED, UNCHANGED

STATUSES = (FAILED, OK, UNCHANGED, SKIPPED)
WINDOWS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
DEFAULT_WINDOW = "7d"


def _order(status: str) -> pagination.Order:
    """Newest first; without a status filter, every failure comes before the other records."""
    columns = (SyncRecord.synced_at, SyncRecord.id)
    if status:
        return pagination.simple_order(*columns, descending=True)
    return pagination.Order(
        (
            pagination.Segment(SyncRecord.status == FAILED, columns),
            pagination.Segment(SyncRecord.status != FAILED, columns),
        ),
        descending=True,
    )


def _query(status: str, window: str) -> sa.Select[Any]:
    """Select sync records with their user's id and label columns, narrowed by status and time."""
    query = sa.select(SyncRecord, User.display_name, User.username, User.email).outerjoin(
        User, User.id == SyncRecord.user_id
    )
    if status:
        query = query.where(SyncRecord.status == status)
    if WINDOWS[window] is not None:
        query = query.where(SyncRecord.synced_at >= utcnow() - WINDOWS[window])
    return query


@bp.get("/sync")
def sync_list() -> str:
    """List recent sync records, failures first, filterable by status and time window."""
    status = request.args.get("status", "") if request.args.get("status") in STATUSES else ""
    window = request.args.get("window", DEFAULT_WINDOW)
    window = window if window in WINDOWS else DEFAULT_WINDOW
    page = pagination.paginate_request(
        _query(status, window),
        _order(status),
    )
    filters = {"status": status, "window": window} if status else {"window": window}
    return render_template(
        "admin/sync/list.html",
        page=page,
        filters=filters,
        statuses=STATUSES,
        windows=WINDOWS,
    )
