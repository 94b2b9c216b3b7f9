"""ID-token helpers that the flow tests cannot reach: malformed key sets from the sign-in host."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from portal.auth import tokens
from portal.auth.tokens import REFETCH_INTERVAL, JwksCache, TokenError, check_metadata, signing_keys


def rsa_jwk(kid: str) -> dict[str, str]:
    """Return the public JWK of a fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def test_signing_keys_skip_malformed_and_non_signing_entries() -> None:
    document = {
        "keys": [
            rsa_jwk("good"),
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {**rsa_jwk("encryption"), "use": "enc"},
            {"kty": "EC", "kid": "ec"},
            "not a key",
        ]
    }

    assert list(signing_keys(document)) == ["good"]


@pytest.mark.parametrize("document", [[], {"keys": "none"}, {}, "text"])
def test_signing_keys_refuse_a_document_without_a_key_list(document: object) -> None:
    with pytest.raises(TokenError):
        signing_keys(document)


class FakeSession:
    """A requests stand-in that serves one JWKS document and counts the fetches."""

    def __init__(self, document: dict[str, object]) -> None:
        self.document = document
        self.gets = 0

    def get(self, url: str) -> FakeSession:
        self.gets += 1
        return self

    def raise_for_status(self) -> None:
        return None

    def json(self) -> dict[str, object]:
        return self.document


def test_a_token_without_kid_uses_the_only_key_of_the_set() -> None:
    cache = JwksCache(FakeSession({"keys": [rsa_jwk("only")]}))  # type: ignore[arg-type]

    assert cache.key("https://host/keys", None).key_id == "only"


def test_a_token_without_kid_is_refused_when_the_set_has_several_keys() -> None:
    session = FakeSession({"keys": [rsa_jwk("one"), rsa_jwk("two")]})
    cache = JwksCache(session, clock=lambda: 1000.0)  # type: ignore[arg-type]

    for _ in range(3):
        with pytest.raises(TokenError):
            cache.key("https://host/keys", None)
    assert session.gets == 2  # the first fetch and one refetch


def test_unknown_kids_refetch_once_per_interval_whichever_kid_it_is() -> None:
    session = FakeSession({"keys": [rsa_jwk("known")]})
    now = [1000.0]
    cache = JwksCache(session, clock=lambda: now[0])  # type: ignore[arg-type]
    cache.key("https://host/keys", "known")

    for i in range(50):
        with pytest.raises(TokenError):
            cache.key("https://host/keys", f"unknown-{i}")
    assert session.gets == 2  # the first fetch, then one refetch for all fifty
    now[0] += REFETCH_INTERVAL
    with pytest.raises(TokenError):
        cache.key("https://host/keys", "unknown-again")
    assert session.gets == 3


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.mark.parametrize(
    ("authority", "issuer", "jwks_uri"),
    [
        (
            f"https://login.example/{TENANT}",
            f"https://login.example/{TENANT}/v2.0",
            "https://login.example/k",
        ),
        (
            "https://login.example/organizations",
            "https://login.example/{tenantid}/v2.0",
            "https://login.example/k",
        ),
    ],
)
def test_discovery_matching_the_configured_host_and_tenant_passes(
    authority: str, issuer: str, jwks_uri: str
) -> None:
    check_metadata({"issuer": issuer, "jwks_uri": jwks_uri}, authority)


@pytest.mark.parametrize(
    ("issuer", "jwks_uri"),
    [
        (
            f"https://login.example/{'0' * 8}-0000-0000-0000-{'0' * 12}/v2.0",
            "https://login.example/k",
        ),
        (f"https://evil.example/{TENANT}/v2.0", "https://login.example/k"),
        (f"https://login.example/{TENANT}/v2.0", "https://evil.example/k"),
        (f"https://login.example/{TENANT}/v2.0", "http://login.example/k"),
    ],
)
def test_discovery_naming_another_tenant_or_host_is_refused(issuer: str, jwks_uri: str) -> None:
    with pytest.raises(TokenError):
        check_metadata({"issuer": issuer, "jwks_uri": jwks_uri}, f"https://login.example/{TENANT}")


PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = jwt.PyJWK({**RSAAlgorithm.to_jwk(PRIVATE.public_key(), as_dict=True), "kid": "k"}, "RS256")


def id_token(**changes: Any) -> str:
    """Sign a valid-looking ID token with PRIVATE, with claims changed or removed (None)."""
    now = int(time.time())
    claims = {"iss": "i", "aud": "app", "exp": now + 600, "nbf": now, "iat": now,
              "tid": "t", "oid": "o", "sub": "s", "nonce": "n", "groups": ["g"] * 150}  # fmt: skip
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, PRIVATE, algorithm="RS256", headers={"kid": "k"})


def test_a_valid_token_decodes_to_its_claims() -> None:
    token = id_token(aud=["other", "app"])

    assert tokens._header(token)["kid"] == "k"
    assert tokens._decode(token, PUBLIC, "app")["oid"] == "o"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: id_token(exp=int(time.time()) - tokens.SKEW_SECONDS - 1), "expired"),
        (lambda: id_token(nbf=int(time.time()) + tokens.SKEW_SECONDS + 60), "not yet valid"),
        (lambda: id_token(aud="someone-else"), "Audience"),
        (lambda: id_token(nonce=None), "'nonce'"),
        (lambda: id_token(exp="tomorrow"), "exp is not a number"),
        (lambda: id_token()[:-4] + "AAAA", "Signature verification failed"),
        (lambda: id_token().replace(".", "=.", 1), "not a JWT"),
        (lambda: id_token().replace(".", "!.", 1), "not a JWT"),
        (lambda: id_token() + ".x", "not a JWT"),
    ],
)
def test_a_token_failing_a_check_is_refused_with_that_check_named(
    make: Callable[[], str], reason: str
) -> None:
    token = make()  # built now: a token built at import time would expire during a long run

    with pytest.raises(TokenError, match=reason):
        tokens._decode(token, PUBLIC, "app")


def test_a_token_with_a_changed_payload_fails_the_signature() -> None:
    header, payload, signature = id_token().split(".")
    forged = jwt.encode({"oid": "admin"}, "k" * 32, algorithm="HS256").split(".")[1]

    with pytest.raises(TokenError, match="Signature"):
        tokens._decode(f"{header}.{forged}.{signature}", PUBLIC, "app")


@pytest.mark.parametrize(("alg", "reason"), [("HS256", "not RS256"), ("none", "not a JWT")])
def test_only_rs256_headers_are_accepted(alg: str, reason: str) -> None:
    token = jwt.encode({"a": 1}, "k" * 32 if alg == "HS256" else None, algorithm=alg)

    with pytest.raises(TokenError, match=reason):
        tokens._header(token)
