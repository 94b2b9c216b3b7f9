"""Reading the audit trail: the contract's event shape, listing, CSV export and retention."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models.base import utcnow

CSV_COLUMNS = ("at", "actor", "action", "target", "detail")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_dict(event: AuditEvent) -> dict[str, Any]:
    """Return an event as the contract's `audit list` shows it."""
    return {
        "at": event.created_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "detail": event.details or {},
    }


def newest(action: str | None = None, limit: int | None = None) -> list[AuditEvent]:
    """Return audit events newest first, optionally of one action and at most `limit`."""
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc())
    if action:
        query = query.where(AuditEvent.action == action)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def csv_cell(value: Any) -> str:
    """Render one CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(events: Iterable[AuditEvent]) -> Iterator[list[str]]:
    """Yield the header, then one formula-safe row per event."""
    import json

    yield list(CSV_COLUMNS)
    for event in events:
        row = as_dict(event)
        row["detail"] = json.dumps(row["detail"], sort_keys=True, default=str)
        yield [csv_cell(row[c]) for c in CSV_COLUMNS]


def purge(retention_days: int, now: datetime | None = None) -> int:
    """Delete events older than `retention_days`; flushes only, the caller commits."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    result = db.session.execute(sa.delete(AuditEvent).where(AuditEvent.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
