"""Certificate and federated credentials, end to end: MSAL in the portal against the emulator."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from portal import diagnostics
from portal.dev.emulator.credentials import (
    FEDERATED_AUDIENCE,
    AssertionRefused,
    ClientCredentials,
    make_certificate,
)
from tests.auth.test_policy import events
from tests.helpers import CLIENT_ID, sign_in

ISSUER = "https://oidc.cluster.example/id/7f3c"
SUBJECT = "system:serviceaccount:portal:web"


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    """The outside issuer's signing key (a Kubernetes cluster's service-account issuer)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def registered_certificate(emulator: Any, tmp_path: Path) -> Path:
    """A PEM with key and certificate, whose certificate is uploaded to the app registration."""
    pem = make_certificate("portal-test")
    emulator.add_client_certificate(CLIENT_ID, pem)
    path = tmp_path / "portal.pem"
    path.write_text(pem)
    return path


@pytest.fixture
def federated(emulator: Any, issuer_key: rsa.RSAPrivateKey) -> Iterator[None]:
    """A federated credential trusting ISSUER for SUBJECT on the app registration."""
    public = issuer_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    emulator.add_federated_credential(CLIENT_ID, ISSUER, SUBJECT, public.decode())
    yield
    emulator.clients[CLIENT_ID].credentials.federated.clear()


def outside_token(key: rsa.RSAPrivateKey, subject: str = SUBJECT) -> str:
    """Return a token the outside issuer would write into the projected token file."""
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "aud": FEDERATED_AUDIENCE}
    claims.update({"iat": now, "nbf": now, "exp": now + 3600, "jti": str(uuid.uuid4())})
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def credentials_step(app: Flask) -> diagnostics.Check:
    """Run the configuration check and return its client-credentials step."""
    with app.app_context():
        return {c.name: c for c in diagnostics.run_checks()}["Client credentials accepted"]


def test_certificate_signs_in_and_passes_the_configuration_check(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    registered_certificate: Path,
) -> None:
    app = make_app(ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_CERTIFICATE=str(registered_certificate))
    oid = create_user("Cert User")
    emulator.reset_counters()

    response = sign_in(app.test_client(), emulator, oid)

    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert credentials_step(app).ok
    assert emulator.counters.get("token.assertion_refused", 0) == 0


def test_an_unregistered_certificate_is_refused_by_entra(
    make_app: Callable[..., Flask], emulator: Any, create_user: Callable[..., str], tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger.pem"
    stranger.write_text(make_certificate("not-uploaded"))
    app = make_app(ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_CERTIFICATE=str(stranger))

    response = sign_in(app.test_client(), emulator, create_user("Refused Cert"))

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    failed = events(app, "signin.failed")
    assert failed and "invalid_client" in failed[-1][2]["reason"]
    step = credentials_step(app)
    assert not step.ok and "invalid_client" in step.detail


def test_a_certificate_file_gone_at_run_time_fails_sign_in_on_the_login_page(
    make_app: Callable[..., Flask], registered_certificate: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_CERTIFICATE=str(registered_certificate))
    registered_certificate.unlink()
    client = app.test_client()

    with caplog.at_level(logging.WARNING, logger="portal"):
        response = client.get("/auth/login")

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "cannot be reached" in client.get("/login").text
    assert any("ENTRA_CLIENT_CERTIFICATE cannot be read" in r.getMessage() for r in caplog.records)


def test_federated_token_file_is_read_for_every_token_request(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    tmp_path: Path,
    issuer_key: rsa.RSAPrivateKey,
    federated: None,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(outside_token(issuer_key))
    app = make_app(ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_ASSERTION_FILE=str(token_file))
    oid = create_user("Workload User")

    admitted = sign_in(app.test_client(), emulator, oid)
    checked = credentials_step(app)
    token_file.write_text(outside_token(issuer_key, subject="system:serviceaccount:other:pod"))
    refused = sign_in(app.test_client(), emulator, oid)

    assert admitted.status_code == 302 and admitted.headers["Location"] == "/"
    assert checked.ok
    assert refused.headers["Location"] == "/login"
    assert "AADSTS700213" in events(app, "signin.failed")[-1][2]["reason"]


def test_a_federated_token_file_gone_at_run_time_fails_cleanly(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    tmp_path: Path,
    issuer_key: rsa.RSAPrivateKey,
    federated: None,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(outside_token(issuer_key))
    app = make_app(ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_ASSERTION_FILE=str(token_file))
    client = app.test_client()
    started = client.get("/auth/login")
    assert started.status_code == 302
    token_file.unlink()

    response = sign_in(client, emulator, create_user("Gone Token"))

    assert response.headers["Location"] == "/login"
    reason = events(app, "signin.failed")[-1][2]["reason"]
    assert "ENTRA_CLIENT_ASSERTION_FILE cannot be read" in reason


# -- the emulator's checks of a certificate assertion ---------------------------------------

ENDPOINT = "https://login.example/tenant/oauth2/v2.0/token"


@pytest.fixture(scope="module")
def signer() -> tuple[ClientCredentials, Any, str]:
    """Credentials with one registered certificate, its private key and its x5t#S256."""
    pem = make_certificate("unit")
    credentials = ClientCredentials()
    thumbprint = credentials.add_certificate(pem.split("-----END PRIVATE KEY-----")[1])
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    import base64

    x5t = base64.urlsafe_b64encode(bytes.fromhex(thumbprint)).rstrip(b"=").decode()
    return credentials, key, x5t


def assertion(key: Any, x5t: str, **changes: Any) -> str:
    """Return a private_key_jwt assertion as MSAL builds it, with some claims changed."""
    now = int(time.time())
    claims = {"aud": ENDPOINT, "iss": CLIENT_ID, "sub": CLIENT_ID, "iat": now, "nbf": now}
    claims.update({"exp": now + 600, "jti": str(uuid.uuid4()), **changes})
    return jwt.encode(claims, key, algorithm="PS256", headers={"x5t#S256": x5t})


def test_the_same_assertion_may_come_back_but_its_jti_in_another_is_refused(
    signer: tuple[ClientCredentials, Any, str],
) -> None:
    credentials, key, x5t = signer
    first = assertion(key, x5t, jti="jti-1")
    credentials.verify(CLIENT_ID, first, ENDPOINT)
    credentials.verify(CLIENT_ID, first, ENDPOINT)  # MSAL reuses one for minutes, as Entra allows

    with pytest.raises(AssertionRefused) as replay:
        credentials.verify(CLIENT_ID, assertion(key, x5t, jti="jti-1", iat=1), ENDPOINT)
    assert replay.value.code == 700025


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"aud": "https://login.example/other/oauth2/v2.0/token"}, 700212),
        ({"iss": "someone-else"}, 700021),
        ({"sub": "someone-else"}, 700021),
        ({"exp": int(time.time()) - 3600}, 700024),
    ],
)
def test_a_wrong_audience_issuer_subject_or_expiry_is_refused(
    signer: tuple[ClientCredentials, Any, str], changes: dict[str, Any], code: int
) -> None:
    credentials, key, x5t = signer
    with pytest.raises(AssertionRefused) as refused:
        credentials.verify(CLIENT_ID, assertion(key, x5t, **changes), ENDPOINT)
    assert refused.value.code == code


def test_an_assertion_signed_by_another_key_is_refused(
    signer: tuple[ClientCredentials, Any, str],
) -> None:
    credentials, _, x5t = signer
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AssertionRefused) as refused:
        credentials.verify(CLIENT_ID, assertion(other, x5t), ENDPOINT)
    assert refused.value.code == 700027
