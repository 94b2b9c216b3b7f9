"""ID-token helpers that the flow tests cannot reach: malformed key sets from the sign-in host."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from portal.auth.tokens import TokenError, signing_keys


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
