"""The users search: a piece of the name, email, UPN or username, or a whole object ID.

The condition is the substring match the search always ran (`icontains`: `ILIKE` on
PostgreSQL, `lower() LIKE` on SQLite), so the results do not depend on an index; what differs
is how rows are found. On PostgreSQL GIN trigram indexes (migration 0010) serve `ILIKE`, one
column at a time.
On SQLite an FTS5 trigram table, kept in step with users by triggers, first narrows the rows
to those containing the text (it folds case at least as widely as `LIKE`, so it never drops a
match), and `LIKE` then decides as before. Texts shorter than a trigram scan, as before.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portal.config import GUID
from portal.extensions import db
from portal.models import User

TRIGRAM = 3  # the shortest text a trigram index can look up
# PostgreSQL: from this length the union of trigram index scans is used. A shorter text tends
# to match thousands of users, and the planner's own plan (walking the name index in page
# order until a page is full) finds a page sooner than collecting every match (measured at
# 100,000 users: "lina" 0.9 s planner, 2.4 s union; a whole email 1.1 s planner, 0.3 s union).
SELECTIVE = 6
FTS_TABLE = "users_search"  # SQLite only; created by migration 0010


def matching_users(text: str) -> sa.ColumnElement[bool]:
    """Return the condition for users whose searchable fields contain `text`."""
    columns = (User.display_name, User.email, User.upn, User.username)
    condition: sa.ColumnElement[bool] = sa.or_(
        *(column.icontains(text, autoescape=True) for column in columns)
    )
    dialect = db.session.get_bind().dialect.name
    if dialect == "sqlite" and len(text) >= TRIGRAM:
        condition = sa.and_(User.id.in_(_fts_rowids(text)), condition)
    elif dialect == "postgresql" and len(text) >= SELECTIVE:
        condition = sa.and_(User.id.in_(_trigram_ids(columns, text)), condition)
    if GUID.match(text):
        condition = sa.or_(condition, User.object_id == text.lower())
    return condition


def _trigram_ids(columns: tuple[Any, ...], text: str) -> sa.Select[tuple[int]]:
    """Select the users matching in each column, one index scan per column (PostgreSQL).

    As one OR the planner weighs four GIN scans together against one sequential scan and
    picks the scan (measured: 2 s against 0.4 s on a busy machine at 100,000 users); as a
    union it weighs each column's index on its own, and uses it. The union is a CTE, so a
    page that also counts its matches (`pagination.capped_count`) runs the scans once.
    """
    matches = sa.union(
        *(sa.select(User.id).where(column.icontains(text, autoescape=True)) for column in columns)
    ).cte("user_matches")
    return sa.select(matches.c.id)


def _fts_rowids(text: str) -> sa.Select[tuple[int]]:
    """Select the users whose FTS5 trigram row contains text (a quoted phrase: a substring)."""
    phrase = '"' + text.replace('"', '""') + '"'
    match = sa.text(f"{FTS_TABLE} MATCH :phrase").bindparams(phrase=phrase)
    return (
        sa.select(sa.literal_column("rowid", sa.Integer))
        .select_from(sa.table(FTS_TABLE))
        .where(match)
    )
