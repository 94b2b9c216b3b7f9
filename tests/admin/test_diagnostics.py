"""The configuration check: each step passes or fails with a reason, and no secret shows."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask

from portal import diagnostics
from tests.helpers import CLIENT_SECRET, local_sign_in, make_local, post

NO_ROLES_CLIENT = "44444444-5555-6666-7777-888888888888"


def outcomes(app: Flask) -> dict[str, tuple[bool, bool]]:
    """Run the checks and return (ok, skipped) by step name."""
    with app.app_context():
        return {c.name: (c.ok, c.skipped) for c in diagnostics.run_checks()}


def test_every_step_passes_against_a_working_tenant(app: Flask) -> None:
    assert outcomes(app) == {
        "Database answers": (True, False),
        "Discovery reachable, issuer matches": (True, False),
        "Signing keys (JWKS) readable": (True, False),
        "Client credentials accepted": (True, False),
        "Graph reachable, groups readable": (True, False),
        "Users readable (reconciliation)": (True, False),
    }


def test_a_wrong_client_secret_fails_the_credentials_step_and_skips_graph(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(ENTRA_CLIENT_SECRET="not-the-secret")
    with app.app_context():
        checks = {c.name: c for c in diagnostics.run_checks()}
    credentials = checks["Client credentials accepted"]
    assert not credentials.ok and "invalid_client" in credentials.detail
    assert checks["Graph reachable, groups readable"].skipped
    assert checks["Discovery reachable, issuer matches"].ok


def test_an_app_without_group_permission_fails_the_graph_step_with_advice(
    make_app: Callable[..., Flask], emulator: Any
) -> None:
    emulator.register_client(
        NO_ROLES_CLIENT, CLIENT_SECRET, redirect_uris=[], tenant_id=emulator.tenant_id, app_roles=()
    )
    app = make_app(ENTRA_CLIENT_ID=NO_ROLES_CLIENT)
    with app.app_context():
        checks = {c.name: c for c in diagnostics.run_checks()}
    graph = checks["Graph reachable, groups readable"]
    assert not graph.ok and "403" in graph.detail and "GroupMember.Read.All" in graph.detail


def test_an_app_without_user_permission_fails_the_reconciliation_step(
    make_app: Callable[..., Flask], emulator: Any
) -> None:
    emulator.register_client(
        NO_ROLES_CLIENT,
        CLIENT_SECRET,
        redirect_uris=[],
        tenant_id=emulator.tenant_id,
        app_roles=("GroupMember.Read.All",),
    )
    app = make_app(ENTRA_CLIENT_ID=NO_ROLES_CLIENT)
    with app.app_context():
        checks = {c.name: c for c in diagnostics.run_checks()}
    assert checks["Graph reachable, groups readable"].ok
    users = checks["Users readable (reconciliation)"]
    assert not users.ok and "403" in users.detail and "User.Read.All" in users.detail


def test_an_unreachable_sign_in_host_fails_discovery_and_skips_the_keys(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(ENTRA_AUTHORITY_HOST="https://127.0.0.1:9")
    result = outcomes(app)
    assert result["Discovery reachable, issuer matches"] == (False, False)
    assert result["Signing keys (JWKS) readable"] == (False, True)
    assert result["Database answers"] == (True, False)


def test_the_page_masks_secrets_and_records_the_check_in_the_audit_log(app: Flask) -> None:
    make_local(app, "ops-admin", is_admin=True)
    client = app.test_client()
    local_sign_in(client, "ops-admin")
    shown = client.get("/admin/config").text
    assert CLIENT_SECRET not in shown and "test-secret-key" not in shown
    assert re.search(r"ENTRA_CLIENT_SECRET</th><td class=\"mono\">set \(hidden\)", shown)

    checked = post(client, "/admin/config/check")

    assert checked.status_code == 200
    assert checked.text.count("step step-ok") == 6 and "all passed" in checked.text
    assert CLIENT_SECRET not in checked.text
    assert "config.checked" in client.get("/admin/audit").text


def test_the_credentials_step_asks_for_a_token_for_the_configured_graph_host(
    app: Flask, emulator: Any
) -> None:
    with app.app_context():
        checks = {c.name: c for c in diagnostics.run_checks()}
    assert checks["Client credentials accepted"].detail == (
        f"an application token for {emulator.url} was issued"
    )
