"""ID-token helpers that the flow tests cannot reach: malformed key sets from the sign-in host."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

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
