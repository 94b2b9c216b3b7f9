"""Entra sign-in through the real flow: MSAL in the portal against the emulator over TLS."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import User
from tests.helpers import prepare_callback, sign_in

OTHER_TENANT_ID = "7d0c3a5e-6b1f-4d2a-9e8c-1f2a3b4c5d6e"


def users_in(app: Flask) -> list[tuple[Any, ...]]:
    """Return (tenant_id, object_id, email, display_name, user_type) of every user row."""
    with app.app_context():
        query = sa.select(
            User.tenant_id, User.object_id, User.email, User.display_name, User.user_type
        ).order_by(User.id)
        return [tuple(row) for row in db.session.execute(query)]


def is_signed_in(client: FlaskClient) -> bool:
    """Tell whether the client's session opens the home page."""
    return client.get("/").status_code == 200


def assert_refused(app: Flask, client: FlaskClient, response: Any, secrets: list[str]) -> None:
    """A refused callback: a 302 to /login, no session, no user row, nothing sensitive shown."""
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    page = client.get("/login")
    assert page.status_code == 200
    assert "did not complete" in page.text
    for body in (response.text, page.text):
        assert "eyJ" not in body  # the start of every JWT: no token is echoed
        for secret in secrets:
            assert secret not in body
    assert client.get("/").headers["Location"] == "/login?next=/"
    assert users_in(app) == []


@pytest.fixture
def other_tenant(emulator: Any) -> str:
    """A second tenant in the emulator, with nobody from it registered in the portal."""
    if emulator.directory.find_tenant(OTHER_TENANT_ID) is None:
        emulator.add_tenant(OTHER_TENANT_ID, name="Fabrikam")
    return OTHER_TENANT_ID


def test_first_sign_in_creates_external_user_and_shows_profile(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Ada Lovelace", "ada@contoso.example")

    response = sign_in(client, emulator, oid)

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert "Ada Lovelace" in home.text and "ada@contoso.example" in home.text
    assert users_in(app) == [
        (emulator.tenant_id, oid, "ada@contoso.example", "Ada Lovelace", "External")
    ]


def test_second_sign_in_refreshes_email_and_name_of_the_same_user(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Grace Hopper", "grace@contoso.example")
    sign_in(client, emulator, oid)
    emulator.set_user(oid, email="grace.hopper@contoso.example", display_name="Grace B. Hopper")

    sign_in(app.test_client(), emulator, oid)

    assert users_in(app) == [
        (emulator.tenant_id, oid, "grace.hopper@contoso.example", "Grace B. Hopper", "External")
    ]


def test_another_object_id_with_the_same_email_is_another_user(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    first = create_user("Sam One", "sam@contoso.example", upn="sam1@contoso.example")
    second = create_user("Sam Two", "sam@contoso.example", upn="sam2@contoso.example")

    sign_in(app.test_client(), emulator, first)
    sign_in(app.test_client(), emulator, second)

    assert [row[1] for row in users_in(app)] == [first, second]


# Each case arms the emulator to alter the next ID token: (claims, drop, sign).
TAMPERED: dict[str, Callable[[Any, int], dict[str, Any]]] = {
    "other tenant": lambda emu, now: {
        "claims": {"tid": OTHER_TENANT_ID, "iss": f"{emu.url}/{OTHER_TENANT_ID}/v2.0"}
    },
    "wrong aud": lambda emu, now: {"claims": {"aud": "22222222-3333-4444-5555-666666666666"}},
    "wrong iss": lambda emu, now: {
        "claims": {"iss": f"https://login.evil.example/{emu.tenant_id}/v2.0"}
    },
    "expired": lambda emu, now: {"claims": {"exp": now - 301, "iat": now - 4000}},
    "nbf in the future": lambda emu, now: {"claims": {"nbf": now + 400}},
    "missing iat": lambda emu, now: {"drop": ["iat"]},
    "bad signature": lambda emu, now: {"sign": "bad_signature"},
    "alg none": lambda emu, now: {"sign": "none"},
    "unknown kid": lambda emu, now: {"sign": "unknown_key"},
    "nonce mismatch": lambda emu, now: {"claims": {"nonce": "0" * 64}},
    "missing oid": lambda emu, now: {"drop": ["oid"]},
}


@pytest.mark.parametrize("case", TAMPERED, ids=list(TAMPERED))
def test_tampered_id_token_is_refused_without_session_or_user(
    case: str,
    app: Flask,
    client: FlaskClient,
    emulator: Any,
    create_user: Callable[..., str],
    other_tenant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    oid = create_user("Eve Mallory", "eve@contoso.example")
    emulator.tamper_next_id_token(**TAMPERED[case](emulator, int(time.time())))

    response = sign_in(client, emulator, oid)

    assert_refused(app, client, response, ["eve@contoso.example", "Eve Mallory"])
    assert "eyJ" not in caplog.text and "eve@contoso.example" not in caplog.text


def test_state_mismatch_is_refused(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    callback = prepare_callback(client, emulator, create_user())
    path, _, query = callback.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&"))
    params["state"] = "forged-state"

    response = client.get(path, query_string=params)

    assert_refused(app, client, response, [])


def test_callback_without_a_flow_in_the_session_is_refused(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    callback = prepare_callback(app.test_client(), emulator, create_user())
    stranger = app.test_client()

    assert_refused(app, stranger, stranger.get(callback), [])


def test_replayed_callback_is_refused(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    first = app.test_client()
    callback = prepare_callback(first, emulator, create_user())
    # A second browser holding the same pre-callback sign-in cookie replays the same redirect.
    second = app.test_client()
    cookie = first.get_cookie("portal_signin", path="/auth")
    assert cookie is not None
    second.set_cookie("portal_signin", cookie.value, path="/auth")
    assert first.get(callback).status_code == 302 and is_signed_in(first)

    replay = second.get(callback)

    assert replay.headers["Location"] == "/login"
    assert not is_signed_in(second)
    assert len(users_in(app)) == 1


def test_idp_error_response_is_refused(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    emulator.idp_error_next("access_denied", "The user cancelled.")

    response = sign_in(client, emulator, create_user())

    assert_refused(app, client, response, ["The user cancelled."])


def test_token_endpoint_500_for_one_user_does_not_fail_the_next_users_sign_in(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    unlucky, lucky = app.test_client(), app.test_client()
    emulator.token_fault_next(500)
    assert sign_in(unlucky, emulator, create_user()).headers["Location"] == "/login"

    response = sign_in(lucky, emulator, create_user())

    assert response.headers["Location"] == "/"
    assert is_signed_in(lucky) and not is_signed_in(unlucky)


def test_sign_in_succeeds_after_the_signing_key_rotates(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    assert sign_in(app.test_client(), emulator, oid).headers["Location"] == "/"
    emulator.rotate_signing_key()

    response = sign_in(app.test_client(), emulator, oid)

    assert response.headers["Location"] == "/"


def test_multi_tenant_portal_admits_only_allowed_tenants(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    other_tenant: str,
) -> None:
    app = make_app(ENTRA_TENANT_ID="organizations", ENTRA_ALLOWED_TENANTS=emulator.tenant_id)
    member = create_user("Allowed Member")
    outsider = create_user("Fabrikam Person", tenant_id=other_tenant)

    admitted = sign_in(app.test_client(), emulator, member)
    refused = sign_in(app.test_client(), emulator, outsider)

    assert admitted.headers["Location"] == "/"
    assert refused.headers["Location"] == "/login"
    assert [row[:2] for row in users_in(app)] == [(emulator.tenant_id, member)]


@pytest.mark.parametrize(
    "next_url", ["//evil.example", "https://evil.example", "/\\evil.example", "javascript:alert(1)"]
)
def test_foreign_next_stays_on_site(
    next_url: str, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    response = sign_in(client, emulator, create_user(), next_url=next_url)

    assert response.headers["Location"] == "/"


def test_local_next_is_honoured(
    client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    response = sign_in(client, emulator, create_user(), next_url="/admin/users?x=1")

    assert response.headers["Location"] == "/admin/users?x=1"


def test_unreachable_sign_in_host_shows_the_sign_in_page_with_an_error(
    make_app: Callable[..., Flask],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    client = make_app(ENTRA_AUTHORITY_HOST=f"https://127.0.0.1:{closed_port}").test_client()

    response = client.get("/auth/login", follow_redirects=True)

    assert response.status_code == 200
    assert response.request.path == "/login"
    assert "cannot be reached" in response.text
