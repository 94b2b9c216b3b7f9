"""JWT minting and checking for the emulator: id tokens, Graph access tokens, tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .pki import SigningKey, b64url, make_signing_key

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCES = (GRAPH_RESOURCE, GRAPH_APP_ID)
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
SIGN_MODES = ("ok", "unknown_key", "bad_signature", "none")


@dataclass
class Tamper:
    """Changes applied to the next id_token only (see Emulator.tamper_next_id_token)."""

    claims: dict[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    header: dict[str, Any] = field(default_factory=dict)
    sign: str = "ok"


def _segment(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode())


def _rs256(key: SigningKey, signing_input: bytes) -> str:
    return b64url(key.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))


def _corrupt(signature: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0xFF
    return b64url(bytes(raw))


def pairwise_sub(oid: str, client_id: str) -> str:
    """Return a stable per-app subject for a user, like Entra's pairwise `sub`."""
    return b64url(hashlib.sha256(f"{oid}:{client_id}".encode()).digest())


def client_info(oid: str, tid: str) -> str:
    """Return Entra's client_info: base64url JSON of uid and utid."""
    return b64url(json.dumps({"uid": oid, "utid": tid}, separators=(",", ":")).encode())


def random_uti() -> str:
    """Return a random unique token identifier in Entra's 22-character form."""
    return b64url(secrets.token_bytes(16))


class TokenSigner:
    """Holds the signing keys; signs id/access tokens and verifies access tokens for Graph."""

    def __init__(self, current: SigningKey) -> None:
        self._lock = threading.Lock()
        self.current = current
        # Retired keys still verify access tokens issued before a rotation (they stay valid
        # until they expire at Graph), but are no longer published in the JWKS.
        self._all: dict[str, SigningKey] = {current.kid: current}
        self._unknown: SigningKey | None = None
        self._tamper: Tamper | None = None

    def rotate(self, new_key: SigningKey) -> None:
        """Make new_key the one that signs and the only one in the JWKS."""
        with self._lock:
            self.current = new_key
            self._all[new_key.kid] = new_key

    def jwks(self) -> dict[str, Any]:
        """Return the published key set."""
        return {"keys": [self.current.public_jwk()]}

    def set_tamper(self, tamper: Tamper | None) -> None:
        """Arm (or clear) tampering for the next id_token."""
        if tamper and tamper.sign not in SIGN_MODES:
            raise ValueError(f"sign must be one of {SIGN_MODES}")
        with self._lock:
            self._tamper = tamper

    def _take_tamper(self) -> Tamper:
        with self._lock:
            tamper, self._tamper = self._tamper, None
        return tamper or Tamper()

    def _unknown_key(self) -> SigningKey:
        with self._lock:
            if self._unknown is None:
                self._unknown = make_signing_key()
            return self._unknown

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign claims with the current key (RS256, kid in the header)."""
        return self._encode(claims, {}, "ok")

    def sign_id_token(self, claims: dict[str, Any]) -> str:
        """Sign an id_token, applying and consuming any armed tampering."""
        tamper = self._take_tamper()
        claims = {k: v for k, v in {**claims, **tamper.claims}.items() if k not in tamper.drop}
        return self._encode(claims, tamper.header, tamper.sign)

    def _encode(self, claims: dict[str, Any], header_extra: dict[str, Any], sign: str) -> str:
        key = self._unknown_key() if sign == "unknown_key" else self.current
        header = {"typ": "JWT", "alg": "RS256", "kid": key.kid}
        if sign == "none":
            header = {"typ": "JWT", "alg": "none"}
        header.update(header_extra)
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        if sign == "none":
            return signing_input + "."
        signature = _rs256(key, signing_input.encode())
        if sign == "bad_signature":
            signature = _corrupt(signature)
        return f"{signing_input}.{signature}"

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid emulator-issued Graph token; raise jwt.PyJWTError."""
        kid = jwt.get_unverified_header(token).get("kid")
        with self._lock:
            key = self._all.get(kid or "")
        if key is None:
            raise jwt.InvalidTokenError("unknown signing key")
        return jwt.decode(
            token,
            key.key.public_key(),
            algorithms=["RS256"],
            audience=list(GRAPH_AUDIENCES),
            options={"require": ["exp", "tid"]},
        )


def split_scopes(scope: str) -> tuple[list[str], list[str]]:
    """Split a scope string into (OIDC scopes, Graph scopes without the resource prefix)."""
    oidc: list[str] = []
    resource: list[str] = []
    for item in scope.split():
        if item.lower() in OIDC_SCOPES:
            oidc.append(item.lower())
            continue
        short = item.rsplit("/", 1)[-1] if item.lower().startswith(GRAPH_RESOURCE) else item
        if short not in resource:
            resource.append(short)
    return oidc, resource


def now() -> int:
    """Return the current time as JWT NumericDate."""
    return int(time.time())


def new_id() -> str:
    """Return a random GUID, used for session and correlation ids."""
    return str(uuid.uuid4())
