"""User rules: External users keyed by (tenant_id, object_id), Local accounts by username."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.security import check_password_hash, generate_password_hash

from portal.extensions import db
from portal.models import User
from portal.models.base import utcnow
from portal.models.user import EXTERNAL, LOCAL
from portal.services.text import clean_text

# A hash to compare against when the username is unknown, so timing does not reveal which exist.
_DUMMY_HASH = generate_password_hash("not a password")


class UserError(ValueError):
    """A user operation was refused; the message is safe to show."""


def get_external(tenant_id: str, object_id: str) -> User | None:
    """Return the External user with this tenant and object ID."""
    query = sa.select(User).where(User.tenant_id == tenant_id, User.object_id == object_id)
    return db.session.scalars(query).one_or_none()


def upsert_external(claims: Mapping[str, Any], user: User | None = None) -> User:
    """Find or create the External user for verified ID-token claims and refresh their profile.

    A caller that has already loaded the user passes it, which saves a query.
    """
    tenant_id, object_id = claims["tid"].lower(), claims["oid"].lower()
    if user is None:
        user = get_external(tenant_id, object_id)
    if user is None:
        _insert_external_once(tenant_id, object_id)
        user = get_external(tenant_id, object_id)
        assert user is not None  # noqa: S101  (just inserted, or inserted by a concurrent sign-in)
    _refresh_profile(user, claims)
    user.last_login_at = utcnow()
    db.session.flush()
    return user


def _insert_external_once(tenant_id: str, object_id: str) -> None:
    """Insert the user unless a concurrent first sign-in already did (one row, no error)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(User).values(
        tenant_id=tenant_id,
        object_id=object_id,
        user_type=EXTERNAL,
        display_name="",
        is_active=True,
        is_admin=False,
        created_at=utcnow(),
    )
    db.session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant_id", "object_id"]))


def _refresh_profile(user: User, claims: Mapping[str, Any]) -> None:
    """Copy email, name and UPN from the token, touching only what changed."""
    # Claims are clipped to their columns and cleaned of control characters, so a long or odd
    # value stores the same on SQLite and PostgreSQL instead of failing the sign-in.
    email = clean_text(claims.get("email"), 320)
    upn = clean_text(claims.get("preferred_username"), 320)
    name = clean_text(claims.get("name"), 256) or (upn or "")[:256]
    for attr, value in (("email", email), ("display_name", name), ("upn", upn)):
        if getattr(user, attr) != value:
            setattr(user, attr, value)


def create_local(username: str, password: str, *, is_admin: bool = False) -> User:
    """Create a Local account with a scrypt-hashed password."""
    username = username.strip()
    if not username:
        raise UserError("a username is required")
    if len(password) < 12:
        raise UserError("the password must be at least 12 characters long")
    if db.session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise UserError(f"a user named {username!r} already exists")
    user = User(
        username=username,
        user_type=LOCAL,
        display_name=username,
        is_admin=is_admin,
        password_hash=generate_password_hash(password),
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate_local(username: str, password: str) -> User | None:
    """Return the active Local account these credentials open, or None."""
    # A name with control characters (NUL breaks PostgreSQL) names no account: no query.
    name = username.strip()
    clean = clean_text(name, 150) == name
    user = clean and db.session.scalars(sa.select(User).where(User.username == name)).first()
    if not user or user.password_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    user.last_login_at = utcnow()
    return user


def find_user(
    object_id: str | None = None, *, username: str | None = None, tenant_id: str | None = None
) -> User:
    """Return the one user an object ID (optionally narrowed by tenant) or a username names."""
    if username is not None:
        query = sa.select(User).where(User.username == username)
    elif object_id is not None:
        query = sa.select(User).where(User.object_id == object_id.lower())
        if tenant_id:
            query = query.where(User.tenant_id == tenant_id.lower())
    else:
        raise UserError("name a user with an object ID or a username")
    users = db.session.scalars(query.limit(2)).all()
    if not users:
        raise UserError(f"no user {username or object_id!r}")
    if len(users) > 1:
        raise UserError(f"several tenants have a user {object_id!r}: add --tenant")
    return users[0]


def set_active(user: User, is_active: bool) -> bool:
    """Enable or disable a user; return whether anything changed."""
    if user.is_active == is_active:
        return False
    user.is_active = is_active
    db.session.flush()
    return True


def list_all() -> list[User]:
    """Return every user: Local accounts by username, then External users by name."""
    order = (User.user_type.desc(), User.username, User.display_name, User.id)
    query = sa.select(User).order_by(*order)
    return list(db.session.scalars(query))
