"""Server-side sessions: one record per sign-in, checked on every request, ended, purged.

The cookie carries a random token; the database holds only its SHA-256, so a copy of the table
opens no session. Every function flushes at most; the view or command commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import User, UserSession
from portal.models.base import utcnow
from portal.models.session import IDLE, MAX_AGE, SignInFlow

TOKEN_BYTES = 32  # 256 bits, well above the 128 the contract asks for
# Last-seen is written at most this often, so a busy session does not write on every request.
TOUCH_EVERY = timedelta(minutes=1)
# Ended and expired records stay this long for anyone looking into why a session ended.
KEEP_ENDED = timedelta(days=1)
PURGE_BATCH = 500
# A worker purges a batch at a sign-in at most this often; `flask sessions purge` does the rest.
PURGE_EVERY = timedelta(minutes=1)
ADDRESS_LENGTH = 45
AGENT_LENGTH = 256


@dataclass(frozen=True)
class Sighting:
    """What one request's cookie turned out to mean, and the one write it owes, if any."""

    user: User | None
    session_id: int | None = None
    write: sa.Update | None = None


ANONYMOUS = Sighting(None)


def hash_token(token: str) -> str:
    """Return the stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def lifetimes() -> tuple[timedelta, timedelta]:
    """Return the configured idle and absolute lifetimes."""
    config = current_app.config
    return (
        timedelta(seconds=config["PORTAL_SESSION_IDLE_SECONDS"]),
        timedelta(seconds=config["PORTAL_SESSION_MAX_SECONDS"]),
    )


def start(user: User, address: str, user_agent: str) -> str:
    """Add a session record for a sign-in and return its token, which only the cookie keeps."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    idle, most = lifetimes()
    record = UserSession(
        token_hash=hash_token(token),
        user_id=user.id,
        started_at=now,
        last_seen_at=now,
        expires_at=min(now + idle, now + most),
        address=address[:ADDRESS_LENGTH],
        user_agent=user_agent[:AGENT_LENGTH],
    )
    db.session.add(record)
    db.session.flush()
    return token


def check(token: str) -> Sighting:
    """Load the user and the session of a token in one statement and judge the session."""
    query = (
        sa.select(
            User,
            UserSession.id,
            UserSession.started_at,
            UserSession.last_seen_at,
            UserSession.expires_at,
            UserSession.ended_at,
        )
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == hash_token(token))
    )
    row = db.session.execute(query).first()
    if row is None or row.ended_at is not None or not row.User.is_active:
        return ANONYMOUS
    return _judge(row, utcnow())


def _judge(row: Any, now: datetime) -> Sighting:
    """Tell an open session from an idle or too old one, with the write each owes."""
    idle, most = lifetimes()
    if now >= row.started_at + most:
        return Sighting(None, row.id, _end(UserSession.id == row.id, MAX_AGE, now))
    if now >= row.last_seen_at + idle or now >= row.expires_at:
        return Sighting(None, row.id, _end(UserSession.id == row.id, IDLE, now))
    if now - row.last_seen_at < TOUCH_EVERY:
        return Sighting(row.User, row.id)
    touch = (
        sa.update(UserSession)
        # A concurrent request may have written it already: then this one writes nothing.
        .where(UserSession.id == row.id, UserSession.last_seen_at <= now - TOUCH_EVERY)
        .values(last_seen_at=now, expires_at=min(now + idle, row.started_at + most))
    )
    return Sighting(row.User, row.id, touch)


def _end(where: sa.ColumnElement[bool], reason: str, now: datetime) -> sa.Update:
    """Return the statement that ends the open sessions `where` picks."""
    return (
        sa.update(UserSession)
        .where(where, UserSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason, expires_at=now)
        .execution_options(synchronize_session=False)
    )


def end(session_id: int, reason: str, *, user_id: int | None = None) -> bool:
    """End one session (of `user_id`, when given); return whether it was open."""
    where = UserSession.id == session_id
    if user_id is not None:
        where = sa.and_(where, UserSession.user_id == user_id)
    return bool(db.session.execute(_end(where, reason, utcnow())).rowcount)


def end_all(user_id: int, reason: str) -> int:
    """End every open session of a user; return how many."""
    result = db.session.execute(_end(UserSession.user_id == user_id, reason, utcnow()))
    return int(result.rowcount)


# The order open sessions are listed in: most recently seen first.
OPEN_ORDER = (UserSession.last_seen_at.desc(), UserSession.id.desc())


def open_sessions(user_id: int) -> list[UserSession]:
    """Return a user's sessions that still let someone in, most recently seen first."""
    query = sa.select(UserSession).where(is_open(user_id)).order_by(*OPEN_ORDER)
    return list(db.session.scalars(query))


def is_open(user_id: int) -> sa.ColumnElement[bool]:
    """Match the user's sessions that still let someone in (not ended, expired or idle)."""
    now = utcnow()
    idle, most = lifetimes()
    return sa.and_(
        UserSession.user_id == user_id,
        UserSession.ended_at.is_(None),
        UserSession.expires_at > now,
        UserSession.last_seen_at > now - idle,
        UserSession.started_at > now - most,
    )


def purge(limit: int | None = None) -> int:
    """Delete ended and expired sessions and expired sign-in flows; return how many sessions.

    With `limit`, one batch of at most that many sessions, skipping rows another worker holds.
    """
    now = utcnow()
    db.session.execute(sa.delete(SignInFlow).where(SignInFlow.expires_at < now))
    dead = UserSession.expires_at < now - KEEP_ENDED
    if limit is None:
        return int(db.session.execute(sa.delete(UserSession).where(dead)).rowcount)
    batch = sa.select(UserSession.id).where(dead).order_by(UserSession.expires_at).limit(limit)
    if db.session.get_bind().dialect.name == "postgresql":
        batch = batch.with_for_update(skip_locked=True)
    statement = sa.delete(UserSession).where(UserSession.id.in_(batch.scalar_subquery()))
    return int(db.session.execute(statement).rowcount)


def purge_now_and_then() -> None:
    """Purge one batch if this worker has not done so within PURGE_EVERY: cheap, as sign-ins run."""
    state = current_app.extensions.setdefault("portal.sessions", {"purged_at": None})
    now = utcnow()
    if state["purged_at"] is not None and now - state["purged_at"] < PURGE_EVERY:
        return
    state["purged_at"] = now
    purge(PURGE_BATCH)
