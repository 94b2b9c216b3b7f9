"""Failed local sign-ins are limited per account and per address, in the database."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import LoginFailure
from portal.models.base import utcnow
from tests.admin.conftest import ADMIN_PASSWORD, local_sign_in, make_local, post


def attempt(client: FlaskClient, username: str, password: str, addr: str = "10.0.0.1") -> int:
    """Post the local sign-in form from an address and return the status code."""
    response = post(
        client,
        "/login",
        {"username": username, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )
    return response.status_code


def test_an_account_is_refused_after_five_failures_even_with_the_right_password(app: Flask) -> None:
    make_local(app, "ops-admin", is_admin=True)
    client = app.test_client()
    assert [attempt(client, "ops-admin", "wrong password!") for _ in range(5)] == [200] * 5

    response = post(client, "/login", {"username": "OPS-admin ", "password": ADMIN_PASSWORD})

    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.text
    assert 'name="username"' in response.text
    assert client.get("/").status_code == 302


def test_other_accounts_from_other_addresses_are_not_limited(app: Flask) -> None:
    make_local(app, "ops-admin", is_admin=True)
    make_local(app, "second-admin", is_admin=True)
    client = app.test_client()
    for _ in range(5):
        attempt(client, "ops-admin", "wrong password!")
    assert attempt(app.test_client(), "second-admin", ADMIN_PASSWORD, addr="10.0.0.2") == 302


def test_an_address_is_refused_after_too_many_failures_across_accounts(app: Flask) -> None:
    app.config["LOGIN_FAILURES_PER_ADDRESS"] = 3
    make_local(app, "ops-admin", is_admin=True)
    client = app.test_client()
    for name in ("alice", "bob", "carol"):
        assert attempt(client, name, "guess", addr="203.0.113.9") == 200
    assert attempt(client, "ops-admin", ADMIN_PASSWORD, addr="203.0.113.9") == 429
    assert attempt(app.test_client(), "ops-admin", ADMIN_PASSWORD, addr="203.0.113.10") == 302


def test_failures_older_than_the_window_no_longer_count(app: Flask) -> None:
    make_local(app, "ops-admin", is_admin=True)
    with app.app_context():
        old = utcnow() - timedelta(minutes=16)
        db.session.add_all(
            [LoginFailure(username="ops-admin", remote_addr="x", failed_at=old) for _ in range(9)]
        )
        db.session.commit()
    assert local_sign_in(app.test_client(), "ops-admin").status_code == 302


def test_a_successful_sign_in_clears_the_accounts_failures(app: Flask) -> None:
    make_local(app, "ops-admin", is_admin=True)
    client = app.test_client()
    for _ in range(4):
        attempt(client, "ops-admin", "wrong password!")
    assert attempt(client, "ops-admin", ADMIN_PASSWORD) == 302
    with app.app_context():
        count = sa.select(sa.func.count(LoginFailure.id)).where(
            LoginFailure.username == "ops-admin"
        )
        assert db.session.scalar(count) == 0


def test_break_glass_form_is_reachable_when_the_local_form_is_hidden(make_app: object) -> None:
    app = make_app(PORTAL_LOCAL_LOGIN="false")  # type: ignore[operator]
    client = app.test_client()
    assert 'name="password"' not in client.get("/login").text
    assert 'name="password"' in client.get("/login?local=1").text
    make_local(app, "ops-admin", is_admin=True)
    assert local_sign_in(client, "ops-admin").status_code == 302
    assert client.get("/admin/users").status_code == 200
