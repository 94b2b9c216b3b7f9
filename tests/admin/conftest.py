"""Fixtures of the admin console tests: signed-in admins, CSRF-aware posts, statement counts."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import User
from portal.services import users

ADMIN_PASSWORD = "correct horse battery staple"
TENANT_ID = "00000000-0000-0000-0000-00000000000a"
TOKEN = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/login?local=1") -> str:
    """Return the CSRF token of the client's session, read from a page as a browser would."""
    match = TOKEN.search(client.get(page).text)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


def post(client: FlaskClient, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client), **(data or {})}, **kwargs)


def local_sign_in(client: FlaskClient, username: str, password: str = ADMIN_PASSWORD) -> Any:
    """Sign a Local account in through the /login form."""
    return post(client, "/login", {"username": username, "password": password})


def make_local(app: Flask, username: str, *, is_admin: bool) -> int:
    """Create a Local account and return its id."""
    with app.app_context():
        user = users.create_local(username, ADMIN_PASSWORD, is_admin=is_admin)
        db.session.commit()
        return user.id


@dataclass
class Admin:
    """A signed-in local admin: their id, username and test client."""

    id: int
    username: str
    client: FlaskClient


@pytest.fixture
def admin(app: Flask) -> Admin:
    """A local admin signed in on their own test client."""
    user_id = make_local(app, "root-admin", is_admin=True)
    client = app.test_client()
    assert local_sign_in(client, "root-admin").status_code == 302
    return Admin(user_id, "root-admin", client)


def add_external(app: Flask, count: int, **fields: Any) -> list[int]:
    """Insert External users straight into the database and return their ids."""
    with app.app_context():
        rows = []
        for i in range(count):
            object_id = str(uuid.uuid4())
            rows.append(
                User(
                    tenant_id=TENANT_ID,
                    object_id=object_id,
                    user_type="External",
                    display_name=fields.get("display_name", f"Person {i:04d}"),
                    email=fields.get("email", f"person{i:04d}.{object_id[:6]}@contoso.example"),
                    upn=f"person{i:04d}.{object_id[:6]}@contoso.example",
                    is_active=fields.get("is_active", True),
                )
            )
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]
