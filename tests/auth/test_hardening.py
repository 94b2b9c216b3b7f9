"""The outside review's probes of the sign-in: odd tokens and odd claims never give a 5xx."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.auth import entra
from portal.extensions import db
from portal.models import User
from tests.auth.test_login import assert_refused
from tests.helpers import CLIENT_ID, sign_in

OTHER_APP = "22222222-3333-4444-5555-666666666666"


@pytest.fixture(autouse=True)
def disarmed_emulator(emulator: Any) -> Iterator[None]:
    """Disarm whatever a failing test left armed."""
    yield
    emulator.reset_faults()


# Each case arms the emulator to alter the next ID token: (claims, drop, header).
REFUSED: dict[str, dict[str, Any]] = {
    "kid null": {"header": {"kid": None}},
    "kid a number": {"header": {"kid": 7}},
    "oid a number": {"claims": {"oid": 12345}},
    "oid a list": {"claims": {"oid": ["a"]}},
    "oid not a GUID": {"claims": {"oid": "not-a-guid"}},
    "tid a number": {"claims": {"tid": 1}},
    "aud list with another app": {"claims": {"aud": [CLIENT_ID, OTHER_APP], "azp": CLIENT_ID}},
    "aud list without azp": {"claims": {"aud": [CLIENT_ID]}, "drop": ["azp"]},
    "aud list with another azp": {"claims": {"aud": [CLIENT_ID], "azp": OTHER_APP}},
    "aud a number": {"claims": {"aud": 5}},
    "missing sub": {"drop": ["sub"]},
    "sub empty": {"claims": {"sub": ""}},
    "sub a number": {"claims": {"sub": 5}},
    "nonce a number": {"claims": {"nonce": 5}},
    "exp a string": {"claims": {"exp": "tomorrow"}},
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_malformed_id_token_is_refused_on_login_not_a_5xx(
    case: str, app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Eve Mallory", "eve@contoso.example")
    emulator.tamper_next_id_token(**REFUSED[case])

    response = sign_in(client, emulator, oid)

    assert_refused(app, client, response, ["eve@contoso.example", "Eve Mallory"])


def test_aud_list_of_only_this_app_with_azp_is_accepted(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    emulator.tamper_next_id_token(claims={"aud": [CLIENT_ID], "azp": CLIENT_ID})

    response = sign_in(client, emulator, oid)

    assert response.headers["Location"] == "/"


def stored_user(app: Flask, oid: str) -> tuple[str, str | None, str | None]:
    """Return the stored display name, email and UPN of a user."""
    with app.app_context():
        row = db.session.execute(
            sa.select(User.display_name, User.email, User.upn).where(User.object_id == oid)
        ).one()
        return row[0], row[1], row[2]


def test_long_names_and_control_characters_are_clipped_and_dropped_on_every_database(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    name = "N\x00ame " + "x" * 300
    email = "a" * 400 + "\x00@contoso.example"
    emulator.tamper_next_id_token(
        claims={"name": name, "email": email, "preferred_username": "u\x01pn\x9f@contoso.example"}
    )

    response = sign_in(client, emulator, oid)

    assert response.headers["Location"] == "/"
    display_name, stored_email, upn = stored_user(app, oid)
    assert display_name == ("Name " + "x" * 300)[:256]
    assert stored_email == ("a" * 400)[:320]
    assert upn == "upn@contoso.example"


def test_a_name_claim_that_is_no_string_falls_back_to_the_upn(
    app: Flask, client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user(upn="plain@contoso.example")
    emulator.tamper_next_id_token(claims={"name": {"first": "x"}, "email": ["x"]})

    assert sign_in(client, emulator, oid).headers["Location"] == "/"
    assert stored_user(app, oid) == ("plain@contoso.example", None, "plain@contoso.example")


def test_an_unexpected_error_in_the_callback_ends_on_login_and_is_logged_with_its_cause(
    app: Flask,
    client: FlaskClient,
    emulator: Any,
    create_user: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(claims: Any, access_token: Any) -> Any:
        raise KeyError("eve@contoso.example")  # a message that must not reach page or log

    monkeypatch.setattr("portal.auth.routes.sign_in_external", broken)
    oid = create_user("Eve Mallory", "eve@contoso.example")

    with caplog.at_level(logging.WARNING):
        response = sign_in(client, emulator, oid)

    assert_refused(app, client, response, ["eve@contoso.example"])
    assert "unexpected builtins.KeyError at" in caplog.text and "broken" in caplog.text
    assert "eve@contoso.example" not in caplog.text


@pytest.mark.parametrize(
    "change",
    [
        {"issuer": "https://login.evil.example/{tid}/v2.0"},
        {"jwks_uri": "https://keys.evil.example/discovery/v2.0/keys"},
    ],
    ids=["issuer on another host", "jwks_uri on another host"],
)
def test_a_discovery_document_naming_another_host_refuses_sign_in(
    change: dict[str, str],
    app: Flask,
    client: FlaskClient,
    emulator: Any,
    create_user: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = entra.EntraClient.metadata

    def forged(self: entra.EntraClient) -> dict[str, Any]:
        document = dict(real(self))
        document.update({k: v.replace("{tid}", emulator.tenant_id) for k, v in change.items()})
        return document

    monkeypatch.setattr(entra.EntraClient, "metadata", forged)

    response = sign_in(client, emulator, create_user())

    assert_refused(app, client, response, [])


def test_fifty_unknown_kids_fetch_the_key_set_at_most_once_a_minute(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    assert sign_in(app.test_client(), emulator, oid).headers["Location"] == "/"
    with app.app_context():
        jwks = entra.client().jwks
    clock = [time.monotonic() + 1]
    jwks._clock = lambda: clock[0]  # a controllable clock
    before = jwks.fetches

    for i in range(50):
        emulator.tamper_next_id_token(header={"kid": f"made-up-{i}"})
        assert sign_in(app.test_client(), emulator, oid).headers["Location"] == "/login"
    assert jwks.fetches == before + 1

    clock[0] += 61
    for i in range(5):
        emulator.tamper_next_id_token(header={"kid": f"later-{i}"})
        assert sign_in(app.test_client(), emulator, oid).headers["Location"] == "/login"
    assert jwks.fetches == before + 2
