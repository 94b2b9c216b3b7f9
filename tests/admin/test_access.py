"""The admin guard: every `admin.*` endpoint, as anonymous, as a signed-in user and as an admin."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, url_for
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Group, GroupMembership, User, UserSession
from portal.services import groups, sessions
from tests.helpers import Admin, add_external, csrf_token, local_sign_in, make_local


def admin_endpoints(app: Flask) -> list[tuple[str, str, str]]:
    """Return (endpoint, method, rule) for every admin view."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((rule.endpoint, method, rule.rule))
    return sorted(found)


def fresh_targets(app: Flask) -> dict[str, int]:
    """Create a user, a local group, a manual membership and a session for one request to act on."""
    user_id = add_external(app, 1)[0]
    with app.test_request_context():
        group = groups.create_local(f"Sweep {user_id}")
        db.session.add(GroupMembership(group_id=group.id, user_id=user_id, source="manual"))
        sessions.start(db.session.get(User, user_id), "192.0.2.1", "sweep")
        session_id = db.session.scalar(sa.select(sa.func.max(UserSession.id)))
        db.session.commit()
        return {"user_id": user_id, "group_id": group.id, "session_id": session_id}


def url_of(app: Flask, endpoint: str) -> str:
    """Build an endpoint's URL, with fresh real ids for the parameters its rule names."""
    rule = next(r.rule for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    targets = fresh_targets(app) if "<" in rule else {}
    values = {k: v for k, v in targets.items() if f"<int:{k}>" in rule}
    with app.test_request_context():
        return url_for(endpoint, **values)


def request(client: FlaskClient, app: Flask, endpoint: str, method: str) -> Any:
    """Call one endpoint; POSTs carry the session's CSRF token so only the guard can refuse."""
    url = url_of(app, endpoint)
    if method == "GET":
        return client.get(url)
    data = {"csrf_token": csrf_token(client), "name": "Renamed", "group": "Sweep", "user": "x"}
    return client.post(url, data=data)


def test_the_sweep_covers_every_admin_page_the_console_offers(app: Flask) -> None:
    endpoints = {endpoint for endpoint, _, _ in admin_endpoints(app)}
    assert {
        "admin.users_list",
        "admin.users_export",
        "admin.user_detail",
        "admin.user_disable",
        "admin.user_enable",
        "admin.user_membership_add",
        "admin.user_session_end",
        "admin.user_sessions_end",
        "admin.groups_list",
        "admin.group_create",
        "admin.group_detail",
        "admin.group_rename",
        "admin.group_delete",
        "admin.group_member_add",
        "admin.group_member_remove",
        "admin.sync_list",
        "admin.audit_list",
        "admin.config_show",
        "admin.config_check",
    } <= endpoints


def test_anonymous_visitors_are_sent_to_the_sign_in_page_from_every_admin_endpoint(
    app: Flask, client: FlaskClient
) -> None:
    for endpoint, method, _rule in admin_endpoints(app):
        response = request(client, app, endpoint, method)
        assert response.status_code == 302, (endpoint, method, response.status_code)
        assert response.headers["Location"].startswith("/login?next=/admin/"), endpoint


def test_signed_in_non_admins_get_403_from_every_admin_endpoint(app: Flask) -> None:
    make_local(app, "plain-user", is_admin=False)
    client = app.test_client()
    assert local_sign_in(client, "plain-user").status_code == 302
    for endpoint, method, _rule in admin_endpoints(app):
        response = request(client, app, endpoint, method)
        assert response.status_code == 403, (endpoint, method, response.status_code)
    with app.app_context():
        assert db.session.scalar(sa.select(Group.id).where(Group.name == "Renamed")) is None


def test_admins_reach_every_admin_endpoint(app: Flask, admin: Admin) -> None:
    for endpoint, method, _rule in admin_endpoints(app):
        response = request(admin.client, app, endpoint, method)
        expected = {200} if method == "GET" else {200, 302}
        assert response.status_code in expected, (endpoint, method, response.status_code)
        response.close()


@pytest.mark.parametrize("path", ["/admin/users/999999", "/admin/groups/999999"])
def test_unknown_ids_answer_404_to_admins(admin: Admin, path: str) -> None:
    assert admin.client.get(path).status_code == 404


def test_admin_pages_carry_the_security_headers_and_no_inline_script_or_style(
    app: Flask, admin: Admin
) -> None:
    targets = fresh_targets(app)
    for path in (
        "/admin/users",
        f"/admin/users/{targets['user_id']}",
        "/admin/groups",
        f"/admin/groups/{targets['group_id']}",
        "/admin/groups/new",
        "/admin/sync",
        "/admin/audit",
        "/admin/config",
    ):
        response = admin.client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        html = response.text
        assert "<script>" not in html and " style=" not in html and "onclick" not in html, path
        assert "<style" not in html, path


def test_disabled_admin_loses_the_console_at_the_next_request(app: Flask, admin: Admin) -> None:
    with app.app_context():
        db.session.get(User, admin.id).is_active = False
        db.session.commit()
    response = admin.client.get("/admin/users")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
