"""Rate limits on failed local sign-ins, kept in the database so every app server counts alike.

Three counts over the last WINDOW decide whether an attempt may check its password:

- per (username, address): PER_PAIR failures refuse that address for that account;
- per address: PER_ADDRESS failures refuse that address for every account;
- per username alone: from SLOW_AFTER failures on, an address that already failed for that
  account must wait before it tries again, a wait that doubles with every further failure.

The account-wide count slows guessing down but never refuses an address that has not failed
for the account: failures sent from elsewhere cannot lock the real admin out of their own
address. Every failed and refused attempt is a `local.failed` audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import LoginFailure
from portal.models.base import utcnow
from portal.services import audit
from portal.services.text import clean_text

WINDOW = timedelta(minutes=15)
PER_PAIR = 5
PER_ADDRESS = 20
SLOW_AFTER = 5
MAX_WAIT = timedelta(minutes=5)


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may check its password, and why not."""

    reason: str | None = None  # None: go ahead
    wait: timedelta = timedelta(0)

    @property
    def allowed(self) -> bool:
        """Tell whether the password may be checked."""
        return self.reason is None


def _key(username: str) -> str:
    """Count `Admin` and ` admin` as the same account, so case or spaces cannot reset the limit."""
    return (clean_text(username, 150) or "").lower()


def _address(remote_addr: str) -> str:
    """Return the client address as stored."""
    return clean_text(remote_addr, 64) or "-"


def _limit(name: str, default: int) -> int:
    """Read a limit, overridable in the app's config (tests, operators' config files)."""
    return int(current_app.config.get(name, default))


def check(username: str, remote_addr: str, now: datetime | None = None) -> Verdict:
    """Decide whether this attempt may check its password (one query)."""
    now = now or utcnow()
    key, address = _key(username), _address(remote_addr)
    recent = LoginFailure.failed_at >= now - WINDOW
    mine = sa.and_(LoginFailure.username == key, LoginFailure.remote_addr == address)
    count = sa.func.count(LoginFailure.id)
    row = db.session.execute(
        sa.select(
            count.filter(mine),
            count.filter(LoginFailure.remote_addr == address),
            count.filter(LoginFailure.username == key),
            sa.func.max(LoginFailure.failed_at).filter(mine),
        ).where(recent, sa.or_(LoginFailure.username == key, LoginFailure.remote_addr == address))
    ).one()
    pair, per_address, per_account, last_mine = row
    if pair >= _limit("LOGIN_FAILURES_PER_PAIR", PER_PAIR):
        return Verdict("too many failures for this account from this address")
    if per_address >= _limit("LOGIN_FAILURES_PER_ADDRESS", PER_ADDRESS):
        return Verdict("too many failures from this address")
    wait = slow_down(per_account)
    if last_mine is not None and now < last_mine + wait:
        return Verdict("account under attack: this address must wait", last_mine + wait - now)
    return Verdict()


def slow_down(failures: int) -> timedelta:
    """Return the wait between one address's attempts on an account with this many failures."""
    extra = failures - _limit("LOGIN_SLOW_AFTER", SLOW_AFTER)
    if extra < 0:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(extra, 20)), MAX_WAIT)


def record_failure(username: str, remote_addr: str, reason: str) -> None:
    """Count one failed sign-in, audit it, and drop failures older than the window."""
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.failed_at < utcnow() - WINDOW))
    db.session.add(LoginFailure(username=_key(username), remote_addr=_address(remote_addr)))
    record_refusal(username, remote_addr, reason)


def record_refusal(username: str, remote_addr: str, reason: str) -> None:
    """Audit an attempt that failed or was refused, without counting it as a guess."""
    key = _key(username)
    audit.record(key or "-", audit.LOCAL_FAILED, key, address=_address(remote_addr), reason=reason)
    db.session.flush()


def clear_failures(username: str, remote_addr: str) -> None:
    """Forget the failures of this account from this address after it signs in from there.

    Failures from other addresses stay: a success here says nothing about the guesses there.
    """
    db.session.execute(
        sa.delete(LoginFailure).where(
            LoginFailure.username == _key(username),
            LoginFailure.remote_addr == _address(remote_addr),
        )
    )
