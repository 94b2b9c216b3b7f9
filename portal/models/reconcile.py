"""Reconciliation between sign-ins: the directory edges it keeps, its delta links, its runs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm as so

from portal.models.base import Base, guid, intpk, optional_timestamp, timestamp

# ReconcileRun.status (the CLI also reports "busy", which leaves no run behind).
RUN_OK = "ok"
RUN_HELD = "held"
RUN_FAILED = "failed"


class DirectoryEdge(Base):
    """One direct membership in Entra: a user or nested group (member) in a group."""

    __tablename__ = "directory_edges"
    # Transitive membership is worked out upwards, from each member to its groups.
    __table_args__ = (sa.Index("ix_directory_edges_tenant_id_member_id", "tenant_id", "member_id"),)

    tenant_id: so.Mapped[guid] = so.mapped_column(primary_key=True)
    group_id: so.Mapped[guid] = so.mapped_column(primary_key=True)
    member_id: so.Mapped[guid] = so.mapped_column(primary_key=True)
    is_group: so.Mapped[bool] = so.mapped_column(default=False)


class DeltaState(Base):
    """A tenant's delta links: where the next reconciliation resumes."""

    __tablename__ = "delta_states"

    tenant_id: so.Mapped[guid] = so.mapped_column(primary_key=True)
    users_link: so.Mapped[str | None] = so.mapped_column(sa.Text)
    groups_link: so.Mapped[str | None] = so.mapped_column(sa.Text)
    updated_at: so.Mapped[timestamp]


class ReconcileRun(Base):
    """One reconciliation run: what it changed, or proposed when held, or why it failed."""

    __tablename__ = "reconcile_runs"
    __table_args__ = (sa.CheckConstraint("status IN ('ok', 'held', 'failed')", name="status"),)

    id: so.Mapped[intpk]
    started_at: so.Mapped[timestamp] = so.mapped_column(index=True)
    finished_at: so.Mapped[optional_timestamp]
    status: so.Mapped[str] = so.mapped_column(sa.String(16))
    is_full: so.Mapped[bool] = so.mapped_column(default=False)
    users_disabled: so.Mapped[int] = so.mapped_column(default=0)
    users_enabled: so.Mapped[int] = so.mapped_column(default=0)
    memberships_added: so.Mapped[int] = so.mapped_column(default=0)
    memberships_removed: so.Mapped[int] = so.mapped_column(default=0)
    graph_calls: so.Mapped[int] = so.mapped_column(default=0)
    duration_ms: so.Mapped[int] = so.mapped_column(default=0)
    reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # Per user: what changed (or would have, for a held run); capped in size.
    changes: so.Mapped[list[dict[str, Any]]] = so.mapped_column(sa.JSON, default=list)
    actor: so.Mapped[str] = so.mapped_column(sa.String(320), default="reconcile")


class ReconcileLock(Base):
    """The one-run-at-a-time lock where PostgreSQL's advisory locks are not available."""

    __tablename__ = "reconcile_locks"

    name: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True)
    acquired_at: so.Mapped[timestamp]
