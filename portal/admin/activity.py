"""A user page's recent rows: sync records, audit events about the user, open sessions, at once.

Each list is its own keyed, limited select; their ids go through one UNION ALL, and each id is
joined back to its table, so the three lists cost one statement instead of three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from portal.admin import audit as audit_views
from portal.extensions import db
from portal.models import AuditEvent, SyncRecord, User, UserSession
from portal.services import sessions

RECENT_SYNCS = 10
RECENT_EVENTS = 10
SYNC, EVENT, SESSION = 0, 1, 2


@dataclass
class Activity:
    """What the user page lists besides the profile and groups, each newest first."""

    records: list[SyncRecord] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)
    open_sessions: list[UserSession] = field(default_factory=list)


def _keyed(kind: int, ids: sa.Select[tuple[int]]) -> sa.Select[tuple[int, int]]:
    """Tag a select of ids with its kind; a subquery keeps its ORDER BY and LIMIT in a UNION."""
    inner = ids.subquery()
    return sa.select(sa.literal_column(str(kind), sa.Integer).label("kind"), inner.c.id)


def _keys(user: User) -> sa.Subquery:
    """Return the kinds and ids of the rows to show, each list as the page would read it alone."""
    records = (
        sa.select(SyncRecord.id)
        .where(SyncRecord.user_id == user.id)
        .order_by(SyncRecord.synced_at.desc(), SyncRecord.id.desc())
        .limit(RECENT_SYNCS)
    )
    open_sessions = sa.select(UserSession.id).where(sessions.is_open(user.id))
    return sa.union_all(
        _keyed(SYNC, records),
        _keyed(EVENT, audit_views.about_user(user, RECENT_EVENTS)),
        _keyed(SESSION, open_sessions),
    ).subquery()


def recent(user: User) -> Activity:
    """Load the user's recent sync records, audit events and open sessions in one statement."""
    keys = _keys(user)
    query = (
        sa.select(SyncRecord, AuditEvent, UserSession)
        .select_from(keys)
        .outerjoin(SyncRecord, sa.and_(keys.c.kind == SYNC, SyncRecord.id == keys.c.id))
        .outerjoin(AuditEvent, sa.and_(keys.c.kind == EVENT, AuditEvent.id == keys.c.id))
        .outerjoin(UserSession, sa.and_(keys.c.kind == SESSION, UserSession.id == keys.c.id))
        # Within a kind the other tables' columns are all NULL, so each list keeps its order.
        .order_by(
            keys.c.kind,
            SyncRecord.synced_at.desc(),
            SyncRecord.id.desc(),
            AuditEvent.id.desc(),
            *sessions.OPEN_ORDER,
        )
    )
    found = Activity()
    for record, event, session in db.session.execute(query):
        if record is not None:
            found.records.append(record)
        elif event is not None:
            found.events.append(event)
        elif session is not None:
            found.open_sessions.append(session)
    return found
