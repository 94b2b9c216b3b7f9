"""The audit trail from outside: `audit list --json`, retention and purge, CSV cells, log lines."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import AuditEvent
from portal.models.base import utcnow
from portal.services import audit, audit_query, users
from tests.helpers import ADMIN_PASSWORD, CLIENT_ID, local_sign_in, sign_in

FIELDS = ["at", "actor", "action", "target", "detail"]


@pytest.fixture(autouse=True)
def no_role_assignments(emulator: Any) -> Iterator[None]:
    """Leave the emulator's app without role assignments for the next test."""
    yield
    emulator.clients[CLIENT_ID].role_assignments.clear()


def audit_list(app: Flask, *args: str) -> list[dict[str, Any]]:
    """Run `flask audit list --json ARGS` and return its parsed output."""
    result = app.test_cli_runner().invoke(args=["audit", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_audit_list_shows_sign_in_events_newest_first_in_the_contract_shape(
    make_app: Callable[..., Flask], emulator: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(PORTAL_ALLOWED_APP_ROLES="Portal.User")
    admitted, refused = create_user("Has Role"), create_user("No Role")
    emulator.assign_app_role(CLIENT_ID, admitted, "Portal.User")
    sign_in(app.test_client(), emulator, admitted)
    sign_in(app.test_client(), emulator, refused)

    events = audit_list(app)
    only_refused = audit_list(app, "--action", "signin.refused")
    newest = audit_list(app, "--limit", "1")

    assert [e["action"] for e in events] == ["signin.refused", "signin.ok"]
    assert all(list(e) == FIELDS for e in events)
    assert events[1]["actor"] == f"user:{admitted}" and events[1]["target"].endswith(admitted + ">")
    assert only_refused == [events[0]] and newest == [events[0]]
    assert "PORTAL_ALLOWED_APP_ROLES" in events[0]["detail"]["reason"]


def test_a_local_sign_in_writes_signin_ok_naming_the_account(app: Flask) -> None:
    with app.app_context():
        users.create_local("break-glass", ADMIN_PASSWORD, is_admin=True)
        db.session.commit()
    client = app.test_client()

    response = local_sign_in(client, "break-glass")

    assert response.status_code == 302
    [event] = audit_list(app, "--action", "signin.ok")
    assert (event["actor"], event["target"]) == ("break-glass", "break-glass")


def test_purge_deletes_only_events_past_the_retention(make_app: Callable[..., Flask]) -> None:
    app = make_app(AUDIT_RETENTION_DAYS="30")
    with app.app_context():
        now = utcnow()
        for days, target in ((31, "old"), (29, "recent")):
            event = audit.record(audit.CLI, audit.USER_CREATED, target)
            event.created_at = now - timedelta(days=days)
        db.session.commit()

    result = app.test_cli_runner().invoke(args=["audit", "purge"])

    assert result.exit_code == 0 and result.output.startswith("1 audit event(s)")
    assert [e["target"] for e in audit_list(app)] == ["recent"]
    assert app.test_cli_runner().invoke(args=["audit", "purge", "--days", "1"]).exit_code == 0
    assert audit_list(app) == []


def test_retention_defaults_to_a_year(make_app: Callable[..., Flask]) -> None:
    assert make_app().config["AUDIT_RETENTION_DAYS"] == 365


def test_csv_cells_never_start_a_formula() -> None:
    event = AuditEvent(
        actor="=cmd|' /C calc'!A0",
        action="group.renamed",
        target="+SUM(A1)",
        details={"old": "-2"},
        created_at=utcnow(),
    )

    header, row = list(audit_query.csv_rows([event]))

    assert header == FIELDS
    assert row[1] == "'=cmd|' /C calc'!A0" and row[3] == "'+SUM(A1)"
    assert row[4] == '{"old": "-2"}'


def test_each_audit_event_logs_one_line_with_the_same_fields(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.audit"):
        event = audit.record(audit.CLI, audit.USER_DISABLED, "Erin <oid>", user_id=7)
        db.session.commit()
        stored = audit_query.as_dict(event)

    lines = [r for r in caplog.records if r.name == "portal.audit"]
    assert len(lines) == 1
    assert lines[0].fields == stored  # type: ignore[attr-defined]


def test_audit_page_exports_the_filtered_events_as_csv(
    make_app: Callable[..., Flask], emulator: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(PORTAL_ADMIN_APP_ROLES="Portal.Admin")
    oid = create_user("=Formula Admin")
    emulator.assign_app_role(CLIENT_ID, oid, "Portal.Admin")
    client = app.test_client()
    sign_in(client, emulator, oid)

    page = client.get("/admin/audit?action=signin.ok")
    export = client.get("/admin/audit.csv?action=admin.granted")

    assert "/admin/audit.csv?action=signin.ok" in page.text
    assert export.status_code == 200 and export.mimetype == "text/csv"
    header, *rows = list(csv.reader(io.StringIO(export.text)))
    assert header == FIELDS and len(rows) == 1
    assert rows[0][1:4] == ["sync", "admin.granted", f"'=Formula Admin <{oid}>"]
