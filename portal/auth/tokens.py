"""ID-token checks MSAL leaves to the app: signature, issuer, audience, tenant, times, nonce."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import TYPE_CHECKING, Any

import jwt
import requests

if TYPE_CHECKING:
    from portal.auth.entra import EntraClient

SKEW_SECONDS = 300  # the contract's maximum clock skew
JWKS_TTL = 24 * 3600
UNKNOWN_KID_BACKOFF = 60  # the same unknown kid refetches at most once a minute
REQUIRED = ["iss", "aud", "exp", "nbf", "iat", "tid", "oid", "nonce"]


class TokenError(Exception):
    """The ID token failed a check; the message names the check, never the token."""


class JwksCache:
    """The sign-in host's signing keys by `kid`, refetched on an unknown key (rotation)."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._missing: dict[str, float] = {}
        self.fetches = 0

    def key(self, jwks_uri: str, kid: str) -> jwt.PyJWK:
        """Return the key with this kid, refetching once when it is unknown or stale."""
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > JWKS_TTL
            recently_missing = now - self._missing.get(kid, float("-inf")) < UNKNOWN_KID_BACKOFF
            if stale or (kid not in self._keys and not recently_missing):
                self._fetch(jwks_uri)
            if kid not in self._keys:
                self._missing[kid] = now
                raise TokenError("the token is signed with a key the sign-in host does not list")
            return self._keys[kid]

    def refresh(self, jwks_uri: str) -> int:
        """Read the JWKS again now and return how many signing keys it holds."""
        with self._lock:
            self._fetch(jwks_uri)
            return len(self._keys)

    def _fetch(self, jwks_uri: str) -> None:
        """Replace the cached keys with the current JWKS, keeping only RSA signing keys."""
        response = self._session.get(jwks_uri)
        response.raise_for_status()
        self._keys = signing_keys(response.json())
        self._missing.clear()
        self._fetched_at = time.monotonic()
        self.fetches += 1


def signing_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """Return a JWKS document's RSA signing keys by kid, skipping entries that cannot be used."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise TokenError("the sign-in host's key set is malformed")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
        except jwt.PyJWTError:
            continue  # one malformed key must not lock everyone out; its kid stays unknown
    return keys


def expected_issuer(template: str, tenant_id: str) -> str:
    """Fill the multi-tenant issuer template (`{tenantid}`) with the token's tenant."""
    return template.replace("{tenantid}", tenant_id)


def _header(id_token: str) -> dict[str, Any]:
    """Read the JOSE header, accepting RS256 only (no `none`, no HMAC confusion)."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.DecodeError:
        raise TokenError("the token is not a JWT") from None
    if header.get("alg") != "RS256":
        raise TokenError(f"the token's algorithm {header.get('alg')!r} is not RS256")
    if not isinstance(header.get("kid"), str):
        raise TokenError("the token names no signing key")
    return header


def _decode(id_token: str, key: jwt.PyJWK, audience: str) -> dict[str, Any]:
    """Check the signature, audience and times with PyJWT."""
    try:
        return jwt.decode(
            id_token,
            key,
            algorithms=["RS256"],
            audience=audience,
            leeway=SKEW_SECONDS,
            options={"require": REQUIRED, "verify_iss": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"{type(exc).__name__}: {exc}") from None


def _check_claims(claims: dict[str, Any], client: EntraClient, issuer: str, nonce: str) -> None:
    """Check tenant, issuer, issue time and nonce, which PyJWT cannot know."""
    tenant_id = str(claims["tid"]).lower()
    if tenant_id not in client.allowed_tenants:
        raise TokenError("the token's tenant is not allowed to sign in")
    if claims["iss"] != expected_issuer(issuer, str(claims["tid"])):
        raise TokenError("the token's issuer does not match the sign-in host")
    if not isinstance(claims["iat"], int | float) or claims["iat"] > time.time() + SKEW_SECONDS:
        raise TokenError("the token was issued in the future")
    # MSAL sends the SHA-256 of the flow's secret nonce; the token must echo exactly that.
    expected = hashlib.sha256(nonce.encode()).hexdigest()
    if not nonce or not hmac.compare_digest(str(claims["nonce"]), expected):
        raise TokenError("the token's nonce does not match this sign-in")
    if not str(claims["oid"]).strip():
        raise TokenError("the token has no object ID")


def verify_id_token(id_token: str, client: EntraClient, nonce: str) -> dict[str, Any]:
    """Return the claims of an ID token that passes every check, or raise TokenError."""
    header = _header(id_token)
    metadata = client.metadata()
    key = client.jwks.key(metadata["jwks_uri"], header["kid"])
    claims = _decode(id_token, key, client.client_id)
    _check_claims(claims, client, metadata["issuer"], nonce)
    return claims
