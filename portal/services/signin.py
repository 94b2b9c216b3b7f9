"""An External user's sign-in: the access policy, then find or create them and sync their groups."""

from __future__ import annotations

from typing import Any

from portal.models import User
from portal.services import audit, policy, sync, users
from portal.services.operations import describe
from portal.services.text import clean_text


class UserDisabled(Exception):
    """The user exists but an admin disabled them."""


def sign_in_external(claims: dict[str, Any], access_token: str | None) -> User:
    """Apply one verified sign-in; flushes only, the caller commits once.

    Raises policy.Refused before any write, so a refused person leaves no user row and an
    existing user's memberships stay as they were.
    """
    policy.check_identity(claims)
    # Two reads: the user, then their memberships, groups and cached group names as plain rows.
    snapshot = sync.load_snapshot(claims["tid"].lower(), claims["oid"].lower())
    if snapshot.user is not None and not snapshot.user.is_active:
        raise UserDisabled
    # Graph first, writes after: no row lock or SQLite write lock is held while Graph answers.
    resolution = sync.resolve_groups(claims, access_token, snapshot)
    policy.check_membership(claims, resolution)
    # Then this user's writes are serialised: a sign-in that committed since `load` is waited
    # for and its memberships read again, so the last token wins whole, never a mix of two.
    user = snapshot.user
    if user is None:
        user = users.upsert_external(claims)
    elif not users.stamp_sign_in(user, claims):
        snapshot.memberships = None  # `apply` reads them again, under the lock
    if user.app_roles != resolution.roles:
        user.app_roles = resolution.roles or []
    sync.apply(user, resolution)
    audit.record(
        audit.user_ref(user),
        audit.SIGNIN_OK,
        describe(user),
        tenant=user.tenant_id,
        user_id=user.id,
    )
    return user


def refused_actor(claims: dict[str, Any]) -> str:
    """Name the person of a refused sign-in as audit actors name External users."""
    return f"user:{str(claims.get('oid', '')).lower()}"


def refused_target(claims: dict[str, Any]) -> str:
    """Name the person of a refused sign-in as audit targets name users: name <object id>."""
    oid = str(claims.get("oid", "")).lower()
    # The claims are outside input: a NUL would fail the audit insert on PostgreSQL.
    name = clean_text(claims.get("name"), 200) or clean_text(claims.get("preferred_username"), 200)
    return f"{name} <{oid}>" if name else oid
