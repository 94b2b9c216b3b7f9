"""The access policy (allowed groups, app roles, guests) and app roles, end to end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AuditEvent, Group, GroupMembership, User
from tests.helpers import CLIENT_ID, sign_in

ROLE = "Portal.User"
ADMIN_ROLE = "Portal.Admin"


@pytest.fixture(autouse=True)
def disarmed_emulator(emulator: Any) -> Iterator[None]:
    """Leave the emulator as the next test expects it: no faults, no optional claims."""
    yield
    emulator.reset_faults()
    emulator.set_optional_claims(CLIENT_ID, set())
    emulator.clients[CLIENT_ID].role_assignments.clear()


def events(app: Flask, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Return (actor, target, details) of the audit events with this action, oldest first."""
    with app.app_context():
        query = sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return [(e.actor, e.target, e.details) for e in db.session.scalars(query)]


def user_row(app: Flask, oid: str) -> User | None:
    """Return the user row of an object ID, detached, or None."""
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.object_id == oid)).one_or_none()
        db.session.expunge_all()
        return user


def group_names(app: Flask, oid: str) -> list[str]:
    """Return the sorted names of the user's local groups."""
    with app.app_context():
        query = (
            sa.select(Group.name)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .join(User, User.id == GroupMembership.user_id)
            .where(User.object_id == oid)
        )
        return sorted(db.session.scalars(query))


def assert_refused(app: Flask, client: FlaskClient, response: Any, oid: str, reason: str) -> None:
    """A refused sign-in: the 403 page, no session, and a signin.refused event naming why."""
    assert response.status_code == 403
    assert "may not use this portal" in response.text or "could not be checked" in response.text
    assert "ask your administrator" in response.text
    assert client.get("/").status_code == 302
    refused = events(app, "signin.refused")
    assert refused and refused[-1][0] == f"user:{oid}" and refused[-1][1].endswith(f" <{oid}>")
    assert reason in refused[-1][2]["reason"]


@pytest.fixture
def allowed_group(emulator: Any) -> str:
    """An Entra group whose members may sign in, with a nested group inside it."""
    return emulator.add_group(emulator.tenant_id, "Portal users")


def test_member_of_an_allowed_group_through_a_nested_group_signs_in(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
) -> None:
    app = make_app(PORTAL_ALLOWED_GROUP_IDS=allowed_group)
    nested = emulator.add_group(emulator.tenant_id, "Team inside")
    emulator.add_member(allowed_group, nested)
    oid = create_user("Nested Member")
    emulator.add_member(nested, oid)

    response = sign_in(app.test_client(), emulator, oid)

    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert events(app, "signin.ok") == [
        (
            f"user:{oid}",
            f"Nested Member <{oid}>",
            {"tenant": emulator.tenant_id, "user_id": user_row(app, oid).id},  # type: ignore[union-attr]
        )
    ]
    assert events(app, "signin.refused") == []


def test_outsider_is_refused_with_no_user_row_and_no_session(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
) -> None:
    app = make_app(PORTAL_ALLOWED_GROUP_IDS=allowed_group)
    oid = create_user("Outsider")
    emulator.add_member(emulator.add_group(emulator.tenant_id, "Elsewhere"), oid)
    client = app.test_client()

    response = sign_in(client, emulator, oid)

    assert_refused(
        app, client, response, oid, "not a member of a group in PORTAL_ALLOWED_GROUP_IDS"
    )
    assert user_row(app, oid) is None
    assert events(app, "signin.ok") == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Group)) == 0


def test_a_refused_name_with_a_nul_byte_still_gets_the_403_page_and_its_audit_event(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
) -> None:
    app = make_app(PORTAL_ALLOWED_GROUP_IDS=allowed_group)
    oid = create_user("Outsider")
    emulator.tamper_next_id_token(claims={"name": "Out\x00sider " + "x" * 300})
    client = app.test_client()

    response = sign_in(client, emulator, oid)

    assert_refused(
        app, client, response, oid, "not a member of a group in PORTAL_ALLOWED_GROUP_IDS"
    )
    assert events(app, "signin.refused")[-1][1] == f"{('Outsider ' + 'x' * 300)[:200]} <{oid}>"


def test_overage_path_admits_a_member_and_refuses_an_outsider(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(PORTAL_ALLOWED_GROUP_IDS=allowed_group)
    monkeypatch.setattr(emulator, "group_claim_limit", 1)
    member, outsider = create_user("Many Groups"), create_user("Many Others")
    for oid in (member, outsider):
        for n in range(2):
            emulator.add_member(emulator.add_group(emulator.tenant_id, f"Other {n}"), oid)
    emulator.add_member(allowed_group, member)

    admitted = sign_in(app.test_client(), emulator, member)
    client = app.test_client()
    refused = sign_in(client, emulator, outsider)

    assert admitted.status_code == 302 and "Portal users" in group_names(app, member)
    assert_refused(app, client, refused, outsider, "PORTAL_ALLOWED_GROUP_IDS")
    assert user_row(app, outsider) is None


def test_graph_down_on_the_overage_path_refuses_and_says_the_check_failed(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(PORTAL_ALLOWED_GROUP_IDS=allowed_group)
    monkeypatch.setattr(emulator, "group_claim_limit", 0)
    oid = create_user("Unlucky Member")
    emulator.add_member(allowed_group, oid)
    emulator.graph_faults.add("500", times=10)
    client = app.test_client()

    response = sign_in(client, emulator, oid)

    assert_refused(app, client, response, oid, "group membership could not be decided")
    assert "could not be checked" in response.text
    assert user_row(app, oid) is None


def test_refused_existing_user_keeps_memberships_and_last_sign_in(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
) -> None:
    oid = create_user("Former Member")
    team = emulator.add_group(emulator.tenant_id, "Team")
    emulator.add_members(team, [oid])
    emulator.add_member(allowed_group, oid)
    app = make_app(PORTAL_ALLOWED_GROUP_IDS=allowed_group)
    sign_in(app.test_client(), emulator, oid)
    before = user_row(app, oid)
    assert before is not None and group_names(app, oid) == ["All users", "Portal users", "Team"]
    emulator.remove_member(allowed_group, oid)
    emulator.remove_member(team, oid)
    client = app.test_client()

    response = sign_in(client, emulator, oid)

    assert_refused(app, client, response, oid, "PORTAL_ALLOWED_GROUP_IDS")
    after = user_row(app, oid)
    assert after is not None and after.last_login_at == before.last_login_at
    assert group_names(app, oid) == ["All users", "Portal users", "Team"]


def test_allowed_app_role_held_through_a_group_admits_without_the_allowed_group(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
) -> None:
    app = make_app(PORTAL_ALLOWED_GROUP_IDS=allowed_group, PORTAL_ALLOWED_APP_ROLES=ROLE)
    holders = emulator.add_group(emulator.tenant_id, "Role holders")
    emulator.assign_app_role(CLIENT_ID, holders, ROLE)
    direct, nested_only = create_user("Direct Holder"), create_user("Nested Only")
    emulator.add_member(holders, direct)
    inner = emulator.add_group(emulator.tenant_id, "Inner")
    emulator.add_member(holders, inner)
    emulator.add_member(inner, nested_only)

    admitted = sign_in(app.test_client(), emulator, direct)
    client = app.test_client()
    refused = sign_in(client, emulator, nested_only)

    assert admitted.status_code == 302
    assert user_row(app, direct).app_roles == [ROLE]  # type: ignore[union-attr]
    # Entra passes app roles only to direct members of an assigned group, as the emulator does.
    assert_refused(app, client, refused, nested_only, "PORTAL_ALLOWED_GROUP_IDS")


def test_allowed_app_roles_alone_refuse_a_user_without_one(
    make_app: Callable[..., Flask], emulator: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(PORTAL_ALLOWED_APP_ROLES=ROLE)
    holder, other = create_user("Holder"), create_user("No Role")
    emulator.assign_app_role(CLIENT_ID, holder, ROLE)

    assert sign_in(app.test_client(), emulator, holder).status_code == 302
    client = app.test_client()
    assert_refused(app, client, sign_in(client, emulator, other), other, "PORTAL_ALLOWED_APP_ROLES")


@pytest.mark.parametrize("by", ["acct", "idp"])
def test_guests_are_refused_when_not_allowed_and_admitted_by_default(
    make_app: Callable[..., Flask], emulator: Any, create_user: Callable[..., str], by: str
) -> None:
    if by == "acct":
        emulator.set_optional_claims(CLIENT_ID, {"acct"})
    guest = create_user("Visiting Guest", user_type="Guest", idp="live.com")
    member = create_user("Home Member", idp=f"https://sts.windows.net/{emulator.tenant_id}/")
    if by == "acct":  # the guest's acct claim alone must refuse them, whatever their idp says
        emulator.directory.update_user(guest, idp=None)
    strict = make_app(PORTAL_ALLOW_GUESTS="false")
    client = strict.test_client()

    refused = sign_in(client, emulator, guest)
    admitted = sign_in(strict.test_client(), emulator, member)

    reason = "acct claim 1" if by == "acct" else "signed in through live.com"
    assert_refused(strict, client, refused, guest, reason)
    assert admitted.status_code == 302 and user_row(strict, guest) is None
    open_app = make_app()
    assert sign_in(open_app.test_client(), emulator, guest).status_code == 302


def test_admin_app_role_grants_admin_and_losing_it_revokes_it(
    make_app: Callable[..., Flask], emulator: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(PORTAL_ADMIN_APP_ROLES=ADMIN_ROLE)
    oid = create_user("Role Admin")
    admins = emulator.add_group(emulator.tenant_id, "Portal admins by role")
    emulator.add_member(admins, oid)
    emulator.assign_app_role(CLIENT_ID, admins, ADMIN_ROLE)
    client = app.test_client()

    sign_in(client, emulator, oid)
    granted = user_row(app, oid)
    page = client.get(f"/admin/users/{granted.id}")  # type: ignore[union-attr]
    emulator.clients[CLIENT_ID].role_assignments.clear()
    sign_in(app.test_client(), emulator, oid)

    assert granted is not None and granted.is_admin
    assert page.status_code == 200 and ADMIN_ROLE in page.text
    assert user_row(app, oid).is_admin is False  # type: ignore[union-attr]
    target = f"Role Admin <{oid}>"
    assert [(a, t) for a, t, _ in events(app, "admin.granted")] == [("sync", target)]
    assert [(a, t) for a, t, _ in events(app, "admin.revoked")] == [("sync", target)]


def test_failed_sign_in_is_audited_with_its_reason(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Declined")
    emulator.idp_error_next("access_denied", "The user declined.")

    response = sign_in(app.test_client(), emulator, oid)

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    failed = events(app, "signin.failed")
    assert len(failed) == 1 and failed[0][0] == "anonymous"
    assert "access_denied" in failed[0][2]["reason"]


def test_prompt_and_domain_hint_reach_the_authorize_request(
    make_app: Callable[..., Flask],
) -> None:
    plain = make_app().test_client().get("/auth/login").headers["Location"]
    app = make_app(ENTRA_PROMPT="select_account", ENTRA_DOMAIN_HINT="contoso.example")

    started = app.test_client().get("/auth/login").headers["Location"]

    query = parse_qs(urlsplit(started).query)
    assert query["prompt"] == ["select_account"] and query["domain_hint"] == ["contoso.example"]
    assert "prompt" not in parse_qs(urlsplit(plain).query)


def test_the_sign_in_button_shows_a_custom_label(make_app: Callable[..., Flask]) -> None:
    app = make_app(PORTAL_SIGN_IN_LABEL="Sign in with Contoso ID")

    page = app.test_client().get("/login")

    assert "Sign in with Contoso ID" in page.text and "Sign in with Microsoft" not in page.text


def test_configuration_page_shows_the_policy_in_force(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    allowed_group: str,
) -> None:
    app = make_app(
        PORTAL_ALLOWED_GROUP_IDS=allowed_group,
        PORTAL_ALLOWED_APP_ROLES=ADMIN_ROLE,
        PORTAL_ADMIN_APP_ROLES=ADMIN_ROLE,
        PORTAL_ALLOW_GUESTS="false",
    )
    oid = create_user("Config Reader")
    emulator.assign_app_role(CLIENT_ID, oid, ADMIN_ROLE)
    client = app.test_client()
    sign_in(client, emulator, oid)

    page = client.get("/admin/config")

    assert page.status_code == 200
    assert f"members of {allowed_group} (nested groups included)" in page.text
    assert f"holders of the app role {ADMIN_ROLE}; guests refused" in page.text
