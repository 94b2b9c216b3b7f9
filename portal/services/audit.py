"""The audit trail: its vocabulary of actions and actors, and one entry per recorded change.

Every action name lives here, once, so the audit page can offer each one as a filter and the
admin console, the CLI and sync write the same words (the contract's `audit list` names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.log import audit_log
from portal.models import AuditEvent, User
from portal.models.base import utcnow

SIGNIN_OK = "signin.ok"
SIGNIN_FAILED = "signin.failed"
SIGNIN_REFUSED = "signin.refused"
LOCAL_FAILED = "local.failed"
USER_CREATED = "user.created"
USER_DISABLED = "user.disabled"
USER_ENABLED = "user.enabled"
USER_SIGNED_OUT = "user.signed_out"
USERS_EXPORTED = "users.exported"
ADMIN_GRANTED = "admin.granted"
ADMIN_REVOKED = "admin.revoked"
GROUP_CREATED = "group.created"
GROUP_RENAMED = "group.renamed"
GROUP_DELETED = "group.deleted"
GROUP_LINKED = "group.linked"
MEMBERSHIP_ADDED = "membership.added"
MEMBERSHIP_REMOVED = "membership.removed"
RECONCILE_RUN = "reconcile.run"
RECONCILE_HELD = "reconcile.held"
CONFIG_CHECKED = "config.checked"

# Every action that exists, in the order the audit page's filter lists them.
ACTIONS = (
    SIGNIN_OK,
    SIGNIN_FAILED,
    SIGNIN_REFUSED,
    LOCAL_FAILED,
    USER_CREATED,
    USER_DISABLED,
    USER_ENABLED,
    USER_SIGNED_OUT,
    USERS_EXPORTED,
    ADMIN_GRANTED,
    ADMIN_REVOKED,
    GROUP_CREATED,
    GROUP_RENAMED,
    GROUP_DELETED,
    GROUP_LINKED,
    MEMBERSHIP_ADDED,
    MEMBERSHIP_REMOVED,
    RECONCILE_RUN,
    RECONCILE_HELD,
    CONFIG_CHECKED,
)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the name the audit trail shows and, for a person, their user id."""

    name: str
    user_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        """Name a signed-in person as the contract does: a username, or `user:<object id>`."""
        return cls(user.username or f"user:{user.object_id}", user.id)


CLI = Actor("cli")
SYNC = Actor("sync")
RECONCILE = Actor("reconcile")
# A sign-in that failed before anyone was known.
ANONYMOUS = Actor("anonymous")


def user_ref(user: User) -> str:
    """Name a user as audit actors and targets do: a username, or `user:<object id>`."""
    return Actor.of(user).name


def record(actor: Actor | str, action: str, target: str = "", **details: Any) -> AuditEvent:
    """Add an audit event for the caller's transaction and log one line with the same fields."""
    name = actor.name if isinstance(actor, Actor) else actor
    event = AuditEvent(
        created_at=utcnow(), actor=name, action=action, target=target, details=details
    )
    db.session.add(event)
    _log(event.created_at.isoformat(), name, action, target, details)
    return event


def record_many(actor: Actor | str, action: str, targets: Sequence[str], **details: Any) -> None:
    """Add one event per target in a single statement (a first sign-in may create many groups)."""
    if not targets:
        return
    name = actor.name if isinstance(actor, Actor) else actor
    at = utcnow()
    rows = [
        {"created_at": at, "actor": name, "action": action, "target": t, "details": details}
        for t in targets
    ]
    # Core, not the ORM's bulk path, which would process every parameter dict first.
    db.session.connection().execute(sa.insert(AuditEvent), rows)
    for target in targets:
        _log(at.isoformat(), name, action, target, details)


def _log(at: str, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
    """Write the event's line on the `portal.audit` logger; JSON logs carry the same fields."""
    fields = {"at": at, "actor": actor, "action": action, "target": target, "detail": details}
    audit_log.info("%s %s %s", actor, action, target, extra={"fields": fields})
