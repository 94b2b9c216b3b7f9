"""The outside review's probes of the admin console: forged cursors, posts without CSRF."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import AuditEvent, EntraGroup, Group
from portal.models.base import utcnow
from portal.services import groups
from tests.admin.test_access import admin_endpoints, url_of
from tests.helpers import Admin, add_external, local_sign_in, make_local, post

LISTS = [
    "/admin/users",
    "/admin/users?sort=email",
    "/admin/users?sort=last_login",
    "/admin/users?sort=created",
    "/admin/users?sort=name&dir=desc",
    "/admin/users?type=External&group=x",
    "/admin/groups",
    "/admin/groups?dir=desc",
    "/admin/audit",
    "/admin/sync",
    "/admin/sync?status=failed",
]
FORGED_VALUES: list[Any] = [
    ["text"],
    [2**70],
    [-(2**70)],
    ["text", "text"],
    ["text", 2**70],
    [{"dt": "not a date"}, 1],
    [{"dt": "9999-12-31T23:59:59-23:59"}, 1],
    [{"dt": 5}, 1],
    [{"no": "dt"}, 1],
    [{"dt": "2026-01-01T00:00:00"}, "1"],
    [True, 1],
    [1.5, 1],
    [None, 1],
    [None],
    [[1], 1],
    [1e308, 1],
]


def token(segment: Any, values: Any) -> str:
    """Encode a cursor as the lists do, with whatever values a forger chooses."""
    raw = json.dumps([segment, values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("url", LISTS)
def test_forged_cursors_answer_400_or_the_first_page_never_a_5xx(
    app: Flask, admin: Admin, url: str
) -> None:
    add_external(app, 3)
    cursors = [token(segment, values) for segment in (0, 1) for values in FORGED_VALUES]
    cursors += [token("0", [1]), token(0, "x"), "%%%", "W10", token(0, [1] * 40)]
    joiner = "&" if "?" in url else "?"

    for cursor in cursors:
        for direction in ("after", "before"):
            page = admin.client.get(f"{url}{joiner}{direction}={cursor}")
            assert page.status_code in (200, 400), (cursor, direction, page.status_code)


def test_forged_cursors_on_a_group_s_members_never_give_a_5xx(app: Flask, admin: Admin) -> None:
    url = url_of(app, "admin.group_detail")
    for values in FORGED_VALUES:
        page = admin.client.get(f"{url}?after={token(0, values)}")
        assert page.status_code in (200, 400), values


def test_every_admin_post_without_a_csrf_token_is_refused_and_changes_nothing(
    app: Flask, admin: Admin
) -> None:
    posts = [endpoint for endpoint, method, _ in admin_endpoints(app) if method == "POST"]
    assert len(posts) >= 8

    for endpoint in posts:
        url = url_of(app, endpoint)
        answer = admin.client.post(url, data={"name": "Renamed", "group": "Sweep", "user": "x"})
        assert answer.status_code == 400, endpoint
        forged = admin.client.post(url, data={"csrf_token": "forged", "name": "Renamed"})
        assert forged.status_code == 400, endpoint
    assert admin.client.get("/admin/audit").text.count("Renamed") == 0


def signed_in_admin(app: Flask) -> Admin:
    """Sign a local admin in on their own client."""
    user_id = make_local(app, "root-admin", is_admin=True)
    client = app.test_client()
    assert local_sign_in(client, "root-admin").status_code == 302
    return Admin(user_id, "root-admin", client)


def ambiguous_setup(app: Flask, name: str = "Finance") -> tuple[int, list[str]]:
    """A local group and two known Entra groups of its name; return its id and their IDs."""
    ids = [str(uuid.uuid4()) for _ in range(2)]
    with app.app_context():
        group = groups.create_local(name)
        for object_id in ids:
            db.session.add(
                EntraGroup(
                    object_id=object_id,
                    tenant_id=app.config["ENTRA_ALLOWED_TENANTS"][0],
                    display_name=name,
                    read_at=utcnow(),
                )
            )
        db.session.commit()
        return group.id, ids


def test_admins_see_an_ambiguous_name_and_pin_the_link_by_object_id(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(GROUP_SYNC_MODE="match")
    admin = signed_in_admin(app)
    group_id, ids = ambiguous_setup(app)

    assert "badge-ambiguous" in admin.client.get("/admin/groups").text
    page = admin.client.get(f"/admin/groups/{group_id}").text
    assert all(object_id in page for object_id in ids) and "Pin this link" in page

    answer = post(admin.client, f"/admin/groups/{group_id}/link", {"object_id": ids[1]})

    assert answer.status_code == 302
    with app.app_context():
        group = db.session.get(Group, group_id)
        assert group is not None and (group.object_id, group.is_link_pinned) == (ids[1], True)
        event = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "group.linked")
        ).one()
        assert (event.actor, event.target, event.details["object_id"]) == (
            "root-admin",
            "Finance",
            ids[1],
        )
    assert "badge-ambiguous" not in admin.client.get("/admin/groups").text


def test_a_link_is_pinned_only_to_a_known_entra_group_of_an_admitted_tenant(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(GROUP_SYNC_MODE="match")
    admin = signed_in_admin(app)
    group_id, _ = ambiguous_setup(app)
    foreign = str(uuid.uuid4())
    with app.app_context():
        db.session.add(
            EntraGroup(
                object_id=foreign,
                tenant_id="7d0c3a5e-6b1f-4d2a-9e8c-1f2a3b4c5d6e",
                display_name="Finance",
                read_at=utcnow(),
            )
        )
        db.session.commit()

    for object_id in (str(uuid.uuid4()), foreign, "not-a-guid", "x" * 60):
        answer = post(admin.client, f"/admin/groups/{group_id}/link", {"object_id": object_id})
        assert answer.status_code == 302
        assert "Nothing was linked" in admin.client.get(f"/admin/groups/{group_id}").text

    with app.app_context():
        assert db.session.get(Group, group_id).entra_group_id is None  # type: ignore[union-attr]
        assert (
            db.session.scalar(
                sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "group.linked")
            )
            == 0
        )
