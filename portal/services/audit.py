"""The audit trail: its vocabulary of actions and actors, and one entry per recorded change.

Every action name lives here, once, so the audit page can offer each one as a filter and the
admin console, the CLI and sync write the same words (the contract's `audit list` names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal.extensions import db
from portal.log import audit_log
from portal.models import AuditEvent, User

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


def record(actor: Actor | str, action: str, target: str = "", **details: Any) -> AuditEvent:
    """Add an audit event for the caller's transaction and log one line about it."""
    name = actor.name if isinstance(actor, Actor) else actor
    event = AuditEvent(actor=name, action=action, target=target, details=details)
    db.session.add(event)
    audit_log.info("%s %s %s", name, action, target)
    return event
