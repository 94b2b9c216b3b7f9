"""Configuration checks, like "Save and Test" elsewhere: each step passes or fails with the reason.

It sits above the services and auth layers and asks only the Entra client and the Graph client,
so it checks the very code paths sign-in uses. Steps: the database answers; Entra's discovery
document is reachable and names the expected issuer; its JWKS holds signing keys; the client
credentials are accepted (client-credentials grant for the configured Graph host); Graph
answers the application token and lets it read groups. A step whose input an
earlier step could not provide is skipped. Nothing here shows a token or a secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import sqlalchemy as sa
from flask import current_app

from portal.auth import entra
from portal.auth.tokens import TokenError, expected_issuer
from portal.config import MULTI_TENANT
from portal.extensions import db
from portal.services import graph

SECRETS = {"SECRET_KEY", "ENTRA_CLIENT_SECRET"}
SHOWN = (
    "PORTAL_ENV",
    "PORTAL_BASE_URL",
    "SQLALCHEMY_DATABASE_URI",
    "ENTRA_TENANT_ID",
    "ENTRA_ALLOWED_TENANTS",
    "ENTRA_CLIENT_ID",
    "ENTRA_CLIENT_SECRET",
    "ENTRA_CLOUD",
    "ENTRA_AUTHORITY_HOST",
    "GRAPH_ENDPOINT",
    "ENTRA_CA_BUNDLE",
    "ENTRA_CLIENT_CERTIFICATE",
    "ENTRA_CLIENT_ASSERTION_FILE",
    "ENTRA_PROMPT",
    "ENTRA_DOMAIN_HINT",
    "PORTAL_HTTPS_PROXY",
    "PORTAL_ADMIN_GROUP_IDS",
    "PORTAL_ADMIN_APP_ROLES",
    "PORTAL_ALLOWED_GROUP_IDS",
    "PORTAL_ALLOWED_APP_ROLES",
    "PORTAL_ALLOW_GUESTS",
    "GROUP_SYNC_MODE",
    "GROUP_SYNC_FILTER",
    "GROUP_NAME_TTL_SECONDS",
    "PORTAL_LOCAL_LOGIN",
    "PORTAL_TRUSTED_PROXIES",
    "SESSION_COOKIE_SECURE",
    "AUDIT_RETENTION_DAYS",
    "SECRET_KEY",
)


class CheckFailed(Exception):
    """A step failed; the message says why and is safe to show."""


@dataclass(frozen=True)
class Check:
    """The outcome of one step: passed, failed or skipped, with what was found."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False
    ms: int = 0


def effective_config() -> list[tuple[str, str]]:
    """Return the effective configuration with secrets masked and the database password hidden."""
    config = current_app.config
    rows = [(name, _shown(name, config.get(name))) for name in SHOWN]
    rows.insert(2, ("Redirect URI", f"{config.get('PORTAL_BASE_URL', '')}/auth/callback"))
    rows.insert(3, ("Who may sign in with Microsoft", access_policy()))
    return rows


def access_policy() -> str:
    """Describe the access policy in force in one sentence."""
    config = current_app.config
    groups = config.get("PORTAL_ALLOWED_GROUP_IDS") or []
    roles = config.get("PORTAL_ALLOWED_APP_ROLES") or []
    parts = []
    if groups:
        parts.append(f"members of {', '.join(groups)} (nested groups included)")
    if roles:
        parts.append(f"holders of the app role {' or '.join(roles)}")
    who = " or ".join(parts) if parts else "everyone in an admitted tenant"
    guests = "guests too" if config.get("PORTAL_ALLOW_GUESTS", True) else "guests refused"
    return f"{who}; {guests}"


def _shown(name: str, value: Any) -> str:
    """Render one setting for people: secrets as set or not, lists comma-separated."""
    if name in SECRETS:
        return "set (hidden)" if value else "not set"
    if name == "SQLALCHEMY_DATABASE_URI" and value:
        return sa.make_url(value).render_as_string(hide_password=True)
    if name == "PORTAL_HTTPS_PROXY" and value and "@" in value:
        scheme, _, rest = value.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return "(not set)" if value is None or value == "" else str(value)


def run_checks() -> list[Check]:
    """Run every step in order and return their outcomes."""
    checks = [_step("Database answers", _database)[0]]
    if not current_app.config.get("ENTRA_CONFIGURED"):
        reason = "ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET are not set"
        return [*checks, Check("Entra ID configured", False, reason)]
    client = entra.client()
    discovery, document = _step("Discovery reachable, issuer matches", lambda: _discovery(client))
    checks.append(discovery)
    checks.append(
        _step("Signing keys (JWKS) readable", lambda: _jwks(client, document))[0]
        if document
        else _skipped("Signing keys (JWKS) readable", "the discovery document was not read")
    )
    credentials, token = _step("Client credentials accepted", lambda: _app_token(client))
    checks.append(credentials)
    checks.append(
        _step("Graph reachable, groups readable", lambda: _graph_groups(token))[0]
        if token
        else _skipped("Graph reachable, groups readable", "no application token to call Graph with")
    )
    checks.append(
        _step("Users readable (reconciliation)", lambda: _graph_users(token))[0]
        if token
        else _skipped("Users readable (reconciliation)", "no application token to call Graph with")
    )
    return checks


def _step(name: str, run: Callable[[], tuple[str, Any]]) -> tuple[Check, Any]:
    """Time one step and turn every way it can fail into a failed Check."""
    started = time.perf_counter()
    try:
        detail, value = run()
        ok = True
    except CheckFailed as exc:
        detail, value, ok = str(exc), None, False
    except entra.SignInError as exc:
        detail, value, ok = exc.reason, None, False
    except TokenError as exc:
        detail, value, ok = str(exc), None, False
    except (requests.RequestException, ValueError, sa.exc.SQLAlchemyError) as exc:
        detail, value, ok = _brief(exc), None, False
    ms = round((time.perf_counter() - started) * 1000)
    return Check(name, ok, detail, ms=ms), value


def _skipped(name: str, why: str) -> Check:
    """Return a step that could not run because an earlier one failed."""
    return Check(name, False, f"skipped: {why}", skipped=True)


def _brief(exc: BaseException) -> str:
    """Name an exception in one short line."""
    text = str(exc).partition("\n")[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _database() -> tuple[str, None]:
    """Ask the database a trivial question."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    finally:
        db.session.rollback()
    return f"{db.engine.dialect.name} answered", None


def _tenant(client: entra.EntraClient) -> str:
    """Return the tenant the checks speak for: the configured one, or the first allowed."""
    return client.allowed_tenants[0] if client.tenant in MULTI_TENANT else client.tenant


def _discovery(client: entra.EntraClient) -> tuple[str, dict[str, Any]]:
    """Read the OpenID configuration afresh and compare its issuer with the configured host."""
    document = client.metadata(fresh=True)
    issuer = document["issuer"]
    host = current_app.config["ENTRA_AUTHORITY_HOST"].rstrip("/")
    wanted = f"{host}/{_tenant(client)}/v2.0"
    if expected_issuer(issuer, _tenant(client)).lower() != wanted.lower():
        raise CheckFailed(f"the issuer is {issuer}, expected {wanted}")
    return f"issuer {issuer}", document


def _jwks(client: entra.EntraClient, document: dict[str, Any]) -> tuple[str, None]:
    """Read the JWKS again through the client's key cache and count its RSA signing keys."""
    count = client.jwks.refresh(document["jwks_uri"])
    if not count:
        raise CheckFailed("the JWKS holds no RSA signing key")
    return f"{count} RSA signing key{'s' if count != 1 else ''}", None


def _app_token(client: entra.EntraClient) -> tuple[str, str]:
    """Ask for an application token for the configured Graph host with the client credentials."""
    resource = graph.client().resource
    token = client.acquire_app_token(resource)
    return f"an application token for {resource} was issued", token


def _graph_groups(token: str) -> tuple[str, None]:
    """List one group with the application token: proves Graph answers and groups are readable."""
    try:
        graph.check_groups_readable(token)
    except graph.GraphError as exc:
        if exc.status == 403:
            raise CheckFailed(
                f"{exc.reason}: grant the application permission GroupMember.Read.All "
                "(or Group.Read.All) and an admin's consent"
            ) from None
        raise CheckFailed(exc.reason) from None
    return "Graph answered and the application may read groups", None


def _graph_users(token: str) -> tuple[str, None]:
    """List one user with the application token: `sync reconcile` reads users/delta."""
    try:
        graph.check_groups_readable(token, "users")
    except graph.GraphError as exc:
        if exc.status == 403:
            raise CheckFailed(
                f"{exc.reason}: grant the application permission User.Read.All and an admin's "
                "consent (sync reconcile reads users)"
            ) from None
        raise CheckFailed(exc.reason) from None
    return "the application may read users", None
