"""Rate limits on failed local sign-ins, per account and per address, kept in the database.

Failures live in `login_failures`, not in process memory, so every app server behind a load
balancer counts the same attempts. A limited account is refused before its password is
checked, so guessing cannot go on however fast it is tried.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import LoginFailure
from portal.models.base import utcnow

WINDOW = timedelta(minutes=15)
PER_ACCOUNT = 5
PER_ADDRESS = 20


def _key(username: str) -> str:
    """Count `Admin` and ` admin` as the same account, so case or spaces cannot reset the limit."""
    return username.strip().lower()[:150]


def _limits() -> tuple[int, int]:
    """Return the allowed failures per account and per address within the window."""
    config = current_app.config
    return (
        int(config.get("LOGIN_FAILURES_PER_ACCOUNT", PER_ACCOUNT)),
        int(config.get("LOGIN_FAILURES_PER_ADDRESS", PER_ADDRESS)),
    )


def is_limited(username: str, remote_addr: str) -> bool:
    """Tell whether this account or this address failed too often lately (one query)."""
    since = utcnow() - WINDOW
    per_account = sa.select(sa.func.count(LoginFailure.id)).where(
        LoginFailure.username == _key(username), LoginFailure.failed_at >= since
    )
    per_address = sa.select(sa.func.count(LoginFailure.id)).where(
        LoginFailure.remote_addr == remote_addr[:64], LoginFailure.failed_at >= since
    )
    account, address = db.session.execute(
        sa.select(per_account.scalar_subquery(), per_address.scalar_subquery())
    ).one()
    max_account, max_address = _limits()
    return account >= max_account or address >= max_address


def record_failure(username: str, remote_addr: str) -> None:
    """Count one failed sign-in and drop failures older than the window."""
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.failed_at < utcnow() - WINDOW))
    db.session.add(LoginFailure(username=_key(username), remote_addr=remote_addr[:64]))
    db.session.flush()


def clear_failures(username: str) -> None:
    """Forget an account's failures after it signs in successfully."""
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.username == _key(username)))
