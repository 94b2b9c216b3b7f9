"""The audit trail of admin actions and sign-in security events."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm as so

from portal.models.base import Base, intpk, timestamp


class AuditEvent(Base):
    """Who did what to which target, and when."""

    __tablename__ = "audit_events"
    # The audit page filters by actor, newest first.
    __table_args__ = (sa.Index("ix_audit_events_actor_id", "actor", "id"),)

    id: so.Mapped[intpk]
    created_at: so.Mapped[timestamp] = so.mapped_column(index=True)
    actor: so.Mapped[str] = so.mapped_column(sa.String(320))
    action: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    target: so.Mapped[str] = so.mapped_column(sa.String(512), default="")
    details: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)


class LoginFailure(Base):
    """A failed local sign-in, kept in the database so every app server sees the same limit."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_username_failed_at", "username", "failed_at"),
        sa.Index("ix_login_failures_remote_addr_failed_at", "remote_addr", "failed_at"),
    )

    id: so.Mapped[intpk]
    username: so.Mapped[str] = so.mapped_column(sa.String(150))
    remote_addr: so.Mapped[str] = so.mapped_column(sa.String(64))
    failed_at: so.Mapped[timestamp]
