"""The admin console at scale: paged memberships, the group picker, unique names, helpful errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.admin import overview, pagination
from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, ReconcileRun, SyncRecord, User
from portal.services import audit
from portal.services import groups as group_service
from tests.helpers import Admin, add_external, count_statements, local_sign_in, make_local, post

SHOWING = re.compile(r"Showing (\d+)–(\d+) of (\d+)")


def add_groups(app: Flask, user_id: int, count: int, prefix: str = "Team") -> None:
    """Put the user in `count` local groups named `<prefix> 0000` and on."""
    with app.app_context():
        rows = [Group(name=f"{prefix} {n:04d}", source="local") for n in range(count)]
        db.session.add_all(rows)
        db.session.flush()
        db.session.add_all(
            GroupMembership(group_id=g.id, user_id=user_id, source="manual") for g in rows
        )
        db.session.commit()


def group_id(app: Flask, name: str) -> int:
    """Return the id of the group with this name."""
    with app.app_context():
        return db.session.scalars(sa.select(Group.id).where(Group.name == name)).one()


def test_user_page_shows_a_page_of_groups_with_counts_and_search(app: Flask, admin: Admin) -> None:
    (user_id,) = add_external(app, 1)
    add_groups(app, user_id, 254)

    first = admin.client.get(f"/admin/users/{user_id}").text
    second = admin.client.get(f"/admin/users/{user_id}?page=2&size=100").text
    found = admin.client.get(f"/admin/users/{user_id}?q=0253").text

    assert SHOWING.search(first).groups() == ("1", "25", "254")
    assert first.count('href="/admin/groups/') == 25
    assert first.index("Add to a group") < first.index("Team 0000")
    assert SHOWING.search(second).groups() == ("101", "200", "254")
    assert f'href="/admin/users/{user_id}?page=3&amp;size=100"' in second  # size is kept
    assert "Team 0253" in found and "Team 0252" not in found
    assert SHOWING.search(found).groups() == ("1", "1", "1")


def test_home_page_pages_and_searches_the_users_own_groups(app: Flask) -> None:
    user_id = make_local(app, "member", is_admin=False)
    add_groups(app, user_id, 120)
    client = app.test_client()
    local_sign_in(client, "member")

    home = client.get("/").text
    searched = client.get("/?q=011").text

    assert SHOWING.search(home).groups() == ("1", "50", "120")
    assert home.count("<li title=") == 50
    assert 'href="/?size=50&amp;page=2"' in home or 'href="/?page=2&amp;size=50"' in home
    assert "Team 0119" in client.get("/?page=3").text
    assert SHOWING.search(searched).groups() == ("1", "11", "11")  # 0011 and 0110-0119


def test_group_picker_answers_json_for_admins_only(app: Flask, admin: Admin) -> None:
    add_groups(app, admin.id, 3, prefix="Finance")
    make_local(app, "member", is_admin=False)
    member = app.test_client()
    local_sign_in(member, "member")

    found = admin.client.get("/admin/groups/lookup?q=fin").get_json()
    builtin = admin.client.get("/admin/groups/lookup?q=all users").get_json()

    assert [g["name"] for g in found["groups"]] == ["Finance 0000", "Finance 0001", "Finance 0002"]
    assert set(found["groups"][0]) == {"id", "name", "source", "object_id"}
    assert builtin == {"groups": []}  # nobody is added to the built-in group by hand
    assert member.get("/admin/groups/lookup?q=fin").status_code == 403


def test_picked_group_id_chooses_between_groups_that_share_a_name(app: Flask, admin: Admin) -> None:
    (user_id,) = add_external(app, 1)
    with app.app_context():
        for n in (1, 2):
            link = EntraGroup(object_id=f"00000000-0000-0000-0000-00000000000{n}", tenant_id="t")
            db.session.add(Group(name="Sales", source="entra", entra_group=link))
        db.session.commit()
        second = db.session.scalars(sa.select(Group.id).order_by(Group.id.desc())).first()

    typed = post(admin.client, f"/admin/users/{user_id}/memberships", {"group": "Sales"})
    assert "several groups are named" in admin.client.get(typed.headers["Location"]).text
    picked = post(
        admin.client,
        f"/admin/users/{user_id}/memberships",
        {"group": "Sales", "group_id": str(second)},
        follow_redirects=True,
    )

    assert "is now a manual member of Sales" in picked.text
    with app.app_context():
        joined = db.session.scalars(
            sa.select(GroupMembership.group_id).where(GroupMembership.user_id == user_id)
        ).all()
        assert joined == [second]


def test_without_javascript_a_shared_name_offers_a_choice_of_its_groups(
    app: Flask, admin: Admin
) -> None:
    (user_id,) = add_external(app, 1)
    with app.app_context():
        link = EntraGroup(object_id="00000000-0000-0000-0000-0000000000a1", tenant_id="t")
        entra = Group(name="Sales", source="entra", entra_group=link)
        local = Group(name="Sales", source="local", description="The local team")
        db.session.add_all([entra, local])
        db.session.commit()
        local_id = local.id

    typed = post(admin.client, f"/admin/users/{user_id}/memberships", {"group": "Sales"})
    page = admin.client.get(typed.headers["Location"]).text
    choice = re.search(
        rf'name="group" value="Sales">\s*<input type="hidden" name="group_id" value="{local_id}"',
        page,
    )
    added = post(
        admin.client,
        f"/admin/users/{user_id}/memberships",
        {"group": "Sales", "group_id": str(local_id)},  # what that choice's button posts
        follow_redirects=True,
    )

    assert typed.headers["Location"].endswith(f"/admin/users/{user_id}?pick=Sales#groups")
    assert "several groups are named &#39;Sales&#39;. Choose one below." in page
    assert "2 groups are named Sales." in page and "0000000000a1" in page and choice
    assert "is now a manual member of Sales" in added.text
    with app.app_context():
        joined = db.session.scalars(
            sa.select(GroupMembership.group_id).where(GroupMembership.user_id == user_id)
        ).all()
        assert joined == [local_id]


def test_an_unknown_group_name_is_refused_and_named(app: Flask, admin: Admin) -> None:
    (user_id,) = add_external(app, 1)

    answer = post(
        admin.client,
        f"/admin/users/{user_id}/memberships",
        {"group": "Nowhere"},
        follow_redirects=True,
    )

    assert "Nothing changed: no group named &#39;Nowhere&#39;." in answer.text


def test_two_admins_adding_the_same_membership_one_sees_already_a_member(
    app: Flask, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    (user_id,) = add_external(app, 1)
    add_groups(app, user_id, 1, prefix="Ops")  # the other admin's insert, committed first
    # This admin's check ran before that commit: it saw no membership.
    monkeypatch.setattr(group_service, "membership", lambda group, user: None)

    response = post(
        admin.client,
        f"/admin/users/{user_id}/memberships",
        {"group": "Ops 0000"},
        follow_redirects=True,
    )

    assert response.status_code == 200
    assert "already a member of" in response.text


def test_local_group_names_are_unique_whatever_the_letter_case(app: Flask, admin: Admin) -> None:
    with app.app_context():
        link = EntraGroup(object_id="00000000-0000-0000-0000-0000000000f1", tenant_id="t")
        db.session.add(Group(name="Finance", source="entra", entra_group=link))
        db.session.add(Group(name="Helpers", source="local"))
        db.session.commit()
    helpers = group_id(app, "Helpers")

    beside_entra = post(admin.client, "/admin/groups/new", {"name": "finance"})
    same_case = post(admin.client, "/admin/groups/new", {"name": "HELPERS"})
    to_builtin = post(
        admin.client,
        f"/admin/groups/{helpers}/rename",
        {"name": "all users"},
        follow_redirects=True,
    )

    assert "already exists" in beside_entra.text
    assert "already exists" in same_case.text
    to_other = post(
        admin.client, f"/admin/groups/{helpers}/rename", {"name": "FINANCE"}, follow_redirects=True
    )
    assert "was not renamed" in to_builtin.text and "built-in group" in to_builtin.text
    assert "was not renamed" in to_other.text and "already exists" in to_other.text
    with app.app_context():
        assert db.session.get(Group, helpers).name == "Helpers"
        assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 2


def test_the_database_refuses_a_second_local_group_of_one_name_in_any_case(app: Flask) -> None:
    with app.app_context():
        db.session.add(Group(name="Volunteers", source="local"))
        db.session.commit()
        db.session.add(Group(name="VOLUNTEERS", source="local"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.add(Group(name="VOLUNTEERS", source="entra"))  # Entra names may repeat
        db.session.commit()


def test_concurrent_creates_of_one_name_make_one_group(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        group_service.create_local("Night shift")
        db.session.commit()
        # The second request checked the name before the first committed: the index decides.
        monkeypatch.setattr(group_service, "_free_name", lambda name, keep=None: name)
        with pytest.raises(group_service.GroupError, match="already exists"):
            group_service.create_local("night SHIFT")
        db.session.rollback()
        names = db.session.scalars(sa.select(Group.name).where(Group.source == "local")).all()
        assert names == ["Night shift"]


def test_entra_linked_group_delete_warns_that_it_comes_back(app: Flask, admin: Admin) -> None:
    with app.app_context():
        link = EntraGroup(object_id="00000000-0000-0000-0000-0000000000e1", tenant_id="t")
        db.session.add(Group(name="Engineering", source="entra", entra_group=link))
        db.session.commit()

    page = admin.client.get(f"/admin/groups/{group_id(app, 'Engineering')}").text

    assert "comes back at the next sign-in" in page


def test_group_page_counts_members_up_to_the_cap_and_searches_count_exactly(
    app: Flask, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = add_external(app, 12)
    with app.app_context():
        big, small = Group(name="Big", source="local"), Group(name="Small", source="local")
        db.session.add_all([big, small])
        db.session.flush()
        db.session.add_all(
            GroupMembership(group_id=big.id, user_id=p, source="manual") for p in people
        )
        db.session.add_all(
            GroupMembership(group_id=small.id, user_id=p, source="manual") for p in people[:3]
        )
        db.session.commit()
        big_id, small_id = big.id, small.id
    monkeypatch.setattr(pagination, "COUNT_CAP", 10)

    capped = admin.client.get(f"/admin/groups/{big_id}?size=5").text
    searched = admin.client.get(f"/admin/groups/{big_id}?q=Person+001").text
    exact = admin.client.get(f"/admin/groups/{small_id}").text

    assert "<dt>Members</dt><dd>more than 10</dd>" in capped
    assert "Showing 1–5 of more than 10 members" in capped
    assert "and its more than 10 memberships?" in capped  # the delete confirmation
    assert "Showing 1–2 of 2 members" in searched  # Person 0010 and Person 0011
    assert "<dt>Members</dt><dd>3</dd>" in exact and "Showing 1–3 of 3 members" in exact
    listed = admin.client.get("/admin/groups?q=Big").text + admin.client.get("/admin/groups").text
    assert '<td data-label="Members" class="num">more than 10</td>' in listed
    assert '<td data-label="Members" class="num">3</td>' in listed


def test_sync_records_show_changed_with_counts_not_walls_of_names(app: Flask, admin: Admin) -> None:
    (user_id,) = add_external(app, 1)
    with app.app_context():
        added = [f"Project {n:03d}" for n in range(254)]
        db.session.add(SyncRecord(user_id=user_id, status="ok", added=added, removed=[]))
        db.session.commit()

    for url in (f"/admin/users/{user_id}", "/admin/sync"):
        page = admin.client.get(url).text
        assert '<span class="badge badge-ok">changed</span>' in page
        assert '<span class="plus" title="groups joined">+254</span>' in page
        assert '<span class="minus" title="groups left">−0</span>' in page
        assert "<details" in page  # the names open on demand


def test_audit_log_matches_parts_of_actor_and_target_and_a_date_range(
    app: Flask, admin: Admin
) -> None:
    (user_id,) = add_external(app, 1)
    with app.app_context():
        audit.record("alice.admin@contoso.example", "user.disable", "Pat <pat@x>", user_id=user_id)
        audit.record("bob@contoso.example", "group.create", "Volunteers")
        old = audit.record("alice.admin@contoso.example", "group.create", "Old group")
        old.created_at = datetime.now(UTC) - timedelta(days=40)
        db.session.commit()
    today = datetime.now(UTC).date()

    by_actor = admin.client.get("/admin/audit?actor=ALICE").text
    by_target = admin.client.get("/admin/audit?q=volun").text
    recent = admin.client.get(f"/admin/audit?since={today - timedelta(days=1)}").text
    older = admin.client.get(f"/admin/audit?until={today - timedelta(days=30)}").text

    assert "Pat &lt;pat@x&gt;" in by_actor and "Volunteers" not in by_actor
    assert "Old group" in by_actor
    assert "Volunteers" in by_target and "Pat &lt;" not in by_target
    assert "Volunteers" in recent and "Old group" not in recent
    assert "Old group" in older and "Volunteers" not in older
    assert f'href="/admin/users/{user_id}"' in by_actor  # the target links to the user


def test_user_page_lists_admin_actions_on_that_user(app: Flask, admin: Admin) -> None:
    other, user_id = add_external(app, 2)
    post(admin.client, f"/admin/users/{user_id}/disable")
    post(admin.client, f"/admin/users/{other}/disable")

    page = admin.client.get(f"/admin/users/{user_id}").text
    only_theirs = admin.client.get(f"/admin/audit?user={user_id}").text

    assert "Admin actions and sign-ins" in page
    assert page.count("badge-action") == 1 and "user.disabled" in page
    assert only_theirs.count('data-label="Action"') == 1


def test_user_page_costs_three_statements_with_every_list_full_and_in_order(
    app: Flask, admin: Admin
) -> None:
    user_id = make_local(app, "sam", is_admin=False)
    for agent in ("Laptop Browser", "Phone Browser"):
        client = app.test_client()
        client.environ_base.update(HTTP_USER_AGENT=agent)
        local_sign_in(client, "sam")
    add_groups(app, user_id, 30)
    with app.app_context():
        start = datetime.now(UTC) - timedelta(days=1)
        for n in range(12):
            at = start + timedelta(minutes=n)
            db.session.add(
                SyncRecord(user_id=user_id, status="failed", synced_at=at, reason=f"R{n:02d}")
            )
            audit.record("root-admin", f"test.e{n:02d}", "x", user_id=user_id)
        db.session.commit()
    url = f"/admin/users/{user_id}"
    admin.client.get(url)

    with count_statements(app) as statements:
        page = admin.client.get(url).text

    assert len(statements) <= 3, statements  # the session, the user with groups, the lists
    assert re.findall(r">R(\d\d)<", page) == [f"{n:02d}" for n in range(11, 1, -1)]
    assert re.findall(r"test\.e(\d\d)", page) == [f"{n:02d}" for n in range(11, 1, -1)]
    assert page.index("Phone Browser") < page.index("Laptop Browser")  # latest seen first
    assert SHOWING.search(page).groups() == ("1", "25", "30")
    assert page.index("Team 0000") < page.index("Team 0024") and "Team 0025" not in page


@pytest.mark.parametrize(
    ("url", "heading", "back"),
    [
        ("/admin/users/99999999999999999999999", "User not found", "/admin/users"),
        ("/admin/users/987654", "User not found", "/admin/users"),
        ("/admin/groups/99999999999999999999999", "Group not found", "/admin/groups"),
    ],
)
def test_unknown_and_huge_ids_are_a_404_with_a_way_back(
    admin: Admin, url: str, heading: str, back: str
) -> None:
    response = admin.client.get(url)

    assert response.status_code == 404
    assert heading in response.text
    assert f'href="{back}"' in response.text


def test_403_page_says_where_admin_comes_from_and_names_the_admin_groups(
    make_app: Any,
) -> None:
    object_id = "00000000-0000-0000-0000-0000000000ad"
    app = make_app(PORTAL_ADMIN_GROUP_IDS=object_id)
    with app.app_context():
        db.session.add(EntraGroup(object_id=object_id, tenant_id="t", display_name="Portal Admins"))
        db.session.commit()
    make_local(app, "member", is_admin=False)
    client = app.test_client()
    local_sign_in(client, "member")

    response = client.get("/admin/users")

    assert response.status_code == 403
    assert "admin groups" in response.text and "Portal Admins" in response.text
    assert "sign in again" in response.text


def test_form_posted_after_the_session_ended_asks_to_sign_in_again(
    app: Flask, admin: Admin
) -> None:
    (user_id,) = add_external(app, 1)
    stale = admin.client.get(f"/admin/users/{user_id}").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', stale).group(1)
    admin.client.delete_cookie("portal_session")

    response = admin.client.post(
        f"/admin/users/{user_id}/disable",
        data={"csrf_token": token},
        headers={"Referer": f"http://localhost/admin/users/{user_id}"},
    )

    assert response.status_code == 400
    assert "Sign in again" in response.text and "Reload" not in response.text
    assert f'href="/login?next=/admin/users/{user_id}"' in response.text
    with app.app_context():
        assert db.session.get(User, user_id).is_active


def test_500_page_shows_the_request_id_of_the_log_line(app: Flask) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-abc123"})

    assert response.status_code == 500
    assert "req-abc123" in response.text


def test_lists_say_which_rows_of_how_many_and_keep_the_page_size(app: Flask, admin: Admin) -> None:
    add_external(app, 60)

    first = admin.client.get("/admin/users?size=25").text
    next_url = unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))
    second = admin.client.get(next_url).text

    assert "Showing 1–25 of 61 users" in first  # the 60 and the signed-in admin
    assert "size=25" in next_url and "start=26" in next_url
    assert "Showing 26–50 of about 61 users" in second
    assert '<option value="25" selected>' in second
    assert '<input type="hidden" name="size" value="25">' in second  # filtering keeps it too


def test_counts_stop_at_the_cap_and_say_more_than(
    app: Flask, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_external(app, 12)
    monkeypatch.setattr(pagination, "COUNT_CAP", 10)

    page = admin.client.get("/admin/users?size=5").text

    assert "Showing 1–5 of more than" in page


def test_overview_counts_recent_sign_ins_failed_syncs_admins_and_groups(
    app: Flask, admin: Admin
) -> None:
    recent, older, _never = add_external(app, 3)
    with app.app_context():
        now = datetime.now(UTC)
        db.session.get(User, recent).last_login_at = now - timedelta(hours=2)
        db.session.get(User, older).last_login_at = now - timedelta(days=10)
        db.session.add(SyncRecord(user_id=recent, status="failed", reason="Graph timed out"))
        db.session.add(
            SyncRecord(user_id=older, status="failed", synced_at=now - timedelta(days=3))
        )
        db.session.add(Group(name="Helpers", source="local"))
        db.session.commit()

    page = admin.client.get("/admin/").text
    # Signed in: the recent user and the admin (just now), then the older one; never: not counted.
    assert re.search(r"Last day</dt><dd>2</dd>.*Last week</dt><dd>2</dd>", page, re.S)
    assert "Last month</dt><dd>3</dd>" in page
    assert 'href="/admin/sync?status=failed&amp;window=24h"' in page
    assert re.search(r"Failed syncs.*?Last day</dt><dd>1</dd>", page, re.S)
    assert re.search(r'source=local">Local</a></dt><dd>1</dd>', page)
    assert f'href="/admin/users/{admin.id}"' in page  # the admin is listed
    assert "All 4 users, latest sign-in first" in page
    assert admin.client.get("/admin").status_code in (301, 308)


def test_overview_counts_users_up_to_the_lists_cap(
    app: Flask, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = add_external(app, 4)
    with app.app_context():
        for person in people:
            db.session.get(User, person).last_login_at = datetime.now(UTC) - timedelta(hours=1)
        db.session.commit()
    monkeypatch.setattr(overview, "COUNT_CAP", 3)

    page = admin.client.get("/admin/").text

    assert "All more than 3 users, latest sign-in first" in page
    assert "Last day</dt><dd>more than 3</dd>" in page


def add_run(app: Flask, status: str, minutes_ago: int, **counts: Any) -> None:
    """Record a reconciliation run that started `minutes_ago` minutes ago."""
    with app.app_context():
        at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        db.session.add(ReconcileRun(started_at=at, finished_at=at, status=status, **counts))
        db.session.commit()


def reconciliation_card(page: str) -> str:
    """Return the overview's reconciliation card."""
    found = re.search(r'<section [^>]*id="reconciliation">(.*?)</section>', page, re.S)
    assert found, "no reconciliation card"
    return found.group(1)


def test_overview_shows_the_last_reconciliation_run_with_its_counts(
    app: Flask, admin: Admin
) -> None:
    add_run(app, "failed", 90, reason="Graph unreachable")
    add_run(app, "ok", 5, users_disabled=2, memberships_added=7, memberships_removed=3)

    with count_statements(app) as statements:
        page = admin.client.get("/admin/").text
    card = reconciliation_card(page)

    assert len(statements) <= 3, statements  # the session, the admins, everything else
    assert "badge-ok" in card and "Applied" in card and "Graph unreachable" not in card
    assert "Users disabled</dt><dd>2</dd>" in card and "Memberships added</dt><dd>7</dd>" in card
    assert "Memberships removed</dt><dd>3</dd>" in card
    assert 'href="/admin/reconcile"' in card


def test_overview_says_no_reconciliation_has_run_yet_and_how_to_run_one(
    app: Flask, admin: Admin
) -> None:
    card = reconciliation_card(admin.client.get("/admin/").text)

    assert "No reconciliation has run yet." in card
    assert "flask --app app sync reconcile" in card


def test_overview_says_a_held_run_was_held_and_applied_nothing(app: Flask, admin: Admin) -> None:
    add_run(app, "held", 1, memberships_removed=900, reason="900 removals exceed 500")

    card = reconciliation_card(admin.client.get("/admin/").text)

    assert "badge-held" in card and ">Held<" in card and "Applied" not in card
    assert "nothing was applied" in card and "Memberships removed</dt><dd>900</dd>" in card
    assert 'href="/admin/reconcile#held"' in card


def test_overview_says_a_failed_run_failed_and_why(app: Flask, admin: Admin) -> None:
    add_run(app, "failed", 1, reason="Graph unreachable after 3 retries")

    card = reconciliation_card(admin.client.get("/admin/").text)

    assert "badge-failed" in card and "Graph unreachable after 3 retries" in card


def test_user_page_shows_the_users_failed_local_sign_ins(app: Flask, admin: Admin) -> None:
    member = make_local(app, "member", is_admin=False)
    local_sign_in(app.test_client(), "member", password="not the password")

    page = admin.client.get(f"/admin/users/{member}").text

    assert "local.failed" in page


def test_users_list_filters_admins_and_the_overview_links_there(app: Flask, admin: Admin) -> None:
    add_external(app, 3)

    listed = admin.client.get("/admin/users?role=admin").text

    assert "Showing 1–1 of 1 users" in listed and "root-admin" in listed
    assert 'href="/admin/users?role=admin"' in admin.client.get("/admin/").text
