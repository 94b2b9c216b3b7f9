"""The `flask` commands: normal output, JSON output and one-line failures, per the contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

import portal.diagnostics
from portal.diagnostics import Check
from portal.extensions import db
from portal.models import AuditEvent, Base, EntraGroup, Group, GroupMembership, SyncRecord, User
from portal.models.group import ENTRA, MEMBERSHIP_ENTRA
from portal.services import groups, users
from tests.helpers import build_app

ROOT = Path(__file__).resolve().parent.parent
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
PASSWORD = "correct horse battery"
USER_FIELDS = {
    "tenant_id",
    "object_id",
    "username",
    "email",
    "display_name",
    "user_type",
    "is_active",
    "is_admin",
    "groups",
    "last_login_at",
}
SYNC_FIELDS = {
    "tenant_id",
    "object_id",
    "at",
    "status",
    "source",
    "added",
    "removed",
    "reason",
    "graph_calls",
}


def development_app(database_url: str, instance: Path) -> Flask:
    """Build a portal from a development environment without Entra: the CLI needs no emulator."""
    env = {"PORTAL_ENV": "development", "DATABASE_URL": database_url, "SECRET_KEY": "x"}
    return build_app(env, instance)


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A development portal on the migrated test database, emptied afterwards."""
    app = development_app(database_url, tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def run(app: Flask) -> Callable[..., Result]:
    """Invoke a portal command through Flask's CLI runner."""
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(args=list(args), input=input)

    return invoke


@contextmanager
def committed(app: Flask) -> Iterator[None]:
    """Run setup code in its own app context and commit it."""
    with app.app_context():
        yield
        db.session.commit()


def external(name: str, tenant: str = TENANT, object_id: str | None = None) -> User:
    """Create an External user as a sign-in would."""
    oid = object_id or str(uuid.uuid4())
    email = f"{name.lower().replace(' ', '.')}@contoso.example"
    return users.upsert_external(
        {"tid": tenant, "oid": oid, "name": name, "email": email, "preferred_username": email}
    )


def entra_group(name: str) -> Group:
    """Create a local group linked to a new Entra group."""
    link = EntraGroup(object_id=str(uuid.uuid4()), tenant_id=TENANT, display_name=name)
    group = Group(name=name, source=ENTRA, entra_group=link)
    db.session.add(group)
    db.session.flush()
    return group


def assert_one_line_failure(result: Result, exit_code: int = 1) -> str:
    """Check the contract's failure shape: non-zero exit, one stderr line, no traceback."""
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    """Return the audit trail as (actor, action, target) tuples, oldest first."""
    with app.app_context():
        query = sa.select(AuditEvent.actor, AuditEvent.action, AuditEvent.target)
        return [tuple(row) for row in db.session.execute(query.order_by(AuditEvent.id))]


class QueryCounter:
    """Count the SQL statements an engine runs."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


@contextmanager
def counting_queries(app: Flask) -> Iterator[QueryCounter]:
    """Count the statements run on the app's engine inside the block."""
    with app.app_context():
        engine = db.engine
    counter = QueryCounter()
    sa.event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        sa.event.remove(engine, "before_cursor_execute", counter)


# -- users list ---------------------------------------------------------------------------


@pytest.fixture
def people(app: Flask) -> dict[str, str]:
    """An External user in two groups, another without groups, and a Local admin."""
    with committed(app):
        ada = external("Ada Lovelace")
        ada.last_login_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        grace = external("Grace Hopper")
        users.create_local("root", PASSWORD, is_admin=True)
        groups.add_manual_member(groups.create_local("Zeta"), ada)
        groups.add_manual_member(groups.create_local("Alpha"), ada)
        return {"ada": ada.object_id or "", "grace": grace.object_id or ""}


def test_users_list_json_has_the_contract_fields(run: Callable[..., Result], people: dict) -> None:
    result = run("users", "list", "--json")

    assert result.exit_code == 0, result.output
    rows = {row["display_name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"Ada Lovelace", "Grace Hopper", "root"}
    assert all(set(row) == USER_FIELDS for row in rows.values())
    ada, root = rows["Ada Lovelace"], rows["root"]
    assert (ada["tenant_id"], ada["object_id"], ada["username"]) == (TENANT, people["ada"], None)
    assert ada["user_type"] == "External" and ada["email"] == "ada.lovelace@contoso.example"
    assert ada["groups"] == ["Alpha", "Zeta"]
    assert datetime.fromisoformat(ada["last_login_at"]) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (ada["is_active"], ada["is_admin"]) == (True, False)
    assert (root["tenant_id"], root["object_id"], root["username"]) == (None, None, "root")
    assert (root["user_type"], root["is_admin"], root["groups"]) == ("Local", True, [])


def test_users_list_prints_a_table(run: Callable[..., Result], people: dict) -> None:
    result = run("users", "list")

    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split()[:3] == ["USER", "NAME", "EMAIL"]
    ada = next(line for line in lines if people["ada"] in line)
    assert "Ada Lovelace" in ada and "Alpha, Zeta" in ada
    assert any(line.startswith("root ") for line in lines)


def test_users_list_runs_the_same_few_queries_for_any_number_of_users(
    app: Flask, run: Callable[..., Result]
) -> None:
    counts = []
    for _ in range(2):
        with committed(app):
            group = groups.create_local(f"Group {len(counts)}")
            for n in range(10):
                groups.add_manual_member(group, external(f"Person {n}"))
        with counting_queries(app) as counter:
            assert run("users", "list", "--json").exit_code == 0
        counts.append(counter.count)

    assert counts[0] == counts[1] <= 3


def test_users_list_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    app = development_app("postgresql+psycopg://portal@127.0.0.1:9/portal", tmp_path)

    result = app.test_cli_runner().invoke(args=["users", "list", "--json"])

    line = assert_one_line_failure(result)
    assert "database" in line and result.stdout == ""


def test_users_list_json_through_the_real_flask_command(database_url: str, app: Flask) -> None:
    with committed(app):
        external("Subprocess Person")
    env = {**os.environ, "PORTAL_ENV": "development", "DATABASE_URL": database_url}
    env.pop("PORTAL_LOG_FORMAT", None)
    flask = Path(sys.executable).with_name("flask")

    done = subprocess.run(
        [str(flask), "--app", "app", "users", "list", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["display_name"] == "Subprocess Person" and set(row) == USER_FIELDS


# -- users show ---------------------------------------------------------------------------


def test_users_show_prints_fields_and_memberships(run: Callable[..., Result], people: dict):
    result = run("users", "show", "--user", people["ada"])

    assert result.exit_code == 0, result.output
    assert "display name:" in result.stdout and "Ada Lovelace" in result.stdout
    assert "Alpha" in result.stdout and "manual" in result.stdout


def test_users_show_json_includes_memberships(run: Callable[..., Result], people: dict) -> None:
    result = run("users", "show", "--username", "root", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert USER_FIELDS <= set(data) and data["username"] == "root"
    assert data["memberships"] == [] and data["is_admin"] is True


def test_users_show_refuses_an_unknown_user(run: Callable[..., Result], people: dict) -> None:
    line = assert_one_line_failure(run("users", "show", "--user", str(uuid.uuid4())))

    assert line.startswith("Error: no user")


@pytest.mark.parametrize(
    "args",
    [[], ["--user", "x", "--username", "y"], ["--username", "root", "--tenant", TENANT]],
    ids=["no-user", "both", "tenant-with-username"],
)
def test_users_show_refuses_a_bad_user_choice_in_one_line(
    run: Callable[..., Result], people: dict, args: list[str]
) -> None:
    line = assert_one_line_failure(run("users", "show", *args), exit_code=2)

    assert "--help" in line


def test_users_show_needs_tenant_when_two_tenants_share_an_object_id(
    app: Flask, run: Callable[..., Result]
) -> None:
    shared = str(uuid.uuid4())
    with committed(app):
        external("Home Person", object_id=shared)
        external("Guest Person", tenant=OTHER_TENANT, object_id=shared)

    line = assert_one_line_failure(run("users", "show", "--user", shared))
    narrowed = run("users", "show", "--user", shared, "--tenant", OTHER_TENANT, "--json")

    assert "--tenant" in line
    assert json.loads(narrowed.stdout)["display_name"] == "Guest Person"


# -- users create-admin -------------------------------------------------------------------


def test_create_admin_reads_the_password_from_stdin(app: Flask, run: Callable[..., Result]):
    result = run("users", "create-admin", "--username", "ops", "--password-stdin", input=PASSWORD)

    assert result.exit_code == 0, result.output
    with app.app_context():
        user = users.authenticate_local("ops", PASSWORD)
        assert user is not None and user.is_admin and user.password_hash != PASSWORD
    ((actor, action, target),) = audit_actions(app)
    assert (actor, action, target) == ("cli", "user.created", "ops")


def test_create_admin_prompts_twice_without_stdin(app: Flask, run: Callable[..., Result]) -> None:
    result = run("users", "create-admin", "--username", "ops", input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output
    with app.app_context():
        assert users.authenticate_local("ops", PASSWORD) is not None


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "12 characters"), (PASSWORD, "already exists")],
    ids=["short-password", "taken-username"],
)
def test_create_admin_refuses_in_one_line(
    app: Flask, run: Callable[..., Result], people: dict, password: str, message: str
) -> None:
    result = run("users", "create-admin", "--username", "root", "--password-stdin", input=password)

    assert message in assert_one_line_failure(result)
    assert audit_actions(app) == []


# -- users disable / enable ---------------------------------------------------------------


def test_disable_then_enable_a_user_with_audit_entries(
    app: Flask, run: Callable[..., Result], people: dict
) -> None:
    disabled = run("users", "disable", "--user", people["ada"])
    again = run("users", "disable", "--user", people["ada"])
    with app.app_context():
        was_active = users.find_user(people["ada"]).is_active
    enabled = run("users", "enable", "--user", people["ada"].upper())

    assert (disabled.exit_code, again.exit_code, enabled.exit_code) == (0, 0, 0)
    assert was_active is False and "already disabled" in again.stdout
    with app.app_context():
        assert users.find_user(people["ada"]).is_active is True
    assert [a[1:] for a in audit_actions(app)] == [
        ("user.disabled", f"Ada Lovelace <{people['ada']}>"),
        ("user.enabled", f"Ada Lovelace <{people['ada']}>"),
    ]


def test_disable_a_local_account_by_username(app: Flask, run: Callable[..., Result], people):
    result = run("users", "disable", "--username", "root")

    assert result.exit_code == 0, result.output
    with app.app_context():
        assert users.authenticate_local("root", PASSWORD) is None


def test_disable_refuses_an_unknown_user(run: Callable[..., Result], people: dict) -> None:
    assert "no user" in assert_one_line_failure(run("users", "disable", "--username", "nobody"))


# -- groups list / show -------------------------------------------------------------------


@pytest.fixture
def group_data(app: Flask, people: dict[str, str]) -> dict[str, str]:
    """An Entra-linked group with one synced member, besides the people's local groups."""
    with committed(app):
        group = entra_group("Engineering")
        ada = users.find_user(people["ada"])
        db.session.add(GroupMembership(group=group, user=ada, source=MEMBERSHIP_ENTRA))
        return {**people, "engineering": group.object_id or ""}


def test_groups_list_json_counts_members(app: Flask, run: Callable[..., Result], group_data):
    with counting_queries(app) as counter:
        result = run("groups", "list", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["Alpha", "Engineering", "Zeta"]
    assert rows[1] == {
        "name": "Engineering",
        "source": "entra",
        "object_id": group_data["engineering"],
        "member_count": 1,
    }
    assert rows[0]["source"] == "local" and rows[0]["object_id"] is None
    assert counter.count == 1


def test_groups_list_prints_a_table(run: Callable[..., Result], group_data: dict) -> None:
    result = run("groups", "list")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["NAME", "SOURCE", "OBJECT", "ID", "MEMBERS"]
    assert any(group_data["engineering"] in line for line in result.stdout.splitlines())


def test_groups_list_reports_an_unmigrated_database_in_one_line(tmp_path: Path) -> None:
    app = development_app(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)

    line = assert_one_line_failure(app.test_cli_runner().invoke(args=["groups", "list"]))

    assert "database error" in line


def test_groups_show_by_object_id_in_json(run: Callable[..., Result], group_data: dict) -> None:
    result = run("groups", "show", group_data["engineering"].upper(), "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["name"], data["source"], data["member_count"]) == ("Engineering", "entra", 1)
    assert data["members"][0]["object_id"] == group_data["ada"]
    assert data["members"][0]["source"] == "entra"


def test_groups_show_prints_members(run: Callable[..., Result], group_data: dict) -> None:
    result = run("groups", "show", "Alpha")

    assert result.exit_code == 0, result.output
    assert "Ada Lovelace" in result.stdout and "manual" in result.stdout


def test_groups_show_refuses_a_name_several_groups_share(
    app: Flask, run: Callable[..., Result]
) -> None:
    with committed(app):
        entra_group("Sales")
        entra_group("Sales")

    line = assert_one_line_failure(run("groups", "show", "Sales"))

    assert "several groups" in line


def test_groups_show_refuses_an_unknown_group(run: Callable[..., Result]) -> None:
    assert "no group" in assert_one_line_failure(run("groups", "show", "Nope", "--json"))


# -- groups create / add-member / remove-member -------------------------------------------


def test_groups_create_makes_a_local_group(app: Flask, run: Callable[..., Result]) -> None:
    result = run("groups", "create", "Auditors", "--description", "Read-only reviewers")

    assert result.exit_code == 0, result.output
    with app.app_context():
        group = groups.find_group("Auditors")
        assert (group.source, group.description) == ("local", "Read-only reviewers")
    assert [a[1:] for a in audit_actions(app)] == [("group.created", "Auditors")]


def test_groups_create_refuses_a_taken_name(run: Callable[..., Result], people: dict) -> None:
    assert "already exists" in assert_one_line_failure(run("groups", "create", "Alpha"))


def test_add_and_remove_a_manual_member(app: Flask, run: Callable[..., Result], people) -> None:
    added = run("groups", "add-member", "Alpha", "--user", people["grace"])
    removed = run("groups", "remove-member", "Alpha", "--user", people["grace"])
    removed_again = run("groups", "remove-member", "Alpha", "--user", people["grace"])

    assert (added.exit_code, removed.exit_code, removed_again.exit_code) == (0, 0, 0)
    assert "was not a member" in removed_again.stdout
    assert [a[1:] for a in audit_actions(app)] == [
        ("membership.added", f"Grace Hopper <{people['grace']}> in Alpha"),
        ("membership.removed", f"Grace Hopper <{people['grace']}> in Alpha"),
    ]


def test_add_member_by_entra_object_id_pins_a_synced_membership(
    app: Flask, run: Callable[..., Result], group_data: dict
) -> None:
    result = run("groups", "add-member", group_data["engineering"], "--user", group_data["ada"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        group = groups.find_group("Engineering")
        assert groups.membership(group, users.find_user(group_data["ada"])).source == "manual"


def test_remove_member_refuses_a_membership_from_entra(
    app: Flask, run: Callable[..., Result], group_data: dict
) -> None:
    result = run("groups", "remove-member", "Engineering", "--user", group_data["ada"])

    assert "Entra" in assert_one_line_failure(result)
    assert audit_actions(app) == []


def test_add_member_refuses_an_unknown_user(run: Callable[..., Result], people: dict) -> None:
    result = run("groups", "add-member", "Alpha", "--user", str(uuid.uuid4()))

    assert "no user" in assert_one_line_failure(result)


# -- sync status --------------------------------------------------------------------------


@pytest.fixture
def sync_records(app: Flask, people: dict[str, str]) -> dict[str, str]:
    """Three sync records an hour apart: ok and failed for Ada, skipped for Grace."""
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with committed(app):
        for hours, who, status in ((0, "ada", "ok"), (1, "grace", "skipped"), (2, "ada", "failed")):
            user = users.find_user(people[who])
            db.session.add(
                SyncRecord(
                    user_id=user.id,
                    tenant_id=user.tenant_id,
                    object_id=user.object_id,
                    synced_at=start + timedelta(hours=hours),
                    status=status,
                    source="claim" if status == "ok" else None,
                    added=["Zeta", "Alpha"] if status == "ok" else [],
                    removed=[],
                    reason="Graph answered 503" if status == "failed" else None,
                    graph_calls=2 if status != "skipped" else 0,
                )
            )
    return people


def test_sync_status_json_is_newest_first_with_the_contract_fields(
    run: Callable[..., Result], sync_records: dict
) -> None:
    result = run("sync", "status", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["status"] for r in rows] == ["failed", "skipped", "ok"]
    assert all(set(r) == SYNC_FIELDS for r in rows)
    ok = rows[2]
    assert (ok["object_id"], ok["tenant_id"], ok["source"]) == (
        sync_records["ada"],
        TENANT,
        "claim",
    )
    assert (ok["added"], ok["removed"], ok["graph_calls"]) == (["Alpha", "Zeta"], [], 2)
    assert datetime.fromisoformat(ok["at"]) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert rows[0]["reason"] == "Graph answered 503"


@pytest.mark.parametrize(
    ("args", "statuses"),
    [
        (["--failed"], ["failed"]),
        (["--limit", "1"], ["failed"]),
        (["--user", "ADA"], ["failed", "ok"]),
    ],
    ids=["failed", "limit", "user"],
)
def test_sync_status_filters(
    run: Callable[..., Result], sync_records: dict, args: list[str], statuses: list[str]
) -> None:
    args = [sync_records["ada"].upper() if a == "ADA" else a for a in args]

    result = run("sync", "status", "--json", *args)

    assert [r["status"] for r in json.loads(result.stdout)] == statuses


def test_sync_status_prints_a_table(run: Callable[..., Result], sync_records: dict) -> None:
    result = run("sync", "status", "--failed")

    assert result.exit_code == 0, result.output
    header, line = result.stdout.splitlines()
    assert header.split()[:3] == ["AT", "TENANT", "OBJECT"]
    assert "failed" in line and "Graph answered 503" in line


def test_sync_status_refuses_a_negative_limit_in_one_line(run: Callable[..., Result]) -> None:
    assert "--limit" in assert_one_line_failure(run("sync", "status", "--limit", "-1"), 2)


# -- check-config and dev -----------------------------------------------------------------


@pytest.fixture
def diagnostics(monkeypatch: pytest.MonkeyPatch) -> list[Check]:
    """Make the configuration check return steps the test controls (the real one is tested too)."""
    checks: list[Check] = []
    monkeypatch.setattr(portal.diagnostics, "run_checks", lambda: list(checks))
    return checks


def check(name: str, ok: bool, detail: str) -> Check:
    """Build one step's outcome."""
    return Check(name, ok, detail)


def test_check_config_passes_when_every_check_does(
    run: Callable[..., Result], diagnostics: list
) -> None:
    diagnostics += [check("database", True, "answers"), check("discovery", True, "reachable")]

    result = run("check-config")
    as_json = run("check-config", "--json")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["ok    database: answers", "ok    discovery: reachable"]
    assert json.loads(as_json.stdout)[1] == {"name": "discovery", "ok": True, "detail": "reachable"}


def test_check_config_fails_a_deploy_when_a_check_fails(
    run: Callable[..., Result], diagnostics: list
) -> None:
    diagnostics += [check("database", True, "answers"), check("graph", False, "403 Forbidden")]

    result = run("check-config")

    assert "1 of 2 checks did not pass" in assert_one_line_failure(result)
    assert "FAIL  graph: 403 Forbidden" in result.stdout


def test_check_config_runs_the_real_checks_and_fails_without_entra(
    run: Callable[..., Result],
) -> None:
    result = run("check-config", "--json")

    assert_one_line_failure(result)
    steps = {step["name"]: step for step in json.loads(result.stdout)}
    assert steps["Database answers"]["ok"] is True
    assert steps["Entra ID configured"]["ok"] is False


def test_check_config_passes_against_a_working_entra(make_app: Callable[..., Flask]) -> None:
    result = make_app().test_cli_runner().invoke(args=["check-config"])

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) >= 4
    assert all(line.startswith("ok ") for line in result.stdout.splitlines())


def test_check_config_gates_a_deploy_with_a_wrong_client_secret(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(ENTRA_CLIENT_SECRET="not-the-secret")

    result = app.test_cli_runner().invoke(args=["check-config"])

    assert "checks did not pass" in assert_one_line_failure(result)
    assert any(line.startswith("FAIL") for line in result.stdout.splitlines())
    assert "not-the-secret" not in result.output


def test_every_portal_command_and_option_has_help(app: Flask) -> None:
    names = ("users", "groups", "sync", "check-config")
    commands = [app.cli.commands[name] for name in names]
    while commands:
        command = commands.pop()
        assert command.help, command.name
        commands += getattr(command, "commands", {}).values()
        for param in command.params:
            assert param.param_type_name == "argument" or param.help, (command.name, param.name)
