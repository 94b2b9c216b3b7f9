"""Read-only queries the admin console, the CSV export and the CLI share: one definition each.

The user search, the group filters, a group's member count and the users list's row columns
are written here once, so the users list, a group's members page, the export and the CLI
cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm as so

from portal.config import GUID
from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, SyncRecord, User
from portal.models.sync import FAILED
from portal.services.user_search import matching_users


def user_search(text: str) -> sa.ColumnElement[bool]:
    """Match a piece of the name, email, UPN or username, or a whole object ID."""
    return matching_users(text)


def in_group(name_or_object_id: str, resolve: bool) -> sa.ColumnElement[bool]:
    """Match members of the groups with this name or Entra object ID.

    With `resolve`, the group ids are looked up first and passed as values: PostgreSQL then
    plans with the group's real size (walk users by name for a huge group, its members for a
    small one), which a subquery hides from it. That lookup is one more statement, so an
    order that may read two segments (nullable sort columns) keeps the subquery instead.
    """
    if GUID.match(name_or_object_id):
        lookup = sa.select(Group.id).join(Group.entra_group)
        lookup = lookup.where(EntraGroup.object_id == name_or_object_id.lower())
    else:
        lookup = sa.select(Group.id).where(Group.name == name_or_object_id)
    group_ids = list(db.session.scalars(lookup.limit(100))) if resolve else lookup
    return (
        sa.select(GroupMembership.id)
        .where(GroupMembership.user_id == User.id, GroupMembership.group_id.in_(group_ids))
        .exists()
    )


def last_sync_failed() -> sa.Select[tuple[int]]:
    """Select the users whose most recent sync record failed, starting from failed records."""
    newer = so.aliased(SyncRecord)
    no_newer = (
        sa.select(newer.id)
        .where(newer.user_id == SyncRecord.user_id, newer.synced_at > SyncRecord.synced_at)
        .exists()
    )
    return sa.select(SyncRecord.user_id).where(SyncRecord.status == FAILED, ~no_newer)


def user_row_columns() -> tuple[sa.ScalarSelect[Any], sa.ScalarSelect[Any]]:
    """Return the per-row group count and last sync status subqueries of the users list."""
    group_count = (
        sa.select(sa.func.count(GroupMembership.id))
        .where(GroupMembership.user_id == User.id)
        .scalar_subquery()
    )
    last_sync = (
        sa.select(SyncRecord.status)
        .where(SyncRecord.user_id == User.id)
        .order_by(SyncRecord.synced_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return group_count, last_sync


def capped_count(query: sa.Select[Any], cap: int) -> sa.ScalarSelect[int]:
    """Count the query's rows up to `cap` + 1: the rows past the cap are never read.

    An exact count reads every entry of a 100,000-member group or a million users (and, on
    PostgreSQL, often their heap pages too); past the cap a page says "more than".
    """
    matching = (
        query.with_only_columns(sa.literal(1), maintain_column_froms=True)
        .order_by(None)
        .limit(cap + 1)
        .subquery()
    )
    return sa.select(sa.func.count()).select_from(matching).scalar_subquery()


def member_count(cap: int | None = None) -> sa.ScalarSelect[int]:
    """Count a group's members (up to `cap` + 1 when given): a correlated subquery answered by
    the (group_id, user_id) index."""
    members = sa.select(GroupMembership.id).where(GroupMembership.group_id == Group.id)
    if cap is None:
        return members.with_only_columns(sa.func.count(GroupMembership.id)).scalar_subquery()
    return capped_count(members.correlate(Group), cap)


def capped_member_count(group_id: int, cap: int) -> sa.ScalarSelect[int]:
    """Count one group's members up to `cap` + 1 from the (group_id, user_id) index alone."""
    return capped_count(
        sa.select(GroupMembership.id).where(GroupMembership.group_id == group_id), cap
    )


def group_rows(cap: int | None = None) -> sa.Select[tuple[Group, str | None, int]]:
    """Select groups with their Entra object ID and member count (up to `cap` + 1 when given)."""
    return sa.select(Group, EntraGroup.object_id, member_count(cap)).outerjoin(
        EntraGroup, Group.entra_group_id == EntraGroup.id
    )


def group_search(text: str) -> sa.ColumnElement[bool]:
    """Match a piece of a group's name, or a whole Entra object ID (with `group_rows`)."""
    match = Group.name.icontains(text, autoescape=True)
    return sa.or_(match, EntraGroup.object_id == text.lower()) if GUID.match(text) else match


def members(group: Group, text: str = "") -> sa.Select[Any]:
    """Select a group's members with how and when each joined, narrowed by the user search."""
    query = (
        sa.select(User, GroupMembership.source, GroupMembership.created_at)
        .join(GroupMembership, GroupMembership.user_id == User.id)
        .where(GroupMembership.group_id == group.id)
    )
    return query.where(user_search(text)) if text else query
