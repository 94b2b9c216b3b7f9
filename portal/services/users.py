"""User rules: External users keyed by (tenant_id, object_id), Local accounts by username."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from portal.database import insert
from portal.extensions import db
from portal.models import User
from portal.models.base import utcnow
from portal.models.session import DISABLED
from portal.models.user import EXTERNAL, LOCAL
from portal.services import sessions
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
        # Locked (PostgreSQL; SQLite's INSERT already holds the write lock) until the commit, so
        # a concurrent sign-in of the same person syncs after this one, not interleaved.
        query = sa.select(User).where(User.tenant_id == tenant_id, User.object_id == object_id)
        user = db.session.scalars(query.with_for_update()).one()
    _refresh_profile(user, claims)
    user.last_login_at = utcnow()
    db.session.flush()
    return user


def _insert_external_once(tenant_id: str, object_id: str) -> None:
    """Insert the user unless a concurrent first sign-in already did (one row, no error)."""
    stmt = insert(db.session, User).values(
        tenant_id=tenant_id,
        object_id=object_id,
        user_type=EXTERNAL,
        display_name="",
        is_active=True,
        is_admin=False,
        created_at=utcnow(),
    )
    db.session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant_id", "object_id"]))


def stamp_sign_in(user: User, claims: Mapping[str, Any]) -> bool:
    """Refresh a loaded External user's profile and last sign-in time in one guarded UPDATE.

    The UPDATE matches only while `last_login_at` is still what was loaded, and holds the row
    (PostgreSQL) or the database (SQLite) until the commit. When another sign-in of this user
    committed in between, the row is locked, reloaded and updated anyway, and False says that
    whatever was loaded with the user (their memberships) must be read again.
    """
    values = {**_profile(claims), "last_login_at": utcnow()}
    seen = user.last_login_at
    guard = User.last_login_at.is_(None) if seen is None else User.last_login_at == seen
    current = _update(user, values, guard)
    if not current:
        locked = sa.select(User).where(User.id == user.id).with_for_update()
        db.session.scalars(locked.execution_options(populate_existing=True)).one()  # reloads
        _update(user, values)
    for attr, value in values.items():
        set_committed_value(user, attr, value)  # the row already holds it: no second UPDATE
    return current


def _update(user: User, values: Mapping[str, Any], *guards: sa.ColumnElement[bool]) -> bool:
    """Write values to the user's row; return whether the guarded row matched."""
    statement = sa.update(User).where(User.id == user.id, *guards).values(**values)
    result = db.session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _profile(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Return email, name and UPN as stored from the token's claims."""
    # Clipped to their columns and cleaned of control characters, so a long or odd value
    # stores the same on SQLite and PostgreSQL instead of failing the sign-in.
    email = clean_text(claims.get("email"), 320)
    upn = clean_text(claims.get("preferred_username"), 320)
    name = clean_text(claims.get("name"), 256) or (upn or "")[:256]
    return {"email": email, "display_name": name, "upn": upn}


def _refresh_profile(user: User, claims: Mapping[str, Any]) -> None:
    """Copy email, name and UPN from the token, touching only what changed."""
    for attr, value in _profile(claims).items():
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


def find_user(key: str, *, tenant_id: str | None = None) -> User:
    """Return the one user a key names: an object ID (narrowed by tenant), username, email or UPN.

    The admin console's forms and the CLI's --user/--username both name users this way.
    """
    key = key.strip()
    by_id = User.object_id == key.lower()
    if tenant_id:
        by_id = sa.and_(by_id, User.tenant_id == tenant_id.lower())
    named = sa.or_(
        User.username == key,
        sa.func.lower(User.email) == key.lower(),
        sa.func.lower(User.upn) == key.lower(),
    )
    query = sa.select(User).where(by_id if tenant_id else sa.or_(by_id, named))
    found = db.session.scalars(query.limit(2)).all()
    if not found:
        raise UserError(f"no user {key!r}")
    if len(found) > 1:
        raise UserError(
            f"several users match {key!r}: use the object ID (and --tenant where tenants share it)"
        )
    return found[0]


def set_active(user: User, is_active: bool, *, end_reason: str = DISABLED) -> bool:
    """Enable or disable a user; return whether anything changed.

    Disabling ends every open session of the user (for `end_reason`); enabling revives none.
    """
    # An admin's word replaces Entra's: reconciliation no longer re-enables this user.
    user.is_entra_disabled = False
    if user.is_active == is_active:
        return False
    user.is_active = is_active
    if not is_active:
        sessions.end_all(user.id, end_reason)
    db.session.flush()
    return True


def list_all() -> list[User]:
    """Return every user: Local accounts by username, then External users by name."""
    order = (User.user_type.desc(), User.username, User.display_name, User.id)
    query = sa.select(User).order_by(*order)
    return list(db.session.scalars(query))
