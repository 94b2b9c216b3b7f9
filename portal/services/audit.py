"""One audit entry per admin action, in the database and on the `portal.audit` logger."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.log import audit_log
from portal.models import AuditEvent


def record(actor: str, action: str, target: str = "", **details: Any) -> AuditEvent:
    """Add an audit event for the caller's transaction and log one line about it."""
    event = AuditEvent(actor=actor, action=action, target=target, details=details)
    db.session.add(event)
    audit_log.info("%s %s %s", actor, action, target)
    return event
