"""Keyset pagination for the admin lists: fast on page 2,000 as on page 1, no OFFSET, no COUNT.

An order is a list of segments read one after the other, each a filter plus the columns it is
sorted by (the row id last, as the tiebreak). A nullable sort column is two segments: rows
with a value, then rows without, so each segment stays an index range scan. A cursor names
a segment and the sort values of one row; the next page starts right after it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import request

from portal.extensions import db
from portal.services import queries

DEFAULT_SIZE = 50
MAX_SIZE = 200
PAGE_SIZES = (25, 50, 100, 200)
# Lists count their rows up to here: an index range of 10,001 entries costs a few milliseconds,
# a COUNT(*) over 100,000 filtered rows would not.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Segment:
    """A run of rows: those matching `where`, sorted by `columns` (the last is unique)."""

    where: sa.ColumnElement[bool] | None
    columns: tuple[sa.ColumnElement[Any], ...]


@dataclass(frozen=True)
class Order:
    """The segments of a sort order, and whether every column runs descending."""

    segments: tuple[Segment, ...]
    descending: bool = False


@dataclass(frozen=True)
class Cursor:
    """A position in an order: a segment and the sort values of the row to start after."""

    segment: int
    values: tuple[Any, ...]


@dataclass
class Page:
    """One page of rows with the cursors of its neighbours (None at either end).

    `first` is the position of the first row as the links carried it along (so "about": rows
    added or removed meanwhile shift it), `total` the matching rows counted up to COUNT_CAP.
    """

    rows: list[tuple[Any, ...]]
    next_cursor: str | None
    prev_cursor: str | None
    first: int = 1
    total: int = 0
    size: int = DEFAULT_SIZE

    @property
    def last(self) -> int:
        """Return the position of the page's last row."""
        return self.first + len(self.rows) - 1

    @property
    def cap(self) -> int:
        """Return how far rows are counted."""
        return COUNT_CAP

    @property
    def capped(self) -> bool:
        """Tell whether more rows match than were counted."""
        return self.total > COUNT_CAP


def encode(cursor: Cursor) -> str:
    """Turn a cursor into an opaque URL-safe token."""
    values = [{"dt": v.isoformat()} if isinstance(v, datetime) else v for v in cursor.values]
    raw = json.dumps([cursor.segment, values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str | None, order: Order) -> Cursor | None:
    """Read a cursor token back; anything malformed or foreign to `order` means no cursor."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        segment, values = json.loads(raw)
        values = tuple(_value(v) for v in values)
    except (ValueError, TypeError, KeyError, binascii.Error):
        return None
    if not isinstance(segment, int) or not 0 <= segment < len(order.segments):
        return None
    columns = order.segments[segment].columns
    if len(values) != len(columns) or not all(map(_fits, columns, values)):
        return None
    return Cursor(segment, values)


def _fits(column: sa.ColumnElement[Any], value: Any) -> bool:
    """Tell whether a forged cursor value suits its column, so the database never sees a
    string where a date is sorted, or an integer past 64 bits."""
    try:
        expected = getattr(column.type, "impl", column.type).python_type  # TypeDecorators too
    except NotImplementedError:
        expected = object  # an expression of unknown type: any decoded scalar goes
    if value is None or (isinstance(value, bool) and expected is not bool):
        return False
    if expected is int:
        return isinstance(value, int) and -(2**63) <= value < 2**63
    if expected is float:
        return isinstance(value, int | float) and math.isfinite(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value.astimezone(UTC)  # what binding it does: year 9999 at -23:59 overflows
        except OverflowError:
            return False
    return isinstance(value, expected)


def _value(raw: Any) -> Any:
    """Decode one sort value: a string, a number, or a tagged datetime."""
    if isinstance(raw, dict):
        return datetime.fromisoformat(str(raw["dt"]))
    if raw is None or isinstance(raw, str | int | float):
        return raw
    raise ValueError("unexpected cursor value")


def page_size(raw: str | None) -> int:
    """Read a requested page size, clamped to what a page may show."""
    if raw and raw.isdigit():
        return max(1, min(int(raw), MAX_SIZE))
    return DEFAULT_SIZE


def paginate_request(query: sa.Select[Any], order: Order, total: int | None = None) -> Page:
    """Return the page the request's `after`, `before`, `start` and `size` arguments ask for."""
    args = request.args
    start = args.get("start", "")
    return paginate(
        query,
        order,
        after=args.get("after"),
        before=args.get("before"),
        size=page_size(args.get("size")),
        start=min(int(start), 10**9) if start.isdigit() and int(start) > 0 else 1,
        total=total,
    )


def capped_count(query: sa.Select[Any]) -> sa.ScalarSelect[int]:
    """Count the query's rows up to COUNT_CAP + 1, as a column riding along the page query."""
    return queries.capped_count(query, COUNT_CAP)


def paginate(
    query: sa.Select[Any],
    order: Order,
    *,
    after: str | None = None,
    before: str | None = None,
    size: int = DEFAULT_SIZE,
    start: int = 1,
    total: int | None = None,
) -> Page:
    """Return the page after `after` (or before `before`, or the first) in one query per segment.

    Each query also carries the capped count of all matching rows, so counting costs no
    statement of its own; a caller that already counted them passes `total` instead.
    """
    backwards = bool(before)
    cursor = decode(before if backwards else after, order)
    position = max(1, start) if cursor is not None else 1
    counted = total is None
    query = query.add_columns(capped_count(query).label("_total")) if counted else query
    found: list[tuple[int, sa.Row[Any]]] = []
    for index in _segments_from(order, cursor, backwards):
        start = cursor if cursor is not None and cursor.segment == index else None
        statement = _segment_query(query, order, index, start, backwards, size + 1 - len(found))
        found += [(index, row) for row in db.session.execute(statement)]
        if len(found) > size:
            break
    more = len(found) > size
    found = found[:size]
    if backwards:
        found.reverse()
    first = _cursor_of(order, *found[0]) if found else None
    last = _cursor_of(order, *found[-1]) if found else None
    has_prev = more if backwards else cursor is not None
    has_next = bool(found) if backwards else more
    if counted:
        total = _total(order, *found[0]) if found else 0
    rows = [_strip(order, index, row)[: -1 if counted else None] for index, row in found]
    return Page(
        rows, last if has_next else None, first if has_prev else None, position, total or 0, size
    )


def _total(order: Order, index: int, row: sa.Row[Any]) -> int:
    """Read the capped count that rides along each row, just before the key columns."""
    return int(row[-len(order.segments[index].columns) - 1])


def _segments_from(order: Order, cursor: Cursor | None, backwards: bool) -> range:
    """Return the segment indexes to read, from the cursor's onwards in the reading direction."""
    if backwards:
        start = cursor.segment if cursor is not None else len(order.segments) - 1
        return range(start, -1, -1)
    return range(cursor.segment if cursor is not None else 0, len(order.segments))


def _segment_query(
    query: sa.Select[Any],
    order: Order,
    index: int,
    start: Cursor | None,
    backwards: bool,
    limit: int,
) -> sa.Select[Any]:
    """Build the query of one segment, starting after `start` when given."""
    segment = order.segments[index]
    descending = order.descending != backwards
    if segment.where is not None:
        query = query.where(segment.where)
    if start is not None:
        query = query.where(_beyond(segment.columns, start.values, descending))
    keys = [column.label(f"_key{i}") for i, column in enumerate(segment.columns)]
    ordering = [column.desc() if descending else column.asc() for column in segment.columns]
    return query.add_columns(*keys).order_by(*ordering).limit(limit)


def _beyond(
    columns: tuple[sa.ColumnElement[Any], ...], values: tuple[Any, ...], descending: bool
) -> sa.ColumnElement[bool]:
    """Return `(columns) > (values)` (or `<`): a row comparison both databases answer by index."""
    bound = [sa.literal(value, column.type) for column, value in zip(columns, values, strict=True)]
    if len(columns) == 1:
        left, right = columns[0], bound[0]
    else:
        left, right = sa.tuple_(*columns), sa.tuple_(*bound)
    return left < right if descending else left > right


def _cursor_of(order: Order, index: int, row: sa.Row[Any]) -> str:
    """Return the cursor token of a fetched row (its trailing key columns)."""
    width = len(order.segments[index].columns)
    return encode(Cursor(index, tuple(row[-width:])))


def _strip(order: Order, index: int, row: sa.Row[Any]) -> tuple[Any, ...]:
    """Drop the key columns added for the cursor, leaving the caller's own columns."""
    width = len(order.segments[index].columns)
    return tuple(row[:-width])


def nullable_order(column: sa.ColumnElement[Any], tiebreak: Any, descending: bool) -> Order:
    """Order by a nullable column: rows with a value first, then the rest by the tiebreak."""
    return Order(
        (
            Segment(column.is_not(None), (column, tiebreak)),
            Segment(column.is_(None), (tiebreak,)),
        ),
        descending,
    )


def simple_order(*columns: Any, descending: bool = False) -> Order:
    """Order by non-null columns, the last of them unique."""
    return Order((Segment(None, tuple(columns)),), descending)
