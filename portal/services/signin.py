"""An External user's sign-in: find or create them, refresh them, sync their groups."""

from __future__ import annotations

from typing import Any

from portal.models import User
from portal.services import sync, users


class UserDisabled(Exception):
    """The user exists but an admin disabled them."""


def sign_in_external(claims: dict[str, Any], access_token: str | None) -> User:
    """Apply one verified sign-in; flushes only, the caller commits once."""
    # One query loads the user with their memberships, groups and cached group names.
    snapshot = sync.load(claims["tid"].lower(), claims["oid"].lower())
    if snapshot.user is not None and not snapshot.user.is_active:
        raise UserDisabled
    # Graph first, writes after: no row lock or SQLite write lock is held while Graph answers.
    resolution = sync.resolve_groups(claims, access_token, snapshot)
    # Then this user's writes are serialised: a sign-in that committed since `load` is waited
    # for and its memberships read again, so the last token wins whole, never a mix of two.
    user = snapshot.user
    if user is None:
        user = users.upsert_external(claims)
    elif not users.stamp_sign_in(user, claims):
        snapshot.memberships = None  # `apply` reads them again, under the lock
    sync.apply(user, resolution)
    return user
