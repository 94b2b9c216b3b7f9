"""Failed local sign-ins are limited per (account, address) and per address, and slowed down
per account, in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AuditEvent, LoginFailure
from portal.models.base import utcnow
from portal.services import login_limits
from tests.helpers import ADMIN_PASSWORD, local_sign_in, make_local, post


def attempt(client: FlaskClient, username: str, password: str, addr: str = "10.0.0.1") -> int:
    """Post the local sign-in form from an address and return the status code."""
    response = post(
        client,
        "/login",
        {"username": username, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )
    return response.status_code


def test_an_address_is_refused_for_an_account_after_five_failures_even_with_the_right_password(
    app: Flask,
) -> None:
    make_local(app, "ops-admin", is_admin=True)
    client = app.test_client()
    assert [attempt(client, "ops-admin", "wrong password!") for _ in range(5)] == [200] * 5

    response = post(
        client,
        "/login",
        {"username": "OPS-admin ", "password": ADMIN_PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )

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


def local_failed_events(app: Flask) -> list[tuple[str, str, dict[str, str]]]:
    """Return (actor, target, details) of every `local.failed` audit event, oldest first."""
    with app.app_context():
        query = (
            sa.select(AuditEvent.actor, AuditEvent.target, AuditEvent.details)
            .where(AuditEvent.action == "local.failed")
            .order_by(AuditEvent.id)
        )
        return [tuple(row) for row in db.session.execute(query)]  # type: ignore[misc]


def test_failures_from_many_addresses_cannot_lock_the_admin_out_of_their_own_address(
    app: Flask,
) -> None:
    make_local(app, "ops-admin", is_admin=True)
    attacker = app.test_client()
    for i in range(12):
        assert attempt(attacker, "ops-admin", "wrong password!", addr=f"198.51.100.{i}") == 200

    assert attempt(app.test_client(), "ops-admin", ADMIN_PASSWORD, addr="10.0.0.7") == 302


def test_an_account_under_attack_makes_each_failing_address_wait_longer(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_local(app, "ops-admin", is_admin=True)
    now = utcnow()
    with app.app_context():
        db.session.add_all(
            LoginFailure(
                username="ops-admin",
                remote_addr=f"198.51.100.{i}",
                failed_at=now - timedelta(seconds=10),
            )
            for i in range(9)
        )
        db.session.commit()
    # Nine failures: four past SLOW_AFTER, so an address that failed waits 2**4 = 16 s.
    with app.app_context():
        assert login_limits.slow_down(9) == timedelta(seconds=16)
    clock = [now]
    monkeypatch.setattr(login_limits, "utcnow", lambda: clock[0])
    client = app.test_client()

    assert attempt(client, "ops-admin", ADMIN_PASSWORD, addr="198.51.100.3") == 429
    assert attempt(client, "ops-admin", ADMIN_PASSWORD, addr="10.0.0.7") == 302
    clock[0] = now + timedelta(seconds=7)
    assert attempt(app.test_client(), "ops-admin", ADMIN_PASSWORD, addr="198.51.100.3") == 302


def test_the_wait_grows_with_failures_and_stays_bounded(app: Flask) -> None:
    with app.app_context():
        waits = [login_limits.slow_down(n) for n in (0, 4, 5, 6, 10, 1000)]
    assert waits[:2] == [timedelta(0), timedelta(0)]
    assert waits[2] < waits[3] < waits[4] <= waits[5] == login_limits.MAX_WAIT


def test_every_failed_and_refused_attempt_is_a_local_failed_audit_event(app: Flask) -> None:
    app.config["LOGIN_FAILURES_PER_PAIR"] = 2
    make_local(app, "ops-admin", is_admin=True)
    client = app.test_client()

    statuses = [
        attempt(client, "Ops-Admin", "wrong password!", addr="203.0.113.5") for _ in range(3)
    ]

    assert statuses == [200, 200, 429]
    events = local_failed_events(app)
    assert [(actor, target) for actor, target, _ in events] == [("ops-admin", "ops-admin")] * 3
    assert [details["address"] for _, _, details in events] == ["203.0.113.5"] * 3
    assert "too many failures" in events[2][2]["reason"]
    assert "too many failures" not in events[0][2]["reason"]


def test_odd_usernames_fail_like_any_other_on_every_database(app: Flask) -> None:
    make_local(app, "ops-admin", is_admin=True)
    client = app.test_client()
    for name in ("ops\x00admin", "x" * 5000, "\x01\x02", "   "):
        assert attempt(client, name, "wrong password!") == 200
    assert len(local_failed_events(app)) == 4
