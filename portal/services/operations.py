"""The changes people make, one function each, for the admin console and the CLI alike.

Each takes the actor, enforces the rule, writes the audit event and flushes; the caller
commits. A refusal raises GroupError or UserError with a message safe to show. A change that
is already in place returns False and records nothing.
"""

from __future__ import annotations

from portal.extensions import db
from portal.models import Group, User
from portal.models.group import BUILTIN
from portal.models.session import ADMIN
from portal.services import audit, groups, sessions, users
from portal.services.audit import Actor
from portal.services.groups import GroupError
from portal.services.users import UserError


def add_membership(actor: Actor, group: Group, user: User) -> bool:
    """Add a manual membership; the built-in group is the portal's own and refuses one."""
    if group.source == BUILTIN:
        raise GroupError(f"{group.name!r} is managed by the portal")
    if not groups.add_manual_member(group, user):
        return False
    _membership_event(actor, audit.MEMBERSHIP_ADDED, group, user)
    return True


def remove_membership(actor: Actor, group: Group, user: User) -> bool:
    """Remove a manual membership; built-in and Entra memberships are refused."""
    if not groups.remove_member(group, user):
        return False
    _membership_event(actor, audit.MEMBERSHIP_REMOVED, group, user)
    return True


def _membership_event(actor: Actor, action: str, group: Group, user: User) -> None:
    """Record a membership change naming both the user and the group."""
    audit.record(
        actor, action, f"{describe(user)} in {group.name}", user_id=user.id, group_id=group.id
    )
    db.session.flush()


def create_group(actor: Actor, name: str, description: str = "") -> Group:
    """Create a local group; names are unique among local and built-in groups."""
    group = groups.create_local(name, description)
    audit.record(actor, audit.GROUP_CREATED, group.name, group_id=group.id)
    db.session.flush()
    return group


def disable_user(actor: Actor, user: User) -> bool:
    """Disable a user: the one place users are disabled, whoever asks; no one disables themself.

    Every open session of the user ends with it (`users.set_active`); enabling revives none.
    """
    if actor.user_id is not None and actor.user_id == user.id:
        raise UserError("you cannot disable your own account")
    if not users.set_active(user, False):
        return False
    audit.record(actor, audit.USER_DISABLED, describe(user), user_id=user.id)
    db.session.flush()
    return True


def enable_user(actor: Actor, user: User) -> bool:
    """Enable a disabled user again."""
    if not users.set_active(user, True):
        return False
    audit.record(actor, audit.USER_ENABLED, describe(user), user_id=user.id)
    db.session.flush()
    return True


def sign_out_user(actor: Actor, user: User) -> int:
    """End every open session of a user; return how many (none ended: nothing recorded)."""
    count = sessions.end_all(user.id, ADMIN)
    if count:
        audit.record(actor, audit.USER_SIGNED_OUT, describe(user), user_id=user.id, sessions=count)
        db.session.flush()
    return count


def end_session(actor: Actor, user: User, session_id: int) -> bool:
    """End one open session of a user; False when it is not an open session of theirs."""
    if not sessions.end(session_id, ADMIN, user_id=user.id):
        return False
    audit.record(
        actor,
        audit.USER_SIGNED_OUT,
        describe(user),
        user_id=user.id,
        sessions=1,
        session=session_id,
    )
    db.session.flush()
    return True


def create_local_admin(actor: Actor, username: str, password: str) -> User:
    """Create a Local admin account (the break-glass path when Entra is unavailable)."""
    user = users.create_local(username, password, is_admin=True)
    audit.record(actor, audit.USER_CREATED, describe(user), user_id=user.id, is_admin=True)
    db.session.flush()
    return user


def rename_group(actor: Actor, group: Group, name: str) -> None:
    """Rename an unlinked local group; Entra names the groups linked to it."""
    old = group.name
    groups.rename(group, name)
    audit.record(actor, audit.GROUP_RENAMED, group.name, old=old, group_id=group.id)
    db.session.flush()


def delete_group(actor: Actor, group: Group) -> None:
    """Delete a group and its memberships; the built-in group stays."""
    name, source, group_id = group.name, group.source, group.id
    groups.delete(group)
    audit.record(actor, audit.GROUP_DELETED, name, group_id=group_id, source=source)
    db.session.flush()


def pin_group_link(actor: Actor, group: Group, object_id: str, tenants: list[str]) -> None:
    """Pin a local group's link to one Entra group by object ID, e.g. for an ambiguous name."""
    entra = groups.pin_link(group, object_id, tenants)
    audit.record(
        actor,
        audit.GROUP_LINKED,
        group.name,
        group_id=group.id,
        object_id=entra.object_id,
        tenant_id=entra.tenant_id,
    )
    db.session.flush()


def describe(user: User) -> str:
    """Name a user in audit targets and messages: their label and their stable key."""
    key = user.username or user.object_id or f"#{user.id}"
    return key if key == user.label else f"{user.label} <{key}>"
