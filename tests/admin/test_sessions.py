"""Admins see a user's open sessions and end one or all of them, each an audit event."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AuditEvent, UserSession
from tests.helpers import Admin, local_sign_in, make_local, post

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"


def signed_in_as(app: Flask, username: str, agent: str = BROWSER) -> FlaskClient:
    """Return a new client signed in as a Local account, with its own browser name."""
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=agent, REMOTE_ADDR="192.0.2.7")
    assert local_sign_in(client, username).status_code == 302
    return client


def is_signed_in(client: FlaskClient) -> bool:
    """Tell whether the client's next click on the home page is signed in."""
    return client.get("/").status_code == 200


def session_ids(app: Flask, user_id: int) -> list[int]:
    """Return the IDs of the user's session records, oldest first."""
    with app.app_context():
        query = sa.select(UserSession.id).where(UserSession.user_id == user_id)
        return list(db.session.scalars(query.order_by(UserSession.id)))


def signed_out_events(app: Flask) -> list[tuple[str, str, int]]:
    """Return (actor, target, sessions ended) of every `user.signed_out` event."""
    with app.app_context():
        query = sa.select(AuditEvent).where(AuditEvent.action == "user.signed_out")
        return [(e.actor, e.target, e.details["sessions"]) for e in db.session.scalars(query)]


def test_the_user_page_lists_open_sessions_with_address_and_browser(
    app: Flask, admin: Admin
) -> None:
    user_id = make_local(app, "sam", is_admin=False)
    laptop, phone = signed_in_as(app, "sam"), signed_in_as(app, "sam", "Phone Browser 1.0")
    post(phone, "/auth/logout")  # an ended session is not listed

    page = admin.client.get(f"/admin/users/{user_id}").text

    assert re.search(r"Open sessions <span class=\"count\">1</span>", page)
    assert "192.0.2.7" in page and "Chrome/131.0" in page and "Phone Browser" not in page
    assert "End all sessions" in page
    assert is_signed_in(laptop)


def test_an_admin_ends_one_session_and_the_cookie_is_anonymous(app: Flask, admin: Admin) -> None:
    user_id = make_local(app, "sam", is_admin=False)
    laptop, phone = signed_in_as(app, "sam"), signed_in_as(app, "sam")
    laptop_session = session_ids(app, user_id)[0]

    answer = post(
        admin.client,
        f"/admin/users/{user_id}/sessions/{laptop_session}/end",
        follow_redirects=True,
    )

    assert "Ended one session of sam." in answer.text
    assert not is_signed_in(laptop) and is_signed_in(phone)
    assert signed_out_events(app) == [("root-admin", "sam", 1)]


def test_an_admin_ends_all_sessions_of_a_user(app: Flask, admin: Admin) -> None:
    user_id = make_local(app, "sam", is_admin=False)
    laptop, phone = signed_in_as(app, "sam"), signed_in_as(app, "sam")

    answer = post(admin.client, f"/admin/users/{user_id}/sessions/end", follow_redirects=True)
    again = post(admin.client, f"/admin/users/{user_id}/sessions/end", follow_redirects=True)

    assert "Ended 2 sessions of sam." in answer.text
    assert "sam has no open session." in again.text
    assert not is_signed_in(laptop) and not is_signed_in(phone)
    assert is_signed_in(admin.client)
    assert signed_out_events(app) == [("root-admin", "sam", 2)]


def test_ending_another_users_session_through_this_users_page_is_refused(
    app: Flask, admin: Admin
) -> None:
    sam_id = make_local(app, "sam", is_admin=False)
    make_local(app, "kim", is_admin=False)
    kim = signed_in_as(app, "kim")
    kim_session = session_ids(app, sam_id + 1)[0]

    answer = post(
        admin.client, f"/admin/users/{sam_id}/sessions/{kim_session}/end", follow_redirects=True
    )

    assert "That session had already ended." in answer.text
    assert is_signed_in(kim) and signed_out_events(app) == []


def test_ending_sessions_needs_a_csrf_token(app: Flask, admin: Admin) -> None:
    user_id = make_local(app, "sam", is_admin=False)
    laptop = signed_in_as(app, "sam")

    answer = admin.client.post(f"/admin/users/{user_id}/sessions/end")

    assert answer.status_code == 400
    assert is_signed_in(laptop)
