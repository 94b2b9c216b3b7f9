"""The session around sign-in: cookie flags, rotation, disabled users, logout."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import User
from tests.helpers import prepare_callback, sign_in

COOKIE = "portal_session"


def set_active(app: Flask, object_id: str, is_active: bool) -> None:
    """Enable or disable a user straight in the database, as an admin's command would."""
    with app.app_context():
        db.session.execute(
            sa.update(User).where(User.object_id == object_id).values(is_active=is_active)
        )
        db.session.commit()


def cookie_value(client: FlaskClient) -> str:
    """Return the current value of the session cookie."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def test_session_cookie_is_httponly_and_samesite_lax_over_http(
    client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    response = sign_in(client, emulator, create_user())

    header = response.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=")
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header


def test_session_cookie_is_secure_when_the_base_url_is_https(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(PORTAL_BASE_URL="https://portal.example").test_client()

    response = client.get("/auth/login")

    header = response.headers["Set-Cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_sign_in_rotates_the_session(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    callback = prepare_callback(client, emulator, create_user())
    with client.session_transaction() as session:
        session["planted"] = "by an attacker before sign-in"
    before = cookie_value(client)

    client.get(callback)

    assert cookie_value(client) != before
    with client.session_transaction() as session:
        assert "planted" not in session
        assert "auth_flow" not in session
    old = app.test_client()
    old.set_cookie(COOKIE, before)
    assert old.get("/").status_code == 302


def test_disabled_user_gets_the_disabled_page_and_no_session(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Dana Disabled", "dana@contoso.example")
    sign_in(app.test_client(), emulator, oid)
    set_active(app, oid, False)

    response = sign_in(client, emulator, oid)

    assert response.status_code == 403
    assert "Your account is disabled" in response.text
    assert client.get("/").headers["Location"] == "/login?next=/"


def test_signed_in_user_who_gets_disabled_is_anonymous_at_the_next_request(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    sign_in(client, emulator, oid)
    assert client.get("/").status_code == 200

    set_active(app, oid, False)

    assert client.get("/").headers["Location"] == "/login?next=/"


def csrf_token(page: str) -> str:
    """Scrape the sign-out form's CSRF token from a signed-in page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_logout_without_a_csrf_token_is_refused(
    client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    sign_in(client, emulator, create_user())

    response = client.post("/auth/logout")

    assert response.status_code == 400
    assert client.get("/").status_code == 200


def test_logout_ends_the_session_then_the_entra_session(
    client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    sign_in(client, emulator, create_user())
    token = csrf_token(client.get("/").text)

    response = client.post("/auth/logout", data={"csrf_token": token})

    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == emulator.url
    assert target.path == f"/{emulator.tenant_id}/oauth2/v2.0/logout"
    assert parse_qs(target.query) == {"post_logout_redirect_uri": ["http://localhost/login"]}
    assert client.get("/").headers["Location"] == "/login?next=/"
