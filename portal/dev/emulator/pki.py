"""Private PKI for the emulator: a CA, a TLS server certificate and the token-signing keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
SIGNING_KEY_FILE = "signing-key.pem"
# Renew the server certificate this long before it expires, so a long-lived state dir keeps working.
_RENEW_MARGIN = dt.timedelta(days=7)


def b64url(data: bytes) -> str:
    """Encode bytes as unpadded base64url, as JOSE and Entra's client_info use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def _read_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portal Entra emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_cert(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = _name("Portal emulator local CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_cert(
    key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey, ca: x509.Certificate
) -> x509.Certificate:
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=397))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_or_create_ca(state_dir: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate, bool]:
    ca_path, key_path = state_dir / CA_FILE, state_dir / CA_KEY_FILE
    if ca_path.exists() and key_path.exists():
        return _read_key(key_path), x509.load_pem_x509_certificate(ca_path.read_bytes()), False
    key = _new_rsa_key()
    cert = _ca_cert(key)
    _write_key(key_path, key)
    ca_path.write_bytes(_pem(cert))
    return key, cert, True


def _server_cert_usable(state_dir: Path) -> bool:
    cert_path = state_dir / SERVER_CERT_FILE
    if not (cert_path.exists() and (state_dir / SERVER_KEY_FILE).exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc - _RENEW_MARGIN > _now()


def ensure_tls_files(state_dir: Path) -> Path:
    """Create (or reuse) the CA and the server certificate in state_dir; return the CA path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca, ca_is_new = _load_or_create_ca(state_dir)
    if ca_is_new or not _server_cert_usable(state_dir):
        key = _new_rsa_key()
        _write_key(state_dir / SERVER_KEY_FILE, key)
        (state_dir / SERVER_CERT_FILE).write_bytes(_pem(_server_cert(key, ca_key, ca)))
    return state_dir / CA_FILE


def server_ssl_context(state_dir: Path) -> ssl.SSLContext:
    """Build the TLS server context from the certificate files in state_dir."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(state_dir / SERVER_CERT_FILE, state_dir / SERVER_KEY_FILE)
    return context


@dataclass(frozen=True)
class SigningKey:
    """An RSA token-signing key and its key id (the RFC 7638 thumbprint)."""

    key: rsa.RSAPrivateKey
    kid: str

    def public_jwk(self) -> dict[str, str]:
        """Return the key as an Entra-style JWKS entry."""
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _int_b64(numbers.n),
            "e": _int_b64(numbers.e),
        }


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _thumbprint(key: rsa.RSAPrivateKey) -> str:
    numbers = key.public_key().public_numbers()
    canonical = json.dumps(
        {"e": _int_b64(numbers.e), "kty": "RSA", "n": _int_b64(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url(hashlib.sha256(canonical.encode()).digest())


def make_signing_key(key: rsa.RSAPrivateKey | None = None) -> SigningKey:
    """Wrap key (or a fresh one) as a SigningKey."""
    key = key or _new_rsa_key()
    return SigningKey(key=key, kid=_thumbprint(key))


def load_or_create_signing_key(state_dir: Path) -> SigningKey:
    """Load the persisted signing key from state_dir, creating it on first use."""
    path = state_dir / SIGNING_KEY_FILE
    if path.exists():
        return make_signing_key(_read_key(path))
    signing = make_signing_key()
    _write_key(path, signing.key)
    return signing


def rotate_signing_key(state_dir: Path) -> SigningKey:
    """Replace the persisted signing key with a new one and return it."""
    signing = make_signing_key()
    _write_key(state_dir / SIGNING_KEY_FILE, signing.key)
    return signing
