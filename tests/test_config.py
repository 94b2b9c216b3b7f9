"""Configuration: production refuses to start on a bad environment, in one line naming why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.config import ConfigError, group_filter, load_config

ROOT = Path(__file__).resolve().parent.parent
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "a-long-random-secret-of-32-characters",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "ENTRA_TENANT_ID": TENANT,
    "ENTRA_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "ENTRA_CLIENT_SECRET": "client-secret",
}


def load(tmp_path: Path, **changes: str | None) -> dict:
    """Load the production environment with some variables changed (None removes one)."""
    env = {**PRODUCTION, **changes}
    return load_config({k: v for k, v in env.items() if v is not None}, str(tmp_path))


def test_a_complete_production_environment_loads(tmp_path: Path) -> None:
    config = load(tmp_path)

    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["ENTRA_AUTHORITY_HOST"] == "https://login.microsoftonline.com"
    assert config["GRAPH_ENDPOINT"] == "https://graph.microsoft.com"
    assert config["ENTRA_ALLOWED_TENANTS"] == [TENANT]
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "x"}, "SECRET_KEY"),
        ({"SECRET_KEY": "x" * 31}, "SECRET_KEY"),
        ({"GROUP_SYNC_FILTER": "(?=lookahead)"}, "GROUP_SYNC_FILTER"),
        ({"PORTAL_BASE_URL": None}, "PORTAL_BASE_URL"),
        ({"PORTAL_BASE_URL": "portal.example.com"}, "PORTAL_BASE_URL"),
        ({"ENTRA_TENANT_ID": None}, "ENTRA_TENANT_ID"),
        ({"ENTRA_TENANT_ID": "contoso"}, "ENTRA_TENANT_ID"),
        ({"ENTRA_CLIENT_ID": None}, "ENTRA_CLIENT_ID"),
        ({"ENTRA_CLIENT_SECRET": None}, "ENTRA_CLIENT_SECRET"),
        ({"ENTRA_TENANT_ID": "organizations"}, "ENTRA_ALLOWED_TENANTS"),
        ({"ENTRA_TENANT_ID": "common"}, "ENTRA_ALLOWED_TENANTS"),
        (
            {"ENTRA_TENANT_ID": "organizations", "ENTRA_ALLOWED_TENANTS": "contoso"},
            "ENTRA_ALLOWED_TENANTS",
        ),
        ({"ENTRA_AUTHORITY_HOST": "http://login.example.com"}, "ENTRA_AUTHORITY_HOST"),
        ({"GRAPH_ENDPOINT": "http://graph.example.com"}, "GRAPH_ENDPOINT"),
        ({"ENTRA_CLOUD": "mars"}, "ENTRA_CLOUD"),
        ({"ENTRA_CA_BUNDLE": "/nonexistent/ca.pem"}, "ENTRA_CA_BUNDLE"),
        ({"GROUP_SYNC_MODE": "merge"}, "GROUP_SYNC_MODE"),
        ({"GROUP_SYNC_FILTER": "(unclosed"}, "GROUP_SYNC_FILTER"),
        ({"GROUP_NAME_TTL_SECONDS": "a day"}, "GROUP_NAME_TTL_SECONDS"),
        ({"PORTAL_ADMIN_GROUP_IDS": "Admins"}, "PORTAL_ADMIN_GROUP_IDS"),
        ({"PORTAL_LOCAL_LOGIN": "maybe"}, "PORTAL_LOCAL_LOGIN"),
        ({"PORTAL_TRUSTED_PROXIES": "-1"}, "PORTAL_TRUSTED_PROXIES"),
        ({"PORTAL_ENV": "staging"}, "PORTAL_ENV"),
        ({"PORTAL_ALLOWED_GROUP_IDS": "Staff"}, "PORTAL_ALLOWED_GROUP_IDS"),
        ({"PORTAL_ALLOW_GUESTS": "sometimes"}, "PORTAL_ALLOW_GUESTS"),
        ({"ENTRA_PROMPT": "always"}, "ENTRA_PROMPT"),
        ({"PORTAL_HTTPS_PROXY": "proxy.example.com:3128"}, "PORTAL_HTTPS_PROXY"),
        ({"AUDIT_RETENTION_DAYS": "a year"}, "AUDIT_RETENTION_DAYS"),
        ({"AUDIT_RETENTION_DAYS": "0"}, "AUDIT_RETENTION_DAYS"),
        ({"ENTRA_CLIENT_CERTIFICATE": "/nonexistent/app.pem"}, "ENTRA_CLIENT_SECRET"),
        (
            {"ENTRA_CLIENT_SECRET": None, "ENTRA_CLIENT_CERTIFICATE": "/nonexistent/app.pem"},
            "ENTRA_CLIENT_CERTIFICATE",
        ),
        (
            {"ENTRA_CLIENT_SECRET": None, "ENTRA_CLIENT_ASSERTION_FILE": "/nonexistent/token"},
            "ENTRA_CLIENT_ASSERTION_FILE",
        ),
    ],
)
def test_production_refuses_a_bad_variable_naming_it(
    tmp_path: Path, changes: dict[str, str | None], named: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, **changes)

    message = str(refused.value)
    assert named in message and "\n" not in message


def test_multi_tenant_needs_and_uses_the_allow_list(tmp_path: Path) -> None:
    config = load(tmp_path, ENTRA_TENANT_ID="Organizations", ENTRA_ALLOWED_TENANTS=TENANT.upper())

    assert config["ENTRA_TENANT_ID"] == "organizations"
    assert config["ENTRA_ALLOWED_TENANTS"] == [TENANT]


@pytest.mark.parametrize(
    ("cloud", "login", "graph"),
    [
        ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        (
            "china",
            "https://login.partner.microsoftonline.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
    ],
)
def test_a_national_cloud_picks_both_hosts(tmp_path: Path, cloud: str, login: str, graph: str):
    config = load(tmp_path, ENTRA_CLOUD=cloud)

    assert (config["ENTRA_AUTHORITY_HOST"], config["GRAPH_ENDPOINT"]) == (login, graph)


def test_postgres_urls_get_the_psycopg_driver(tmp_path: Path) -> None:
    config = load(tmp_path, DATABASE_URL="postgres://portal@db.internal/portal")

    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://portal@db.internal/portal"


def test_a_secret_key_of_32_characters_is_accepted(tmp_path: Path) -> None:
    assert load(tmp_path, SECRET_KEY="k" * 32)["SECRET_KEY"] == "k" * 32


def test_group_sync_filter_matches_a_crafted_name_in_linear_time(tmp_path: Path) -> None:
    # `(a+)+$` backtracks exponentially in Python's re on this name (minutes at 40 letters);
    # RE2 answers at once. No timing asserted: without the safe engine this test never ends.
    matcher = group_filter(load(tmp_path, GROUP_SYNC_FILTER="(a+)+$")["GROUP_SYNC_FILTER"])

    assert matcher.search("a" * 5000 + "!") is None
    assert matcher.search("Team aaa") is not None


def test_development_runs_without_entra_or_secrets(tmp_path: Path) -> None:
    config = load_config({"PORTAL_ENV": "development"}, str(tmp_path))

    assert config["ENTRA_CONFIGURED"] is False and len(config["SECRET_KEY"]) >= 32
    assert config["PORTAL_BASE_URL"] == "http://127.0.0.1:5000"


def test_the_real_command_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "PORTAL_"))}
    # Empty rather than unset, so a developer's .env cannot fill it in.
    env.update({**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": ""})
    flask = Path(sys.executable).with_name("flask")

    done = subprocess.run(
        [str(flask), "--app", "app", "users", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "portal: configuration error: SECRET_KEY is required in production"
    ]


def test_a_certificate_file_without_a_private_key_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "cert-only.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")

    with pytest.raises(ConfigError, match="ENTRA_CLIENT_CERTIFICATE must be a PEM file"):
        load(tmp_path, ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_CERTIFICATE=str(pem))


def test_two_credentials_are_refused_naming_both(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJ.fake.token")

    with pytest.raises(ConfigError) as refused:
        load(tmp_path, ENTRA_CLIENT_ASSERTION_FILE=str(token))

    assert "ENTRA_CLIENT_SECRET and ENTRA_CLIENT_ASSERTION_FILE" in str(refused.value)


def test_policy_prompt_and_proxy_settings_are_read(tmp_path: Path) -> None:
    group = "0f6d2c1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f"
    config = load(
        tmp_path,
        PORTAL_ALLOWED_GROUP_IDS=group.upper(),
        PORTAL_ALLOWED_APP_ROLES="Portal.User, Portal.Reader",
        PORTAL_ALLOW_GUESTS="false",
        ENTRA_PROMPT="Select_Account",
        ENTRA_DOMAIN_HINT="contoso.com",
        PORTAL_HTTPS_PROXY="http://proxy.example.com:3128",
    )

    assert config["PORTAL_ALLOWED_GROUP_IDS"] == [group]
    assert config["PORTAL_ALLOWED_APP_ROLES"] == ["Portal.User", "Portal.Reader"]
    assert config["PORTAL_ALLOW_GUESTS"] is False
    assert (config["ENTRA_PROMPT"], config["ENTRA_DOMAIN_HINT"]) == (
        "select_account",
        "contoso.com",
    )
    assert config["PORTAL_HTTPS_PROXY"] == "http://proxy.example.com:3128"
    assert config["AUDIT_RETENTION_DAYS"] == 365


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"PORTAL_SESSION_IDLE_SECONDS": "0"}, "PORTAL_SESSION_IDLE_SECONDS"),
        ({"PORTAL_SESSION_IDLE_SECONDS": "an hour"}, "PORTAL_SESSION_IDLE_SECONDS"),
        ({"PORTAL_SESSION_MAX_SECONDS": "0"}, "PORTAL_SESSION_MAX_SECONDS"),
        ({"PORTAL_SESSION_MAX_SECONDS": "-5"}, "PORTAL_SESSION_MAX_SECONDS"),
        (
            {"PORTAL_SESSION_IDLE_SECONDS": "7200", "PORTAL_SESSION_MAX_SECONDS": "3600"},
            "must not exceed",
        ),
    ],
)
def test_session_lifetimes_must_be_positive_and_idle_within_the_maximum(
    tmp_path: Path, changes: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load(tmp_path, **changes)


def test_session_lifetimes_default_to_an_hour_idle_and_twelve_hours(tmp_path: Path) -> None:
    config = load(tmp_path)

    assert config["PORTAL_SESSION_IDLE_SECONDS"] == 3600
    assert config["PORTAL_SESSION_MAX_SECONDS"] == 43200
