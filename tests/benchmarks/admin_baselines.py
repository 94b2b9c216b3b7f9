"""Naive admin-page queries, written as peers write them: OFFSET plus an exact COUNT, or one
lazy load per row. They fetch what the portal's pages show; the benchmark times the queries
alone (no template rendering), which flatters them."""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.models import Group, GroupMembership, SyncRecord, User
from portal.services.queries import user_row_columns

PAGE = 50


def _search(text: str | None) -> list[sa.ColumnElement[bool]]:
    """Return the users-list search condition, as the portal's page applies it."""
    if not text:
        return []
    columns = (User.display_name, User.email, User.upn, User.username)
    return [sa.or_(*(c.icontains(text, autoescape=True) for c in columns))]


def users_offset_count(offset: int, text: str | None = None) -> list[Any]:
    """Users page by OFFSET, with an exact COUNT for the page numbers."""
    where = _search(text)
    db.session.scalar(sa.select(sa.func.count(User.id)).where(*where))
    query = sa.select(User, *user_row_columns()).where(*where)
    query = query.order_by(User.display_name, User.id).offset(offset).limit(PAGE)
    return list(db.session.execute(query))


def users_lazy(offset: int, text: str | None = None) -> list[Any]:
    """Users page with the group count and last sync loaded per row (N+1)."""
    where = _search(text)
    query = sa.select(User).where(*where).order_by(User.display_name, User.id)
    rows = []
    for user in db.session.scalars(query.offset(offset).limit(PAGE)):
        count = db.session.scalar(
            sa.select(sa.func.count(GroupMembership.id)).where(GroupMembership.user_id == user.id)
        )
        last = db.session.scalar(
            sa.select(SyncRecord.status)
            .where(SyncRecord.user_id == user.id)
            .order_by(SyncRecord.synced_at.desc())
            .limit(1)
        )
        rows.append((user, count, last))
    return rows


def groups_offset_count(offset: int) -> list[Any]:
    """Groups page with member counts by OFFSET, with an exact COUNT."""
    db.session.scalar(sa.select(sa.func.count(Group.id)))
    count = (
        sa.select(sa.func.count(GroupMembership.id))
        .where(GroupMembership.group_id == Group.id)
        .scalar_subquery()
    )
    query = sa.select(Group, count).order_by(Group.name, Group.id).offset(offset).limit(PAGE)
    return list(db.session.execute(query))


def groups_lazy(offset: int) -> list[Any]:
    """Groups page with the member count and Entra link loaded per row (N+1)."""
    rows = []
    query = sa.select(Group).order_by(Group.name, Group.id).offset(offset).limit(PAGE)
    for group in db.session.scalars(query):
        count = db.session.scalar(
            sa.select(sa.func.count(GroupMembership.id)).where(GroupMembership.group_id == group.id)
        )
        rows.append((group, group.object_id, count))
    return rows


def members_offset_count(group_id: int, offset: int) -> list[Any]:
    """A group's members by OFFSET, with an exact COUNT."""
    where = GroupMembership.group_id == group_id
    db.session.scalar(sa.select(sa.func.count(GroupMembership.id)).where(where))
    query = (
        sa.select(User, GroupMembership.source, GroupMembership.created_at)
        .join(GroupMembership, GroupMembership.user_id == User.id)
        .where(where)
        .order_by(User.display_name, User.id)
        .offset(offset)
        .limit(PAGE)
    )
    return list(db.session.execute(query))


def members_lazy(group_id: int, offset: int) -> list[Any]:
    """A group's members: the membership rows, then each user lazy-loaded (N+1)."""
    query = (
        sa.select(GroupMembership)
        .join(User, User.id == GroupMembership.user_id)
        .where(GroupMembership.group_id == group_id)
        .order_by(User.display_name, User.id)
        .offset(offset)
        .limit(PAGE)
    )
    return [(m.user, m.source, m.created_at) for m in db.session.scalars(query)]


def user_page_lazy(user_id: int) -> list[Any]:
    """A user's page: the user, their memberships, each group and its Entra link lazy-loaded."""
    user = db.session.get(User, user_id)
    assert user is not None
    groups = [(m.group.name, m.group.object_id, m.source) for m in user.memberships]
    records = db.session.scalars(
        sa.select(SyncRecord).where(SyncRecord.user_id == user_id).limit(10)
    ).all()
    return [user, groups, records]


def export_all() -> int:
    """Export every user as CSV the naive way: load them all, then write; return the rows."""
    users = db.session.scalars(sa.select(User).order_by(User.display_name, User.id)).all()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for user in users:
        writer.writerow([user.object_id, user.email, user.display_name, user.user_type])
    return len(users)
