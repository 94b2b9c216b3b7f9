"""One record per sign-in of what group sync did, for admins."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import orm as so

from portal.models.base import Base, intpk, timestamp

# SyncRecord.status
OK = "ok"
UNCHANGED = "unchanged"
FAILED = "failed"
SKIPPED = "skipped"
# SyncRecord.source: where the group IDs came from.
FROM_CLAIM = "claim"
FROM_GRAPH = "graph"
FROM_RECONCILE = "reconcile"


class SyncRecord(Base):
    """What one sign-in's group sync changed, or why it could not."""

    __tablename__ = "sync_records"
    __table_args__ = (
        sa.CheckConstraint("status IN ('ok', 'unchanged', 'failed', 'skipped')", name="status"),
        sa.Index("ix_sync_records_user_id_synced_at", "user_id", "synced_at"),
        sa.Index("ix_sync_records_status_synced_at", "status", "synced_at"),
    )

    id: so.Mapped[intpk]
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # Copied from the user so the record still reads right if the user row goes away.
    tenant_id: so.Mapped[str | None] = so.mapped_column(sa.String(36))
    object_id: so.Mapped[str | None] = so.mapped_column(sa.String(36))
    synced_at: so.Mapped[timestamp] = so.mapped_column(index=True)
    status: so.Mapped[str] = so.mapped_column(sa.String(16))
    source: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    added: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    removed: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    graph_calls: so.Mapped[int] = so.mapped_column(default=0)
    duration_ms: so.Mapped[int] = so.mapped_column(default=0)
