"""Admin actions: disable and enable, manual memberships, local groups, CSV export, audit."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AuditEvent, EntraGroup, Group, GroupMembership, User
from portal.services import groups
from tests.helpers import Admin, add_external, post, sign_in


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    """Return (actor, action, target) of every audit event but sign-ins, oldest first."""
    with app.app_context():
        query = sa.select(AuditEvent).where(AuditEvent.action != "signin.ok")
        events = db.session.scalars(query.order_by(AuditEvent.id))
        return [(e.actor, e.action, e.target) for e in events]


def external_signed_in(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> tuple[FlaskClient, int]:
    """Sign a new External user in through the emulator; return their client and user id."""
    object_id = create_user("Erin External", "erin@contoso.example")
    client = app.test_client()
    assert sign_in(client, emulator, object_id).status_code == 302
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.object_id == object_id))
    return client, user_id


def memberships(app: Flask, user_id: int) -> dict[str, str]:
    """Return the user's group names and how they joined each."""
    with app.app_context():
        query = (
            sa.select(Group.name, GroupMembership.source)
            .join(GroupMembership)
            .where(GroupMembership.user_id == user_id)
        )
        return dict(db.session.execute(query).tuples().all())


def test_disabling_a_user_ends_their_open_session_at_the_next_request(
    app: Flask, admin: Admin, emulator: Any, create_user: Callable[..., str]
) -> None:
    client, user_id = external_signed_in(app, emulator, create_user)
    assert client.get("/").status_code == 200

    response = post(admin.client, f"/admin/users/{user_id}/disable", follow_redirects=True)

    assert "Erin External is disabled." in response.text
    after = client.get("/")
    assert after.status_code == 302 and after.headers["Location"].startswith("/login")
    actor, action, target = audit_actions(app)[-1]
    assert (actor, action) == ("root-admin", "user.disabled")
    assert target == f"Erin External <{emulator_object_id(app, user_id)}>"
    assert sign_in(client, emulator, emulator_object_id(app, user_id)).status_code == 403
    assert audit_actions(app)[-1][1] == "signin.refused"


def emulator_object_id(app: Flask, user_id: int) -> str:
    """Return a user's Entra object ID."""
    with app.app_context():
        return db.session.get(User, user_id).object_id


def test_enabling_a_user_lets_them_sign_in_again(
    app: Flask, admin: Admin, emulator: Any, create_user: Callable[..., str]
) -> None:
    client, user_id = external_signed_in(app, emulator, create_user)
    post(admin.client, f"/admin/users/{user_id}/disable")
    post(admin.client, f"/admin/users/{user_id}/enable")
    assert sign_in(client, emulator, emulator_object_id(app, user_id)).status_code == 302
    assert client.get("/").status_code == 200
    admin_actions = [a for _, a, _ in audit_actions(app) if not a.startswith("signin.")]
    assert admin_actions == ["user.disabled", "user.enabled"]


def test_an_admin_cannot_disable_their_own_account(app: Flask, admin: Admin) -> None:
    response = post(admin.client, f"/admin/users/{admin.id}/disable", follow_redirects=True)
    assert "you cannot disable your own account." in response.text
    assert admin.client.get("/admin/users").status_code == 200
    assert audit_actions(app) == []


def test_manual_membership_added_and_removed_from_the_users_page(app: Flask, admin: Admin) -> None:
    user_id = add_external(app, 1, display_name="Mia Manual")[0]
    with app.app_context():
        groups.create_local("Field team")
        db.session.commit()

    added = post(
        admin.client,
        f"/admin/users/{user_id}/memberships",
        {"group": "Field team"},
        follow_redirects=True,
    )
    assert "Mia Manual is now a manual member of Field team." in added.text
    assert memberships(app, user_id) == {"Field team": "manual"}
    assert 'class="badge badge-manual">manual<' in added.text

    with app.app_context():
        group_id = db.session.scalar(sa.select(Group.id).where(Group.name == "Field team"))
    removed = post(
        admin.client,
        f"/admin/groups/{group_id}/members/{user_id}/remove",
        {"back": f"/admin/users/{user_id}"},
        follow_redirects=True,
    )
    assert "Mia Manual is no longer a member of Field team." in removed.text
    assert memberships(app, user_id) == {}
    assert [a for _, a, _ in audit_actions(app)] == ["membership.added", "membership.removed"]


def test_memberships_from_entra_and_the_builtin_group_cannot_be_removed_by_hand(
    app: Flask, admin: Admin
) -> None:
    user_id = add_external(app, 1)[0]
    with app.app_context():
        entra = EntraGroup(
            object_id="aaaaaaaa-0000-0000-0000-000000000001", tenant_id="t", display_name="Sales"
        )
        sales = Group(name="Sales", source="entra", entra_group=entra)
        all_users = groups.all_users_group()
        db.session.add_all([sales, GroupMembership(group=sales, user_id=user_id, source="entra")])
        db.session.add(GroupMembership(group=all_users, user_id=user_id, source="builtin"))
        db.session.commit()
        ids = (sales.id, all_users.id)
    for group_id in ids:
        response = post(
            admin.client,
            f"/admin/groups/{group_id}/members/{user_id}/remove",
            follow_redirects=True,
        )
        assert "Nothing changed" in response.text
    assert memberships(app, user_id) == {"Sales": "entra", "All users": "builtin"}
    refused = post(
        admin.client,
        f"/admin/users/{user_id}/memberships",
        {"group": "All users"},
        follow_redirects=True,
    )
    assert "managed by the portal" in refused.text
    pinned = post(
        admin.client,
        f"/admin/users/{user_id}/memberships",
        {"group": "aaaaaaaa-0000-0000-0000-000000000001"},
    )
    assert pinned.status_code == 302
    assert memberships(app, user_id)["Sales"] == "manual"
    assert [a for _, a, _ in audit_actions(app)] == ["membership.added"]


def test_group_page_adds_and_removes_a_member_by_email(app: Flask, admin: Admin) -> None:
    user_id = add_external(app, 1, display_name="Gus Group", email="Gus@Contoso.example")[0]
    with app.app_context():
        group_id = groups.create_local("Readers").id
        db.session.commit()
    post(admin.client, f"/admin/groups/{group_id}/members", {"user": "gus@contoso.example"})
    page = admin.client.get(f"/admin/groups/{group_id}").text
    assert "Gus Group" in page and ">1<" in page.replace("</dd>", "<")
    post(admin.client, f"/admin/groups/{group_id}/members/{user_id}/remove")
    assert memberships(app, user_id) == {}
    unknown = post(
        admin.client,
        f"/admin/groups/{group_id}/members",
        {"user": "nobody@x"},
        follow_redirects=True,
    )
    assert "no user" in unknown.text


def test_local_groups_are_created_renamed_and_deleted_with_audit_entries(
    app: Flask, admin: Admin
) -> None:
    created = post(
        admin.client, "/admin/groups/new", {"name": "Volunteers", "description": "Helpers"}
    )
    assert created.status_code == 302
    group_id = int(created.headers["Location"].rsplit("/", 1)[1])
    duplicate = post(admin.client, "/admin/groups/new", {"name": "Volunteers"})
    assert "already exists" in duplicate.text

    post(admin.client, f"/admin/groups/{group_id}/rename", {"name": "Helpers"})
    assert "Helpers" in admin.client.get(f"/admin/groups/{group_id}").text
    deleted = post(admin.client, f"/admin/groups/{group_id}/delete")
    assert deleted.headers["Location"] == "/admin/groups"
    with app.app_context():
        assert db.session.get(Group, group_id) is None
    assert [(a, t) for _, a, t in audit_actions(app)] == [
        ("group.created", "Volunteers"),
        ("group.renamed", "Helpers"),
        ("group.deleted", "Helpers"),
    ]


def test_builtin_group_cannot_be_deleted_and_entra_names_cannot_be_changed(
    app: Flask, admin: Admin
) -> None:
    with app.app_context():
        all_users = groups.all_users_group().id
        entra = EntraGroup(
            object_id="bbbbbbbb-0000-0000-0000-000000000002", tenant_id="t", display_name="Ops"
        )
        ops = Group(name="Ops", source="entra", entra_group=entra)
        db.session.add(ops)
        db.session.commit()
        ops_id = ops.id
    refused = post(admin.client, f"/admin/groups/{all_users}/delete", follow_redirects=True)
    assert "built-in groups cannot be deleted" in refused.text
    page = admin.client.get(f"/admin/groups/{ops_id}").text
    assert "comes from Entra ID" in page and "bbbbbbbb-0000-0000-0000-000000000002" in page
    assert f'action="/admin/groups/{ops_id}/rename"' not in page
    post(admin.client, f"/admin/groups/{ops_id}/rename", {"name": "Mine now"})
    with app.app_context():
        assert db.session.get(Group, ops_id).name == "Ops"
        assert db.session.get(Group, all_users) is not None
    assert audit_actions(app) == []


def test_csv_export_streams_the_filtered_users_with_formulas_defused(
    app: Flask, admin: Admin
) -> None:
    add_external(app, 3)
    add_external(app, 1, display_name="=HYPERLINK(1)", email="evil@contoso.example")
    add_external(app, 1, display_name="Dora Disabled", is_active=False)

    response = admin.client.get("/admin/users/export.csv?status=active&type=External")

    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=users.csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    names = [row["display_name"] for row in rows]
    assert names == sorted(names) and len(rows) == 4
    assert "'=HYPERLINK(1)" in names and "Dora Disabled" not in names
    assert {row["is_active"] for row in rows} == {"true"}
    assert all(row["object_id"] and row["user_type"] == "External" for row in rows)
    assert audit_actions(app)[-1][1] == "users.exported"


def test_user_page_shows_sync_records_with_added_removed_and_reasons(
    app: Flask, admin: Admin
) -> None:
    from portal.models import SyncRecord

    user_id = add_external(app, 1)[0]
    with app.app_context():
        db.session.add_all(
            [
                SyncRecord(
                    user_id=user_id,
                    status="ok",
                    source="claim",
                    added=["Sales"],
                    removed=["Old team"],
                ),
                SyncRecord(
                    user_id=user_id, status="failed", source="graph", reason="Graph answered 503"
                ),
            ]
        )
        db.session.commit()
    page = admin.client.get(f"/admin/users/{user_id}").text
    assert "Graph answered 503" in page and "Old team" in page and "Sales" in page
    assert 'class="badge badge-failed">failed<' in page
