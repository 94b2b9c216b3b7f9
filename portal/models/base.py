"""The typed declarative base: naming convention, shared column types, UTC timestamps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from sqlalchemy import orm as so

# Alembic needs stable constraint names to drop or alter them later, on SQLite batch mode too.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def system_clock() -> datetime:
    """Return the wall-clock time in UTC."""
    return datetime.now(UTC)


# The one seam for time: tests replace `clock` to move time forward without sleeping.
clock: Callable[[], datetime] = system_clock


def utcnow() -> datetime:
    """Return the current time in UTC from `clock`; a callable so each row gets its own."""
    return clock()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC, also on SQLite where tzinfo is dropped."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Store aware datetimes as UTC."""
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Return datetimes as aware UTC."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


intpk = Annotated[int, so.mapped_column(primary_key=True)]
guid = Annotated[str, so.mapped_column(sa.String(36))]
timestamp = Annotated[datetime, so.mapped_column(UTCDateTime(), default=utcnow)]
optional_timestamp = Annotated[datetime | None, so.mapped_column(UTCDateTime())]


class Base(so.DeclarativeBase):
    """Declarative base for every portal model."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        """Show the class and primary key, enough to tell rows apart in logs."""
        pk = ", ".join(str(v) for v in sa.inspect(self).identity or ())
        return f"<{type(self).__name__} {pk}>"
