"""Configuration from environment variables (and `.env`), validated once at start-up."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import re2

# Sign-in and Graph hosts per national cloud
# (Entra authentication-national-cloud.md, Graph deployments.md).
CLOUDS: dict[str, tuple[str, str]] = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "china": (
        "https://login.partner.microsoftonline.cn",
        "https://microsoftgraph.chinacloudapi.cn",
    ),
}
ROOT = Path(__file__).resolve().parent.parent  # the checkout: .env, instance/, migrations/
MULTI_TENANT = {"organizations", "common"}
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}
CREDENTIALS = ("ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_CERTIFICATE", "ENTRA_CLIENT_ASSERTION_FILE")
PROMPTS = ("login", "select_account", "consent", "none")


class ConfigError(ValueError):
    """A configuration variable is missing, malformed or contradicts another."""


def _csv(value: str | None) -> list[str]:
    """Split a comma-separated variable into its non-empty, trimmed parts."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a boolean variable, refusing anything but the usual spellings."""
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    """Read a non-negative integer variable."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _https_url(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a base URL that must be https, without a trailing slash."""
    value = (env.get(name) or default).rstrip("/")
    if urlsplit(value).scheme != "https" or not urlsplit(value).netloc:
        raise ConfigError(f"{name} must be an https URL, not {value!r}")
    return value


def _log_format(env: Mapping[str, str]) -> str:
    """Read PORTAL_LOG_FORMAT: text for people, json for log shippers."""
    value = (env.get("PORTAL_LOG_FORMAT") or "text").strip().lower()
    if value not in {"text", "json"}:
        raise ConfigError(f"PORTAL_LOG_FORMAT must be text or json, not {value!r}")
    return value


def _base_url(env: Mapping[str, str], production: bool) -> str:
    """Read PORTAL_BASE_URL: required in production, a local default in development."""
    value = (env.get("PORTAL_BASE_URL") or "").rstrip("/")
    if not value:
        if production:
            raise ConfigError("PORTAL_BASE_URL is required in production")
        value = "http://127.0.0.1:5000"
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise ConfigError(f"PORTAL_BASE_URL must be like https://portal.example.com, not {value!r}")
    return value


MIN_SECRET_KEY = 32  # CONTRACT.md


def group_filter(pattern: str) -> Any:
    """Compile GROUP_SYNC_FILTER with RE2, which matches in linear time: no backtracking.

    An operator's pattern runs on names that group owners choose; with Python's `re` a
    pattern like `(a+)+$` and a crafted name would hold a worker for minutes.
    """
    options = re2.Options()
    options.log_errors = False  # the error goes into ConfigError's one line, not to stderr
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ConfigError(
            f"GROUP_SYNC_FILTER is not a regular expression RE2 accepts: {detail}"
        ) from None


def _secret_key(env: Mapping[str, str], production: bool) -> str:
    """Read SECRET_KEY: required in production, generated per run in development."""
    value = env.get("SECRET_KEY", "")
    if production and not value:
        raise ConfigError("SECRET_KEY is required in production")
    if production and len(value) < MIN_SECRET_KEY:
        # A short key can be guessed offline from one session cookie, then sessions forged.
        raise ConfigError(f"SECRET_KEY must be at least {MIN_SECRET_KEY} characters in production")
    return value or secrets.token_hex(32)


def _required(env: Mapping[str, str], name: str) -> str:
    """Read a variable that must be set."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required")
    return value


def _tenants(env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Read the tenant and the tenants allowed to sign in (itself, or the multi-tenant list)."""
    tenant = _required(env, "ENTRA_TENANT_ID")
    if tenant.lower() not in MULTI_TENANT:
        if not GUID.match(tenant):
            raise ConfigError(
                f"ENTRA_TENANT_ID must be a tenant GUID or 'organizations', not {tenant!r}"
            )
        return tenant, [tenant.lower()]
    allowed = [t.lower() for t in _csv(env.get("ENTRA_ALLOWED_TENANTS"))]
    if not allowed:
        raise ConfigError(f"ENTRA_ALLOWED_TENANTS is required when ENTRA_TENANT_ID is {tenant!r}")
    if bad := [t for t in allowed if not GUID.match(t)]:
        raise ConfigError(f"ENTRA_ALLOWED_TENANTS must list tenant GUIDs, not {bad[0]!r}")
    return tenant.lower(), allowed


def _hosts(env: Mapping[str, str]) -> dict[str, Any]:
    """Read the cloud, its sign-in and Graph hosts (or their overrides) and the CA bundle."""
    cloud = (env.get("ENTRA_CLOUD") or "global").strip().lower()
    if cloud not in CLOUDS:
        raise ConfigError(f"ENTRA_CLOUD must be one of {', '.join(CLOUDS)}, not {cloud!r}")
    login_host, graph_host = CLOUDS[cloud]
    ca_bundle = env.get("ENTRA_CA_BUNDLE", "").strip() or None
    if ca_bundle and not Path(ca_bundle).is_file():
        raise ConfigError(f"ENTRA_CA_BUNDLE names no readable file: {ca_bundle!r}")
    return {
        "ENTRA_CLOUD": cloud,
        "ENTRA_AUTHORITY_HOST": _https_url(env, "ENTRA_AUTHORITY_HOST", login_host),
        "GRAPH_ENDPOINT": _https_url(env, "GRAPH_ENDPOINT", graph_host),
        "ENTRA_CA_BUNDLE": ca_bundle,
    }


def _readable_file(env: Mapping[str, str], name: str) -> str:
    """Read a variable naming a file that must exist and be readable now."""
    path = env.get(name, "").strip()
    try:
        Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name} names no readable file: {path!r} ({exc.strerror})") from None
    return path


def _certificate(env: Mapping[str, str]) -> str:
    """Read ENTRA_CLIENT_CERTIFICATE: a PEM file holding a private key and its certificate."""
    path = _readable_file(env, "ENTRA_CLIENT_CERTIFICATE")
    text = Path(path).read_text(errors="replace")
    if "PRIVATE KEY-----" not in text or "BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(
            f"ENTRA_CLIENT_CERTIFICATE must be a PEM file with a private key and a certificate: "
            f"{path!r}"
        )
    return path


def _credential(env: Mapping[str, str]) -> dict[str, Any]:
    """Read the one client credential: a secret, a certificate or a federated assertion file."""
    names = [n for n in CREDENTIALS if env.get(n, "").strip()]
    if not names:
        raise ConfigError(
            "ENTRA_CLIENT_SECRET is required (or ENTRA_CLIENT_CERTIFICATE or "
            "ENTRA_CLIENT_ASSERTION_FILE)"
        )
    if len(names) > 1:
        raise ConfigError(f"{' and '.join(names)} are both set: keep exactly one credential")
    name = names[0]
    values = dict.fromkeys(CREDENTIALS)
    if name == "ENTRA_CLIENT_SECRET":
        values[name] = env[name].strip()
    elif name == "ENTRA_CLIENT_CERTIFICATE":
        values[name] = _certificate(env)
    else:
        values[name] = _readable_file(env, name)
    return values


def _authorize_options(env: Mapping[str, str]) -> dict[str, Any]:
    """Read ENTRA_PROMPT and ENTRA_DOMAIN_HINT, sent to the authorize endpoint."""
    prompt = (env.get("ENTRA_PROMPT") or "").strip().lower() or None
    if prompt is not None and prompt not in PROMPTS:
        raise ConfigError(f"ENTRA_PROMPT must be one of {', '.join(PROMPTS)}, not {prompt!r}")
    return {
        "ENTRA_PROMPT": prompt,
        "ENTRA_DOMAIN_HINT": (env.get("ENTRA_DOMAIN_HINT") or "").strip() or None,
    }


def _retention_days(env: Mapping[str, str]) -> int:
    """Read AUDIT_RETENTION_DAYS: at least one day, so a purge never empties today's trail."""
    days = _int(env, "AUDIT_RETENTION_DAYS", 365)
    if days < 1:
        raise ConfigError("AUDIT_RETENTION_DAYS must be at least 1")
    return days


def _proxy(env: Mapping[str, str]) -> str | None:
    """Read PORTAL_HTTPS_PROXY: an http(s) URL with a scheme and a host, or nothing."""
    value = (env.get("PORTAL_HTTPS_PROXY") or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(
            f"PORTAL_HTTPS_PROXY must be a URL like http://proxy.example.com:3128, not {value!r}"
        )
    return value


def _entra(env: Mapping[str, str]) -> dict[str, Any]:
    """Read and cross-check the ENTRA_* and GRAPH_* variables."""
    tenant, allowed = _tenants(env)
    return {
        "ENTRA_TENANT_ID": tenant,
        "ENTRA_CLIENT_ID": _required(env, "ENTRA_CLIENT_ID"),
        **_credential(env),
        "ENTRA_ALLOWED_TENANTS": allowed,
        **_hosts(env),
        "ENTRA_CONFIGURED": True,
    }


def _policy(env: Mapping[str, str]) -> dict[str, Any]:
    """Read who may sign in through Entra, and which app roles make an admin."""
    allowed_ids = [g.lower() for g in _csv(env.get("PORTAL_ALLOWED_GROUP_IDS"))]
    if bad := [g for g in allowed_ids if not GUID.match(g)]:
        raise ConfigError(f"PORTAL_ALLOWED_GROUP_IDS must list group object IDs, not {bad[0]!r}")
    return {
        "PORTAL_ALLOWED_GROUP_IDS": allowed_ids,
        "PORTAL_ALLOWED_APP_ROLES": _csv(env.get("PORTAL_ALLOWED_APP_ROLES")),
        "PORTAL_ADMIN_APP_ROLES": _csv(env.get("PORTAL_ADMIN_APP_ROLES")),
        "PORTAL_ALLOW_GUESTS": _flag(env, "PORTAL_ALLOW_GUESTS", True),
    }


def _groups(env: Mapping[str, str]) -> dict[str, Any]:
    """Read the group-sync variables."""
    mode = (env.get("GROUP_SYNC_MODE") or "mirror").strip().lower()
    if mode not in {"mirror", "match"}:
        raise ConfigError(f"GROUP_SYNC_MODE must be mirror or match, not {mode!r}")
    pattern = env.get("GROUP_SYNC_FILTER") or None
    if pattern:
        group_filter(pattern)
    admin_ids = [g.lower() for g in _csv(env.get("PORTAL_ADMIN_GROUP_IDS"))]
    if bad := [g for g in admin_ids if not GUID.match(g)]:
        raise ConfigError(f"PORTAL_ADMIN_GROUP_IDS must list group object IDs, not {bad[0]!r}")
    return {
        "GROUP_SYNC_MODE": mode,
        "GROUP_SYNC_FILTER": pattern,
        "GROUP_NAME_TTL_SECONDS": _int(env, "GROUP_NAME_TTL_SECONDS", 86400),
        "PORTAL_ADMIN_GROUP_IDS": admin_ids,
        "RECONCILE_MAX_CHANGES": _int(env, "RECONCILE_MAX_CHANGES", 500),
    }


def _sessions(env: Mapping[str, str]) -> dict[str, int]:
    """Read the idle and absolute session lifetimes: positive, and idle no longer than absolute."""
    idle = _int(env, "PORTAL_SESSION_IDLE_SECONDS", 3600)
    most = _int(env, "PORTAL_SESSION_MAX_SECONDS", 43200)
    for name, value in (
        ("PORTAL_SESSION_IDLE_SECONDS", idle),
        ("PORTAL_SESSION_MAX_SECONDS", most),
    ):
        if value <= 0:
            raise ConfigError(f"{name} must be a positive number of seconds, not {value}")
    if idle > most:
        raise ConfigError(
            f"PORTAL_SESSION_IDLE_SECONDS ({idle}) must not exceed "
            f"PORTAL_SESSION_MAX_SECONDS ({most})"
        )
    return {"PORTAL_SESSION_IDLE_SECONDS": idle, "PORTAL_SESSION_MAX_SECONDS": most}


def _database_url(env: Mapping[str, str], instance_path: str) -> str:
    """Read DATABASE_URL, defaulting to a SQLite file under instance/."""
    url = env.get("DATABASE_URL", "").strip()
    if url.startswith("postgres://"):
        # Heroku-style URLs name the retired dialect alias; SQLAlchemy 2 refuses it.
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url or f"sqlite:///{Path(instance_path) / 'portal.db'}"


def load_config(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Build the Flask configuration from environment variables, or raise ConfigError."""
    portal_env = (env.get("PORTAL_ENV") or "production").strip().lower()
    if portal_env not in {"production", "development"}:
        raise ConfigError(f"PORTAL_ENV must be production or development, not {portal_env!r}")
    production = portal_env == "production"
    base_url = _base_url(env, production)
    config: dict[str, Any] = {
        "PORTAL_ENV": portal_env,
        "SECRET_KEY": _secret_key(env, production),
        "PORTAL_BASE_URL": base_url,
        "SQLALCHEMY_DATABASE_URI": _database_url(env, instance_path),
        "PORTAL_LOCAL_LOGIN": _flag(env, "PORTAL_LOCAL_LOGIN", True),
        "PORTAL_SIGN_IN_LABEL": env.get("PORTAL_SIGN_IN_LABEL") or "Sign in with Microsoft",
        "PORTAL_TRUSTED_PROXIES": _int(env, "PORTAL_TRUSTED_PROXIES", 0),
        "PORTAL_LOG_FORMAT": _log_format(env),
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        "ENTRA_CONFIGURED": False,
        "AUDIT_RETENTION_DAYS": _retention_days(env),
        "PORTAL_HTTPS_PROXY": _proxy(env),
        **_authorize_options(env),
        **_groups(env),
        **_policy(env),
        **_sessions(env),
    }
    try:
        config.update(_entra(env))
    except ConfigError:
        # Development may run without Entra (local accounts only); production may not.
        if production or any(env.get(n) for n in ("ENTRA_TENANT_ID", "ENTRA_CLIENT_ID")):
            raise
    return config


def environ_with_dotenv(root: Path) -> dict[str, str]:
    """Return os.environ over the values of `<root>/.env`; the real environment wins."""
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}
    return {**values, **os.environ}
