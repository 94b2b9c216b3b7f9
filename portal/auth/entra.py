"""Entra ID through MSAL: the only module that imports msal.

MSAL runs the authorization-code flow (state, PKCE, nonce, code redemption). It does not
validate the ID token, so `redeem` hands it to `portal.auth.tokens` before anyone trusts it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal
import requests
from flask import Flask, current_app

from portal.auth.tokens import JwksCache, TokenError, verify_id_token
from portal.http import http_session
from portal.services import graph

log = logging.getLogger(__name__)

# Graph scopes asked for in the same code redemption as `openid profile`, so one round trip
# yields both the ID token and a Graph token for group sync (no on-behalf-of exchange).
GRAPH_SCOPES = ["User.Read", "GroupMember.Read.All"]
METADATA_TTL = 24 * 3600
_WARNINGS_LOCK = threading.Lock()


class SignInError(Exception):
    """A sign-in could not complete; `reason` is for logs and admins, never for the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignInResult:
    """The verified ID-token claims and the Graph access token of one redemption."""

    claims: dict[str, Any]
    access_token: str | None


class _NoReplayCache(dict[str, Any]):
    """An MSAL http_cache that never stores POST answers.

    MSAL replays a token endpoint's 5xx, 429 or Retry-After answer to every later POST with
    the same client and scope for up to an hour, whoever's code it carries; one user's
    transient failure would fail the next user's sign-in. Discovery GETs still cache.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(key, str) and key.startswith("POST "):
            return
        super().__setitem__(key, value)


class _NoTokenCache(msal.TokenCache):
    """A token cache that keeps nothing: the portal uses each Graph token once, in the request.

    A process-wide MSAL cache would grow with every user and hold tokens no other server has.
    """

    def add(self, event: dict[str, Any], now: Any = None) -> None:
        """Drop the tokens MSAL would cache."""
        return None


class CredentialError(Exception):
    """The configured certificate or federated token file cannot be read now."""


class CredentialSource:
    """The app's one credential, in the form MSAL's `client_credential` takes.

    A secret is passed as is. A certificate PEM is split into its key and certificate, so MSAL
    signs the client assertion and names the certificate by its SHA-256 thumbprint (x5t#S256).
    A federated token file is read afresh for every token request, because Kubernetes rotates
    projected service-account tokens in place.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.secret: str | None = config.get("ENTRA_CLIENT_SECRET")
        self.certificate: str | None = config.get("ENTRA_CLIENT_CERTIFICATE")
        self.assertion_file: str | None = config.get("ENTRA_CLIENT_ASSERTION_FILE")

    def msal_credential(self) -> str | dict[str, Any]:
        """Return MSAL's client_credential: the secret, a key and certificate, or a callable."""
        if self.certificate:
            key, cert = self._certificate_parts()
            return {"private_key": key, "public_certificate": cert}
        if self.assertion_file:
            return {"client_assertion": self.read_assertion}
        return str(self.secret)

    def _certificate_parts(self) -> tuple[str, str]:
        """Read the PEM file and return its private key block and its certificate block(s)."""
        path = str(self.certificate)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise CredentialError(
                f"ENTRA_CLIENT_CERTIFICATE cannot be read: {path} ({exc.strerror})"
            ) from None
        key = re.search(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", text, re.S
        )
        certs = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
        if key is None or not certs:
            raise CredentialError(f"ENTRA_CLIENT_CERTIFICATE holds no key and certificate: {path}")
        return key.group(0), "\n".join(certs)

    def read_assertion(self) -> str:
        """Read the federated token file now; MSAL calls this for every token request."""
        path = str(self.assertion_file)
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise CredentialError(
                f"ENTRA_CLIENT_ASSERTION_FILE cannot be read: {path} ({exc.strerror})"
            ) from None
        if not token:
            raise CredentialError(f"ENTRA_CLIENT_ASSERTION_FILE is empty: {path}")
        return token


class EntraClient:
    """One per process: the MSAL application, Entra's metadata and the JWKS cache."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.tenant: str = config["ENTRA_TENANT_ID"]
        self.client_id: str = config["ENTRA_CLIENT_ID"]
        self.allowed_tenants: list[str] = config["ENTRA_ALLOWED_TENANTS"]
        self.authority = f"{config['ENTRA_AUTHORITY_HOST']}/{self.tenant}"
        self._credential = CredentialSource(config)
        self.prompt: str | None = config.get("ENTRA_PROMPT")
        self.domain_hint: str | None = config.get("ENTRA_DOMAIN_HINT")
        self.session = http_session(config["ENTRA_CA_BUNDLE"], config.get("PORTAL_HTTPS_PROXY"))
        self.jwks = JwksCache(self.session)
        self._lock = threading.Lock()
        self._msal: msal.ConfidentialClientApplication | None = None
        self._metadata: tuple[float, dict[str, Any]] | None = None

    def _app(self) -> msal.ConfidentialClientApplication:
        """Build the MSAL application on first use; its constructor fetches discovery."""
        with self._lock:
            if self._msal is None:
                self._msal = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._credential.msal_credential(),
                    authority=self.authority,
                    # Discovery of a sovereign or private host must not ask the public cloud.
                    instance_discovery=False,
                    http_client=self.session,
                    http_cache=_NoReplayCache(),
                    token_cache=_NoTokenCache(),
                )
            return self._msal

    def metadata(self, fresh: bool = False) -> dict[str, Any]:
        """Return the OpenID configuration (issuer, jwks_uri, end_session_endpoint), cached.

        `fresh` reads it again whatever the cache holds (the configuration check).
        """
        cached = self._metadata
        if not fresh and cached is not None and time.monotonic() - cached[0] < METADATA_TTL:
            return cached[1]
        url = f"{self.authority}/v2.0/.well-known/openid-configuration"
        response = self.session.get(url)
        response.raise_for_status()
        document = response.json()
        for key in ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint"):
            if not isinstance(document.get(key), str):
                raise ValueError(f"the OpenID configuration has no {key}")
        self._metadata = (time.monotonic(), document)
        return document

    def begin(self, redirect_uri: str) -> dict[str, Any]:
        """Start an authorization-code flow; keep the returned flow until the callback."""
        try:
            app = self._app()
        except CredentialError as exc:
            raise SignInError(str(exc)) from None
        except (ValueError, requests.RequestException) as exc:
            raise SignInError(f"the sign-in host could not be reached: {_brief(exc)}") from None
        # MSAL warns unless response_mode is form_post, but a cross-site POST from the sign-in
        # host would not carry the SameSite=Lax session cookie, so the flow would be lost.
        # catch_warnings swaps process-wide state: the lock keeps our own calls from interleaving.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "response_mode='form_post'", UserWarning)
            return app.initiate_auth_code_flow(
                GRAPH_SCOPES,
                redirect_uri=redirect_uri,
                response_mode="query",
                prompt=self.prompt,
                domain_hint=self.domain_hint,
            )

    def redeem(self, flow: dict[str, Any], auth_response: dict[str, str]) -> SignInResult:
        """Redeem the code of a callback and verify the ID token, or raise SignInError."""
        result = self._acquire(flow, auth_response)
        if "error" in result:
            raise SignInError(
                f"Entra answered {result.get('error')}: "
                f"{str(result.get('error_description', ''))[:200]}"
            )
        id_token = result.get("id_token")
        if not id_token:
            raise SignInError("the token response carried no ID token")
        try:
            claims = verify_id_token(id_token, self, flow.get("nonce", ""))
        except (TokenError, requests.RequestException, ValueError) as exc:
            raise SignInError(f"the ID token was refused: {_brief(exc)}") from None
        return SignInResult(claims=claims, access_token=result.get("access_token"))

    def _acquire(self, flow: dict[str, Any], auth_response: dict[str, str]) -> dict[str, Any]:
        """Call MSAL, turning every way it can fail into SignInError."""
        if not flow:
            raise SignInError("no sign-in was in progress (expired or lost session)")
        try:
            return self._app().acquire_token_by_auth_code_flow(flow, auth_response)
        except CredentialError as exc:
            raise SignInError(str(exc)) from None
        except (ValueError, RuntimeError, IndexError, KeyError, TypeError) as exc:
            raise SignInError(f"the sign-in response was refused: {_brief(exc)}") from None
        except (msal.exceptions.MsalServiceError, requests.RequestException) as exc:
            raise SignInError(f"the token endpoint failed: {_brief(exc)}") from None

    def logout_url(self, post_logout_redirect_uri: str) -> str:
        """Return the end-session URL that signs the user out of Entra too."""
        from urllib.parse import urlencode

        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except (requests.RequestException, ValueError):
            endpoint = None
        endpoint = endpoint or f"{self.authority}/oauth2/v2.0/logout"
        return f"{endpoint}?{urlencode({'post_logout_redirect_uri': post_logout_redirect_uri})}"

    def acquire_app_token(self, resource: str, tenant: str | None = None) -> str:
        """Get an application token for `resource` (client-credentials grant), or raise SignInError.

        A fresh MSAL application each time: a configuration check or a reconciliation run must
        not be answered from an earlier attempt. The grant needs a real tenant: `tenant`, or
        the configured one, or in a multi-tenant setup the first allowed tenant.
        """
        tenant = tenant or (
            self.allowed_tenants[0] if self.tenant in {"organizations", "common"} else self.tenant
        )
        authority = f"{self.authority.rsplit('/', 1)[0]}/{tenant}"
        try:
            app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._credential.msal_credential(),
                authority=authority,
                instance_discovery=False,
                http_client=self.session,
                http_cache=_NoReplayCache(),
                token_cache=_NoTokenCache(),
            )
            result = app.acquire_token_for_client([f"{resource.rstrip('/')}/.default"])
        except CredentialError as exc:
            raise SignInError(str(exc)) from None
        except (ValueError, msal.exceptions.MsalServiceError, requests.RequestException) as exc:
            raise SignInError(f"the token endpoint failed: {_brief(exc)}") from None
        if not result.get("access_token"):
            description = str(result.get("error_description") or "").partition("\n")[0]
            raise SignInError(f"Entra answered {result.get('error')}: {description[:200]}")
        return str(result["access_token"])


def graph_app_token(tenant_id: str) -> str:
    """Return an application token for Graph in one tenant (client credentials).

    The token provider of `sync reconcile` and the admin's re-sync: a refusal becomes a
    GraphError, which fails that tenant's run like any other Graph failure.
    """
    try:
        return client().acquire_app_token(graph.client().resource, tenant_id)
    except SignInError as exc:
        raise graph.GraphError(f"no application token: {exc.reason}") from None


def _brief(exc: BaseException) -> str:
    """Name an exception in one short line that cannot carry a token."""
    return (
        f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        if str(exc)
        else type(exc).__name__
    )


def init_entra(app: Flask) -> None:
    """Attach a lazily built EntraClient to the app when Entra is configured."""
    if app.config.get("ENTRA_CONFIGURED"):
        app.extensions["portal.entra"] = EntraClient(app.config)


def client() -> EntraClient:
    """Return the current app's EntraClient, or raise SignInError when Entra is not configured."""
    entra = current_app.extensions.get("portal.entra")
    if entra is None:
        raise SignInError("Entra ID is not configured (ENTRA_* variables)")
    return entra
