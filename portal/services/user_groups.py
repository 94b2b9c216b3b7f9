"""One user's groups a page at a time, searchable: a person may be in thousands of groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, User

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_SIZE = 50


@dataclass(frozen=True)
class GroupRow:
    """One of the user's groups and how they joined it."""

    id: int
    name: str
    source: str
    object_id: str | None
    membership: str


@dataclass(frozen=True)
class GroupsPage:
    """A page of a user's groups, with the total the search matches."""

    rows: list[GroupRow]
    total: int
    page: int
    size: int
    q: str

    @property
    def first(self) -> int:
        """Return the 1-based position of the page's first row (0 when empty)."""
        return (self.page - 1) * self.size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        """Return the 1-based position of the page's last row."""
        return self.first + len(self.rows) - 1 if self.rows else 0

    @property
    def has_next(self) -> bool:
        """Tell whether rows follow this page."""
        return self.page * self.size < self.total


def read_size(raw: str | None, default: int = DEFAULT_SIZE) -> int:
    """Read a page size, falling back to `default` for anything not offered."""
    return int(raw) if raw and raw.isdigit() and int(raw) in PAGE_SIZES else default


def read_page(raw: str | None) -> int:
    """Read a 1-based page number, bounded so the offset stays small."""
    return min(int(raw), 100_000) if raw and raw.isdigit() and int(raw) > 0 else 1


def groups_page(user_id: int, q: str = "", page: int = 1, size: int = DEFAULT_SIZE) -> GroupsPage:
    """Return one page of the user's groups by name, with the match count, in one statement."""
    q = q.strip()[:200]
    result = db.session.execute(_page_query(user_id, q, page, size)).all()
    if not result and page > 1:
        return groups_page(user_id, q, 1, size)  # past the end (the list shrank): the first page
    return _page(result, page, size, q)


def with_user(
    user_id: int, q: str = "", page: int = 1, size: int = DEFAULT_SIZE
) -> tuple[User | None, GroupsPage]:
    """Load the user and one page of their groups in one statement (None: no such user)."""
    q = q.strip()[:200]
    sorted_page = _page_query(user_id, q, page, size).add_columns(sa.func.lower(Group.name))
    groups = sorted_page.subquery()
    columns = list(groups.c)
    query = (
        sa.select(User, *columns[:6])
        .outerjoin(groups, sa.true())  # one row per group; one row of NULLs when none
        .where(User.id == user_id)
        .order_by(columns[6], columns[0])
    )
    result = db.session.execute(query).all()
    if not result:
        return None, _page([], page, size, q)
    rows = [row[1:] for row in result if row[1] is not None]
    if not rows and page > 1:
        return result[0][0], groups_page(user_id, q, 1, size)  # past the end, as above
    return result[0][0], _page(rows, page, size, q)


def _page_query(user_id: int, q: str, page: int, size: int) -> sa.Select[Any]:
    """Select one page of the user's groups by name, the match count riding along each row."""
    query = (
        sa.select(
            Group.id,
            Group.name,
            Group.source,
            EntraGroup.object_id,
            GroupMembership.source,
            sa.func.count().over(),  # the total rides along: no second statement
        )
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .outerjoin(EntraGroup, Group.entra_group_id == EntraGroup.id)
        .where(GroupMembership.user_id == user_id)
        .order_by(sa.func.lower(Group.name), Group.id)
        .limit(size)
        .offset((page - 1) * size)
    )
    return query.where(Group.name.icontains(q, autoescape=True)) if q else query


def _page(result: Sequence[Sequence[Any]], page: int, size: int, q: str) -> GroupsPage:
    """Build the page from its rows: five fields of a group, then the match count."""
    rows = [GroupRow(*row[:5]) for row in result]
    total = result[0][5] if result else 0
    return GroupsPage(rows, total, page, size, q)
