"""Group sync (placeholder until the group-sync issue lands): records that no sync ran."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal.extensions import db
from portal.models import SyncRecord, User
from portal.models.sync import SKIPPED


@dataclass
class Resolution:
    """Where a sign-in's group IDs came from and what they resolved to."""

    source: str | None = None


def resolve_groups(claims: dict[str, Any], access_token: str | None) -> Resolution:
    """Work out the user's groups before any write."""
    return Resolution()


def apply(user: User, resolution: Resolution) -> SyncRecord:
    """Bring memberships in line and record the sync."""
    record = SyncRecord(
        user_id=user.id, tenant_id=user.tenant_id, object_id=user.object_id, status=SKIPPED
    )
    db.session.add(record)
    db.session.flush()
    return record
