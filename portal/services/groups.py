"""Group rules: local groups, the built-in `All users` group, and manual memberships."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from portal.config import GUID
from portal.database import insert
from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, User
from portal.models.base import utcnow
from portal.models.group import (
    ALL_USERS,
    BUILTIN,
    LOCAL,
    MEMBERSHIP_BUILTIN,
    MEMBERSHIP_ENTRA,
    MEMBERSHIP_MANUAL,
)
from portal.services import queries


class GroupError(ValueError):
    """A group operation was refused; the message is safe to show."""


class AmbiguousName(GroupError):
    """Several groups carry the name given; the caller must say which one."""

    def __init__(self, name: str) -> None:
        super().__init__(f"several groups are named {name!r}: use the Entra object ID instead")
        self.name = name


def all_users_group() -> Group:
    """Return the built-in `All users` group, creating it on first use."""
    query = sa.select(Group).where(Group.source == BUILTIN, Group.name == ALL_USERS)
    group = db.session.scalars(query).first()
    if group is None:
        # Concurrent first sign-ins may race here: the partial unique index keeps one row.
        stmt = insert(db.session, Group).values(
            name=ALL_USERS,
            source=BUILTIN,
            description="Every active External user.",
            created_at=utcnow(),
        )
        db.session.execute(
            stmt.on_conflict_do_nothing(
                index_elements=["name"], index_where=sa.text("source = 'builtin'")
            )
        )
        group = db.session.scalars(query).one()
    return group


def entra_name_counts(names: Iterable[str]) -> dict[str, int]:
    """Count the known Entra groups carrying each of these names, across admitted tenants."""
    counts: dict[str, int] = {}
    wanted = sorted(set(names))
    for start in range(0, len(wanted), 500):
        query = (
            sa.select(EntraGroup.display_name, sa.func.count(EntraGroup.id))
            .where(EntraGroup.display_name.in_(wanted[start : start + 500]))
            .group_by(EntraGroup.display_name)
        )
        counts.update({name: count for name, count in db.session.execute(query)})
    return counts


def ambiguous_candidates(group: Group) -> list[EntraGroup]:
    """Return the Entra groups named like this unlinked local group when several are known."""
    if group.source != LOCAL or group.entra_group_id is not None:
        return []
    query = sa.select(EntraGroup).where(EntraGroup.display_name == group.name)
    found = list(db.session.scalars(query.order_by(EntraGroup.tenant_id, EntraGroup.object_id)))
    return found if len(found) > 1 else []


def pin_link(group: Group, object_id: str, tenants: Iterable[str]) -> EntraGroup:
    """Link a local group to the Entra group with this object ID, for good (an admin's choice).

    The Entra group must be known (someone signed in with it) and belong to an admitted tenant.
    """
    if group.source != LOCAL:
        raise GroupError("only local groups are linked by hand; Entra and built-in groups are not")
    key = object_id.strip().lower()
    query = sa.select(EntraGroup).where(EntraGroup.object_id == key)
    entra = db.session.scalars(query).first() if GUID.match(key) else None
    if entra is None or entra.display_name is None:
        raise GroupError("no known Entra group has that object ID")
    if entra.tenant_id not in set(tenants):
        raise GroupError("that Entra group belongs to a tenant that may not sign in")
    taken = sa.select(Group.name).where(Group.entra_group_id == entra.id, Group.id != group.id)
    if (other := db.session.scalar(taken)) is not None:
        raise GroupError(f"that Entra group is already linked to {other!r}")
    group.entra_group_id, group.is_link_pinned = entra.id, True
    db.session.flush()
    return entra


def find_group(name_or_object_id: str) -> Group:
    """Return the one group with this Entra object ID or name; refuse a name several share."""
    key = name_or_object_id.strip()
    by_id = sa.select(Group).join(Group.entra_group).where(EntraGroup.object_id == key.lower())
    group = db.session.scalars(by_id).first()
    if group is not None:
        return group
    groups = db.session.scalars(sa.select(Group).where(Group.name == key).limit(2)).all()
    if not groups:
        raise GroupError(f"no group named {key!r}")
    if len(groups) > 1:
        raise AmbiguousName(key)
    return groups[0]


def named(name: str, limit: int = 20) -> list[tuple[Group, str | None]]:
    """Return the groups people can be added to by hand that carry exactly this name."""
    query = (
        sa.select(Group, EntraGroup.object_id)
        .outerjoin(EntraGroup, Group.entra_group_id == EntraGroup.id)
        .where(Group.name == name.strip(), Group.source != BUILTIN)
        .order_by(Group.id)
        .limit(limit)
    )
    return [(group, object_id) for group, object_id in db.session.execute(query)]


def _free_name(name: str, keep: Group | None = None) -> str:
    """Return the trimmed name if no other group has it in any letter case; refuse it otherwise."""
    name = name.strip()
    if not name:
        raise GroupError("a group name is required")
    if name.lower() == ALL_USERS.lower():
        raise GroupError(f"{ALL_USERS!r} is the portal's built-in group: pick another name")
    clash = sa.select(Group.name).where(sa.func.lower(Group.name) == name.lower())
    if keep is not None:
        clash = clash.where(Group.id != keep.id)
    taken = db.session.scalars(clash.limit(1)).first()
    if taken is not None:
        raise GroupError(f"a group named {taken!r} already exists; names are unique in any case")
    return name


def _flush_named(name: str) -> None:
    """Flush a created or renamed group; the database's unique index settles a race."""
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        # Another admin created the same name a moment ago; the caller rolls back.
        raise GroupError(f"a group named {name!r} already exists: it was just created") from None


def create_local(name: str, description: str = "") -> Group:
    """Create a local group; its name must differ from every group's, in any letter case."""
    name = _free_name(name)
    group = Group(name=name, source=LOCAL, description=description)
    db.session.add(group)
    _flush_named(name)
    return group


def rename(group: Group, name: str) -> None:
    """Rename a local group; Entra-linked and built-in names are not the portal's to change."""
    if group.source != LOCAL or group.entra_group_id is not None:
        raise GroupError("only unlinked local groups can be renamed: Entra owns the others' names")
    group.name = _free_name(name, keep=group)
    _flush_named(group.name)


def delete(group: Group) -> None:
    """Delete a local or Entra group and its memberships; the built-in group stays."""
    if group.source == BUILTIN:
        raise GroupError("built-in groups cannot be deleted")
    db.session.delete(group)
    db.session.flush()


def membership(group: Group, user: User) -> GroupMembership | None:
    """Return the user's membership row in the group, if any."""
    query = sa.select(GroupMembership).where(
        GroupMembership.group_id == group.id, GroupMembership.user_id == user.id
    )
    return db.session.scalars(query).first()


def add_manual_member(group: Group, user: User) -> bool:
    """Make the user a manual member, pinning an Entra membership; return whether it changed."""
    existing = membership(group, user)
    if existing is not None and existing.source != MEMBERSHIP_ENTRA:
        return False
    if existing is None:
        return _insert_manual(group, user)
    existing.source = MEMBERSHIP_MANUAL
    db.session.flush()
    return True


def _insert_manual(group: Group, user: User) -> bool:
    """Insert a manual membership unless one appeared meanwhile; return whether this one did.

    Two admins adding the same person at once both saw no membership: the unique
    (group_id, user_id) constraint lets one insert win, and the other learns it lost
    instead of failing on the constraint.
    """
    statement = insert(db.session, GroupMembership).values(
        group_id=group.id, user_id=user.id, source=MEMBERSHIP_MANUAL, created_at=utcnow()
    )
    statement = statement.on_conflict_do_nothing(index_elements=["group_id", "user_id"])
    # RETURNING, not rowcount: psycopg reports -1 rows for a skipped insert.
    return db.session.execute(statement.returning(GroupMembership.id)).first() is not None


def remove_member(group: Group, user: User) -> bool:
    """Remove the user from a group by hand; `All users` is managed by the portal itself."""
    existing = membership(group, user)
    if existing is None:
        return False
    if existing.source == MEMBERSHIP_BUILTIN:
        raise GroupError(f"{ALL_USERS!r} holds every active External user and cannot be edited")
    if existing.source == MEMBERSHIP_ENTRA:
        raise GroupError(
            "this membership comes from Entra ID: remove the user from the Entra group"
        )
    db.session.delete(existing)
    db.session.flush()
    return True


def user_group_names(user: User) -> list[str]:
    """Return the sorted names of the user's groups in one query."""
    query = (
        sa.select(Group.name)
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .where(GroupMembership.user_id == user.id)
        .order_by(Group.name)
    )
    return list(db.session.scalars(query))


def names_by_user() -> dict[int, list[str]]:
    """Return every user's sorted group names, keyed by user id, in one query."""
    query = (
        sa.select(GroupMembership.user_id, Group.name)
        .join(Group, GroupMembership.group_id == Group.id)
        .order_by(GroupMembership.user_id, Group.name)
    )
    names: dict[int, list[str]] = {}
    for user_id, name in db.session.execute(query):
        names.setdefault(user_id, []).append(name)
    return names


def list_with_counts() -> list[tuple[Group, str | None, int]]:
    """Return every group with its Entra object ID and member count, by name, in one query."""
    query = queries.group_rows().order_by(Group.name, Group.id)
    return [(group, object_id, members) for group, object_id, members in db.session.execute(query)]


def members(group: Group) -> list[tuple[User, str]]:
    """Return the group's members with how each joined (`entra`, `manual`, `builtin`), by name."""
    query = (
        sa.select(User, GroupMembership.source)
        .join(GroupMembership, GroupMembership.user_id == User.id)
        .where(GroupMembership.group_id == group.id)
        .order_by(User.display_name, User.username, User.id)
    )
    return [(user, source) for user, source in db.session.execute(query)]


def memberships_of(user: User) -> list[tuple[Group, str]]:
    """Return the user's groups with how they joined each, by group name, in one query."""
    query = (
        sa.select(Group, GroupMembership.source)
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .where(GroupMembership.user_id == user.id)
        .order_by(Group.name, Group.id)
    )
    return [(group, source) for group, source in db.session.execute(query)]
