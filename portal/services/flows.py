"""Sign-in flows in progress (state, nonce, PKCE verifier, next), kept on the server by state.

A browser holds only a random sign-in key in its own cookie; each flow row carries the key's
hash, so a callback completes only in the browser that started it, and several tabs of one
browser can sign in at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.models import SignInFlow
from portal.models.base import utcnow

LIFETIME = timedelta(minutes=10)
PER_BROWSER = 5
STATE_LENGTH = 128


@dataclass(frozen=True)
class PendingFlow:
    """A flow read back at the callback."""

    id: int
    flow: dict[str, Any]
    next_url: str


def browser_hash(key: str) -> str:
    """Return the stored form of a browser's sign-in key."""
    return hashlib.sha256(key.encode()).hexdigest()


def save(key: str, flow: dict[str, Any], next_url: str, *, new_key: bool = False) -> None:
    """Keep a new flow for this browser, dropping its oldest beyond PER_BROWSER.

    A key made for this request (`new_key`) has no flows yet, which saves the dropping.
    """
    owner = browser_hash(key)
    if not new_key:
        _drop_oldest(owner)
    now = utcnow()
    db.session.add(
        SignInFlow(
            state=str(flow["state"]),
            browser_hash=owner,
            flow=flow,
            next_url=next_url,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    db.session.flush()


def _drop_oldest(owner: str) -> None:
    """Delete the browser's flows but its newest PER_BROWSER - 1, making room for one more."""
    newest = (
        sa.select(SignInFlow.id)
        .where(SignInFlow.browser_hash == owner)
        .order_by(SignInFlow.id.desc())
        .limit(PER_BROWSER - 1)
    )
    db.session.execute(
        sa.delete(SignInFlow)
        .where(SignInFlow.browser_hash == owner, SignInFlow.id.not_in(newest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )


def find(key: str, state: str) -> PendingFlow | None:
    """Return this browser's unexpired flow with this state, or None."""
    if not key or not state or len(state) > STATE_LENGTH:
        return None
    query = sa.select(SignInFlow.id, SignInFlow.flow, SignInFlow.next_url).where(
        SignInFlow.state == state,
        SignInFlow.browser_hash == browser_hash(key),
        SignInFlow.expires_at > utcnow(),
    )
    row = db.session.execute(query).first()
    return PendingFlow(row.id, row.flow, row.next_url) if row is not None else None


def consume(pending: PendingFlow) -> bool:
    """Delete a flow as its sign-in completes; False when a concurrent callback already did."""
    statement = sa.delete(SignInFlow).where(SignInFlow.id == pending.id)
    return bool(db.session.execute(statement).rowcount)
