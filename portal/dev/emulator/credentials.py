"""Client authentication without a secret, checked as Entra checks it.

A certificate credential is a `private_key_jwt` assertion: its header names a registered
certificate by SHA-256 (`x5t#S256`) or SHA-1 (`x5t`) thumbprint; the signature must verify
against that certificate, `aud` must be the token endpoint, `iss` and `sub` the client ID, and it
must be within its lifetime. A `jti` belongs to one assertion: the same assertion may come back
while valid (MSAL reuses one for about nine minutes, and Entra accepts that), but another
assertion carrying a `jti` already seen is refused as a replay.

A federated credential is a token from an outside issuer (e.g. a Kubernetes service account):
its issuer and subject must match a registered federated credential, its audience be
`api://AzureADTokenExchange`, and its signature verify against that issuer's key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .pki import b64url

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
SKEW_SECONDS = 300


class AssertionRefused(Exception):
    """The client assertion fails a check; `code` is the AADSTS number Entra uses."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FederatedCredential:
    """A trust in an outside issuer's tokens for one subject."""

    issuer: str
    subject: str
    public_key_pem: str
    audience: str = FEDERATED_AUDIENCE


@dataclass
class ClientCredentials:
    """An app registration's certificates (by thumbprint) and federated credentials."""

    certificates: dict[str, Any] = field(default_factory=dict)
    federated: list[FederatedCredential] = field(default_factory=list)
    seen_jti: dict[str, tuple[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_certificate(self, cert_pem: str | bytes) -> str:
        """Register a certificate's public key; return its SHA-256 thumbprint (hex)."""
        data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
        cert = x509.load_pem_x509_certificate(data)
        key = cert.public_key()
        self.certificates[b64url(cert.fingerprint(hashes.SHA256()))] = key
        self.certificates[b64url(cert.fingerprint(hashes.SHA1()))] = key  # noqa: S303 - x5t
        return cert.fingerprint(hashes.SHA256()).hex()

    def verify(self, client_id: str, assertion: str, token_endpoint: str) -> None:
        """Check one client assertion, or raise AssertionRefused."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise AssertionRefused(700023, "Client assertion is not a valid JWT.") from None
        if "x5t#S256" in header or "x5t" in header:
            self._verify_certificate(client_id, assertion, header, token_endpoint)
        else:
            self._verify_federated(assertion)

    def _verify_certificate(
        self, client_id: str, assertion: str, header: dict[str, Any], token_endpoint: str
    ) -> None:
        thumbprint = str(header.get("x5t#S256") or header.get("x5t"))
        # MSAL pads its base64url thumbprints; RFC 7515 does not: accept both, as Entra does.
        key = self.certificates.get(thumbprint.rstrip("="))
        if key is None:
            raise AssertionRefused(
                700027,
                f"The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of "
                f"key used by client: '{thumbprint}']",
            )
        claims = _decode(assertion, key, ["PS256", "RS256"], token_endpoint)
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise AssertionRefused(700021, "Client assertion application identifier mismatch.")
        self._use_jti(assertion, claims)

    def _use_jti(self, assertion: str, claims: dict[str, Any]) -> None:
        digest = hashlib.sha256(assertion.encode()).hexdigest()
        now = time.time()
        with self.lock:
            self.seen_jti = {j: v for j, v in self.seen_jti.items() if v[1] + SKEW_SECONDS > now}
            seen = self.seen_jti.get(str(claims["jti"]))
            if seen is not None and seen[0] != digest:
                raise AssertionRefused(
                    700025, "Client assertion contains a jti that was already used."
                )
            self.seen_jti[str(claims["jti"])] = (digest, float(claims["exp"]))

    def _verify_federated(self, assertion: str) -> None:
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AssertionRefused(700023, "Client assertion is not a valid JWT.") from None
        by_issuer = [f for f in self.federated if f.issuer == unverified.get("iss")]
        if not by_issuer:
            raise AssertionRefused(
                700211,
                "No matching federated identity record found for presented assertion issuer.",
            )
        match = next((f for f in by_issuer if f.subject == unverified.get("sub")), None)
        if match is None:
            raise AssertionRefused(
                700213,
                "No matching federated identity record found for presented assertion subject.",
            )
        key = serialization.load_pem_public_key(match.public_key_pem.encode())
        _decode(assertion, key, ["RS256"], match.audience)


def _decode(assertion: str, key: Any, algorithms: list[str], audience: str) -> dict[str, Any]:
    """Verify signature, audience and lifetime; raise AssertionRefused naming the failed check."""
    try:
        return jwt.decode(
            assertion,
            key,
            algorithms=algorithms,
            audience=audience,
            leeway=SKEW_SECONDS,
            options={"require": ["exp", "iss", "sub", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise AssertionRefused(
            700024, "Client assertion is not within its valid time range."
        ) from None
    except jwt.InvalidAudienceError:
        raise AssertionRefused(
            700212, f"Client assertion audience claim does not match: expected {audience}."
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise AssertionRefused(700023, f"Client assertion lacks the claim {exc.claim}.") from None
    except jwt.PyJWTError:
        raise AssertionRefused(700027, "Client assertion failed signature validation.") from None


def make_certificate(common_name: str = "portal", days: int = 365) -> str:
    """Return a new PEM holding an RSA private key and its self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem.decode() + cert.public_bytes(serialization.Encoding.PEM).decode()
