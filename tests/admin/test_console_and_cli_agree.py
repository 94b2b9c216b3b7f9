"""Console and CLI make each change through one operation: same audit entry, same refusals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import AuditEvent, Group, GroupMembership, User
from portal.models.group import MEMBERSHIP_BUILTIN, MEMBERSHIP_ENTRA
from portal.services import groups, users
from tests.helpers import Admin, post

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PATHS = ("console", "cli")


@dataclass
class World:
    """A user, a local group, an Entra-linked group and `All users`, by database id."""

    user_id: int
    object_id: str
    local_id: int
    entra_id: int
    all_users_id: int


@pytest.fixture
def world(app: Flask) -> World:
    """Create an External user with a builtin and an Entra membership, and a local group."""
    with app.app_context():
        oid = str(uuid.uuid4())
        user = users.upsert_external({"tid": TENANT, "oid": oid, "name": "Ada Lovelace"})
        everyone = groups.all_users_group()
        linked = Group(name="Engineering", source="entra")
        local = groups.create_local("Alpha")
        db.session.add(linked)
        db.session.flush()
        db.session.add_all(
            [
                GroupMembership(group=everyone, user=user, source=MEMBERSHIP_BUILTIN),
                GroupMembership(group=linked, user=user, source=MEMBERSHIP_ENTRA),
            ]
        )
        db.session.commit()
        return World(user.id, oid, local.id, linked.id, everyone.id)


def change(app: Flask, admin: Admin, path: str, command: list[str], form: tuple[str, dict]):
    """Make one change through the console (URL, form) or the CLI (arguments)."""
    if path == "cli":
        return app.test_cli_runner().invoke(args=command)
    url, data = form
    return post(admin.client, url, data)


def audit_trail(app: Flask) -> list[tuple[str, str]]:
    """Return (action, target) of every audit event but sign-ins, oldest first."""
    with app.app_context():
        query = sa.select(AuditEvent.action, AuditEvent.target)
        query = query.where(AuditEvent.action != "signin.ok").order_by(AuditEvent.id)
        return [tuple(row) for row in db.session.execute(query)]


def sources(app: Flask, user_id: int) -> dict[str, str]:
    """Return the user's memberships as group name -> how they joined."""
    with app.app_context():
        query = sa.select(Group.name, GroupMembership.source).join(GroupMembership.group)
        rows = db.session.execute(query.where(GroupMembership.user_id == user_id))
        return dict(rows.tuples().all())


def membership_change(w: World, verb: str, group: str, group_id: int) -> dict[str, Any]:
    """Return the CLI arguments and console form of one membership change."""
    command = ["groups", f"{verb}-member", group, "--user", w.object_id]
    if verb == "add":
        return {
            "command": command,
            "form": (f"/admin/users/{w.user_id}/memberships", {"group": group}),
        }
    url = f"/admin/groups/{group_id}/members/{w.user_id}/remove"
    return {"command": command, "form": (url, {})}


@pytest.mark.parametrize("path", PATHS)
def test_adding_and_removing_a_manual_membership_writes_the_same_audit_actions(
    app: Flask, admin: Admin, world: World, path: str
) -> None:
    change(app, admin, path, **membership_change(world, "add", "Alpha", world.local_id))
    assert sources(app, world.user_id)["Alpha"] == "manual"
    change(app, admin, path, **membership_change(world, "remove", "Alpha", world.local_id))

    assert "Alpha" not in sources(app, world.user_id)
    target = f"Ada Lovelace <{world.object_id}> in Alpha"
    assert audit_trail(app) == [("membership.added", target), ("membership.removed", target)]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("verb", "group"),
    [("add", "All users"), ("remove", "All users"), ("remove", "Engineering")],
)
def test_built_in_and_entra_memberships_are_refused_on_both_paths(
    app: Flask, admin: Admin, world: World, path: str, verb: str, group: str
) -> None:
    group_id = world.all_users_id if group == "All users" else world.entra_id
    before = sources(app, world.user_id)

    result = change(app, admin, path, **membership_change(world, verb, group, group_id))

    if path == "cli":
        assert result.exit_code == 1 and "Traceback" not in result.output
    assert sources(app, world.user_id) == before
    assert audit_trail(app) == []


@pytest.mark.parametrize("path", PATHS)
def test_disabling_and_enabling_a_user_writes_the_same_audit_actions(
    app: Flask, admin: Admin, world: World, path: str
) -> None:
    for verb in ("disable", "enable"):
        form = (f"/admin/users/{world.user_id}/{verb}", {})
        change(app, admin, path, ["users", verb, "--user", world.object_id], form)

    target = f"Ada Lovelace <{world.object_id}>"
    assert audit_trail(app) == [("user.disabled", target), ("user.enabled", target)]
    with app.app_context():
        assert db.session.get(User, world.user_id).is_active


@pytest.mark.parametrize("path", PATHS)
def test_creating_a_group_writes_group_created_and_a_taken_name_is_refused(
    app: Flask, admin: Admin, world: World, path: str
) -> None:
    for _ in range(2):
        form = ("/admin/groups/new", {"name": "Volunteers", "description": ""})
        change(app, admin, path, ["groups", "create", "Volunteers"], form)

    assert audit_trail(app) == [("group.created", "Volunteers")]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Group.name == "Volunteers")) == 1


def test_the_audit_page_offers_every_action_of_the_vocabulary(admin: Admin) -> None:
    from portal.services.audit import ACTIONS

    page = admin.client.get("/admin/audit").text

    assert all(f'value="{action}"' in page for action in ACTIONS)


def test_the_cli_and_a_person_are_named_as_the_contract_says(
    app: Flask, admin: Admin, world: World
) -> None:
    post(admin.client, f"/admin/users/{world.user_id}/disable")
    app.test_cli_runner().invoke(args=["users", "enable", "--user", world.object_id])

    with app.app_context():
        query = sa.select(AuditEvent.actor).where(AuditEvent.action != "signin.ok")
        actors = db.session.scalars(query.order_by(AuditEvent.id)).all()
    assert actors == ["root-admin", "cli"]
