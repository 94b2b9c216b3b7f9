"""Behind proxies: client addresses, request IDs, and logs that never carry a token or secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import (
    CLIENT_SECRET,
    prepare_callback,
    sign_in,
)


@pytest.mark.parametrize(("hops", "seen"), [("0", "127.0.0.1"), ("1", "203.0.113.9")])
def test_trusted_proxy_hops_decide_the_client_address_and_scheme(
    make_app: Callable[..., Flask], hops: str, seen: str
) -> None:
    app = make_app(PORTAL_TRUSTED_PROXIES=hops)
    app.add_url_rule("/_whoami", "whoami", lambda: f"{_remote()} {_scheme()}")
    headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https"}

    answer = app.test_client().get(
        "/_whoami", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )

    assert answer.get_data(as_text=True) == f"{seen} {'https' if hops == '1' else 'http'}"


def _remote() -> str:
    """Return the client address Flask sees."""
    from flask import request

    return request.remote_addr or ""


def _scheme() -> str:
    """Return the scheme Flask sees."""
    from flask import request

    return request.scheme


def test_request_ids_are_echoed_or_made(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-1234"})
    hostile = client.get("/healthz", headers={"X-Request-ID": "<script>" + "x" * 100})
    made = client.get("/healthz")

    assert given.headers["X-Request-ID"] == "lb-1234"
    assert "<" not in hostile.headers["X-Request-ID"] and len(hostile.headers["X-Request-ID"]) == 16
    assert made.headers["X-Request-ID"] != hostile.headers["X-Request-ID"]


def test_json_logs_are_one_object_per_line_with_the_request_id(
    monkeypatch: pytest.MonkeyPatch,
    make_app: Callable[..., Flask],
    capsys: pytest.CaptureFixture[str],
    emulator: Any,
    create_user: Callable[..., str],
) -> None:
    monkeypatch.setenv("PORTAL_LOG_FORMAT", "json")
    client = make_app().test_client()
    capsys.readouterr()

    callback = sign_in(client, emulator, create_user("Json Person"))
    out = capsys.readouterr().out

    entries = [json.loads(line) for line in out.splitlines()]
    sign_ins = [e for e in entries if e["logger"] == "portal.audit" and "sign-in" in e["message"]]
    assert callback.status_code == 302 and len(sign_ins) == 1
    assert sign_ins[0]["request_id"] == callback.headers["X-Request-ID"]
    assert {"time", "level", "logger", "request_id", "message"} <= set(sign_ins[0])


def test_no_log_line_of_a_sign_in_carries_a_token_or_secret(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_app().test_client()
    issued: list[str] = []
    from portal.auth import entra

    original = entra.EntraClient._acquire

    def capture(self: Any, flow: dict[str, Any], auth_response: dict[str, str]) -> dict[str, Any]:
        result = original(self, flow, auth_response)
        issued.extend(result.get(k, "") for k in ("id_token", "access_token", "refresh_token"))
        return result

    monkeypatch.setattr(entra.EntraClient, "_acquire", capture)
    caplog.set_level(logging.INFO)  # more than production's WARNING for other libraries
    caplog.set_level(logging.DEBUG, logger="portal")
    path = prepare_callback(client, emulator, create_user("Secret Keeper"))
    code = path.split("code=")[1].split("&")[0]

    assert client.get(path).status_code == 302
    secrets = [s for s in issued if s] + [CLIENT_SECRET, code]
    assert len(secrets) >= 3
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert any(r.name == "portal.audit" and "sign-in" in r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in text
        assert secret.split(".")[-1] not in text  # not even a JWT's signature alone
