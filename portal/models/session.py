"""Server-side sessions and sign-in flows in progress: a cookie means something only with a row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm as so

from portal.models.base import Base, UTCDateTime, intpk, optional_timestamp, timestamp

# UserSession.end_reason: why a session ended.
LOGOUT = "logout"
EVERYWHERE = "everywhere"
ADMIN = "admin"
DISABLED = "disabled"
RECONCILE = "reconcile"
IDLE = "idle"
MAX_AGE = "max_age"
END_REASONS = (LOGOUT, EVERYWHERE, ADMIN, DISABLED, RECONCILE, IDLE, MAX_AGE)


class UserSession(Base):
    """One sign-in's session; the cookie holds its random ID, the row only that ID's hash.

    `expires_at` is when the row stops counting: the earlier of the absolute limit and the last
    sighting plus the idle limit, or the end time once ended. Purging reads that one column.
    """

    __tablename__ = "user_sessions"
    __table_args__ = (
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN ("
            + ", ".join(f"'{r}'" for r in END_REASONS)
            + ")",
            name="end_reason",
        ),
        # A user's open sessions: the admin page lists them, every ending ends them.
        sa.Index("ix_user_sessions_user_id_ended_at", "user_id", "ended_at"),
    )

    id: so.Mapped[intpk]
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    started_at: so.Mapped[timestamp]
    last_seen_at: so.Mapped[timestamp]
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), index=True)
    address: so.Mapped[str] = so.mapped_column(sa.String(45), default="")
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(256), default="")
    ended_at: so.Mapped[optional_timestamp]
    end_reason: so.Mapped[str | None] = so.mapped_column(sa.String(16))


class SignInFlow(Base):
    """An authorization-code flow between /auth/login and /auth/callback, keyed by its state."""

    __tablename__ = "sign_in_flows"

    id: so.Mapped[intpk]
    state: so.Mapped[str] = so.mapped_column(sa.String(128), unique=True)
    # The hash of the browser's sign-in cookie: only the browser that started a flow finishes it.
    browser_hash: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    flow: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON)
    next_url: so.Mapped[str] = so.mapped_column(sa.String(2048), default="/")
    created_at: so.Mapped[timestamp]
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), index=True)
