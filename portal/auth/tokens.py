"""ID-token checks MSAL leaves to the app: signature, issuer, audience, tenant, times, nonce."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
import requests

if TYPE_CHECKING:
    from portal.auth.entra import EntraClient

SKEW_SECONDS = 300  # the contract's maximum clock skew
JWKS_TTL = 24 * 3600
# Unknown kids refetch the key set at most once a minute, whichever kid it is: a stream of
# made-up kids must not turn every sign-in into a request to the sign-in host.
REFETCH_INTERVAL = 60
REQUIRED = ["iss", "aud", "exp", "nbf", "iat", "tid", "oid", "sub", "nonce"]
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BASE64URL = re.compile(rb"[A-Za-z0-9_-]+")  # unpadded, as the JWS compact serialization is


class TokenError(Exception):
    """The ID token failed a check; the message names the check, never the token."""


class JwksCache:
    """The sign-in host's signing keys by `kid`, refetched on an unknown key (rotation)."""

    def __init__(self, session: requests.Session, clock: Any = time.monotonic) -> None:
        self._session = session
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._refetched_at = float("-inf")
        self.fetches = 0

    def key(self, jwks_uri: str, kid: str | None) -> jwt.PyJWK:
        """Return the key with this kid (or the only key, for a token naming none).

        The set is fetched when stale; a kid it lacks (a rotation) refetches it, but at most
        once per REFETCH_INTERVAL across all kids.
        """
        with self._lock:
            now = self._clock()
            if now - self._fetched_at > JWKS_TTL:
                self._fetch(jwks_uri)
            elif not self._has(kid) and now - self._refetched_at >= REFETCH_INTERVAL:
                self._refetched_at = now
                self._fetch(jwks_uri)
            if kid is None:
                if len(self._keys) != 1:
                    raise TokenError("the token names no signing key and the key set has several")
                return next(iter(self._keys.values()))
            if kid not in self._keys:
                raise TokenError("the token is signed with a key the sign-in host does not list")
            return self._keys[kid]

    def refresh(self, jwks_uri: str) -> int:
        """Read the JWKS again now and return how many signing keys it holds."""
        with self._lock:
            self._fetch(jwks_uri)
            return len(self._keys)

    def _has(self, kid: str | None) -> bool:
        """Tell whether the cached set can answer for this kid."""
        return len(self._keys) == 1 if kid is None else kid in self._keys

    def _fetch(self, jwks_uri: str) -> None:
        """Replace the cached keys with the current JWKS, keeping only RSA signing keys."""
        # Counted before the request: a failing sign-in host is not asked again at once either.
        self._fetched_at = self._clock()
        self.fetches += 1
        response = self._session.get(jwks_uri)
        response.raise_for_status()
        self._keys = signing_keys(response.json())


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


def _segments(id_token: str) -> tuple[bytes, bytes, bytes, bytes]:
    """Split a compact JWS into its decoded header, payload and signature, and signing input.

    PyJWT checks the base64url alphabet one character at a time in Python, twice per token:
    about 9 ms of CPU for a token with 150 groups. A regular expression does the same check.
    """
    parts = id_token.encode("ascii", "replace").split(b".")
    if len(parts) != 3 or not all(BASE64URL.fullmatch(part) for part in parts):
        raise TokenError("the token is not a JWT")
    try:
        header, payload, signature = (
            base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)) for part in parts
        )
    except (binascii.Error, ValueError):
        raise TokenError("the token is not a JWT") from None
    return header, payload, signature, parts[0] + b"." + parts[1]


def _json_object(raw: bytes) -> dict[str, Any]:
    """Parse a JWT segment that must be a JSON object."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise TokenError("the token is not a JWT") from None
    if not isinstance(value, dict):
        raise TokenError("the token is not a JWT")
    return value


def _header(id_token: str) -> dict[str, Any]:
    """Read the JOSE header, accepting RS256 only (no `none`, no HMAC confusion)."""
    header = _json_object(_segments(id_token)[0])
    if header.get("alg") != "RS256":
        raise TokenError("the token's algorithm is not RS256")
    if "kid" in header and not isinstance(header["kid"], str):
        raise TokenError("the token's key ID is not a string")
    return header


def _decode(id_token: str, key: jwt.PyJWK, audience: str) -> dict[str, Any]:
    """Check the RS256 signature with the cached key, then required claims, times, audience."""
    _, payload, signature, signed = _segments(id_token)
    if not key.Algorithm.verify(signed, key.key, signature):
        raise TokenError("InvalidSignatureError: Signature verification failed")
    claims = _json_object(payload)
    missing = [name for name in REQUIRED if name not in claims]
    if missing:
        raise TokenError(f"MissingRequiredClaimError: Token is missing the {missing[0]!r} claim")
    _check_times(claims)
    aud = claims["aud"]
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise TokenError("InvalidAudienceError: Audience doesn't match")
    return claims


def _check_times(claims: dict[str, Any]) -> None:
    """Check exp, nbf and iat are numbers and the token is valid now, with SKEW_SECONDS."""
    now = time.time()
    for name in ("exp", "nbf", "iat"):
        if isinstance(claims[name], bool) or not isinstance(claims[name], int | float):
            raise TokenError(f"a time claim is malformed ({name} is not a number)")
    if claims["exp"] <= now - SKEW_SECONDS:
        raise TokenError("ExpiredSignatureError: Signature has expired")
    if claims["nbf"] > now + SKEW_SECONDS:
        raise TokenError("ImmatureSignatureError: The token is not yet valid (nbf)")


def _check_audience(claims: dict[str, Any], client_id: str) -> None:
    """Refuse an `aud` list with an audience other than this app, and check `azp` for a list.

    PyJWT accepts any list that contains the client ID; OpenID Connect Core 3.1.3.7 asks the
    client to refuse audiences it does not trust, and to check `azp` when there are several.
    """
    audience = claims["aud"]
    if isinstance(audience, str):
        return
    if not isinstance(audience, list) or any(item != client_id for item in audience):
        raise TokenError("the token's audience names another application")
    if claims.get("azp") != client_id:
        raise TokenError("the token's authorized party is not this application")


def _check_claims(claims: dict[str, Any], client: EntraClient, issuer: str, nonce: str) -> None:
    """Check tenant, issuer, issue time and nonce, which PyJWT cannot know."""
    for name in ("tid", "oid", "sub", "iss"):
        if not isinstance(claims[name], str) or not claims[name].strip():
            raise TokenError(f"the token's {name} claim is not a non-empty string")
    if not GUID.match(claims["oid"].lower()) or not GUID.match(claims["tid"].lower()):
        raise TokenError("the token's object ID or tenant ID is not a GUID")
    tenant_id = claims["tid"].lower()
    if tenant_id not in client.allowed_tenants:
        raise TokenError("the token's tenant is not allowed to sign in")
    if claims["iss"] != expected_issuer(issuer, claims["tid"]):
        raise TokenError("the token's issuer does not match the sign-in host")
    if not isinstance(claims["iat"], int | float) or claims["iat"] > time.time() + SKEW_SECONDS:
        raise TokenError("the token was issued in the future")
    # MSAL sends the SHA-256 of the flow's secret nonce; the token must echo exactly that.
    expected = hashlib.sha256(nonce.encode()).hexdigest()
    if not nonce or not hmac.compare_digest(str(claims["nonce"]).encode(), expected.encode()):
        raise TokenError("the token's nonce does not match this sign-in")


def check_metadata(metadata: dict[str, Any], authority: str) -> None:
    """Refuse a discovery document whose issuer or key set is not the configured host and tenant.

    The document comes over TLS from the configured host, but a proxy, a misrouted host or a
    compromised path must not be able to name another issuer or another key set.
    """
    host, _, tenant = authority.rstrip("/").rpartition("/")
    segment = "{tenantid}" if tenant.lower() in {"organizations", "common"} else tenant.lower()
    if str(metadata["issuer"]).lower() != f"{host}/{segment}/v2.0".lower():
        raise TokenError("the discovery document names an unexpected issuer")
    jwks = urlsplit(metadata["jwks_uri"])
    configured = urlsplit(host)
    if (jwks.scheme, jwks.netloc.lower()) != (configured.scheme, configured.netloc.lower()):
        raise TokenError("the discovery document's key set is not on the sign-in host")


def verify_id_token(id_token: str, client: EntraClient, nonce: str) -> dict[str, Any]:
    """Return the claims of an ID token that passes every check, or raise TokenError."""
    header = _header(id_token)
    metadata = client.metadata()
    check_metadata(metadata, client.authority)
    key = client.jwks.key(metadata["jwks_uri"], header.get("kid"))
    claims = _decode(id_token, key, client.client_id)
    _check_audience(claims, client.client_id)
    _check_claims(claims, client, metadata["issuer"], nonce)
    return claims
