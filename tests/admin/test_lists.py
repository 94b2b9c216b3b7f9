"""The admin lists: keyset pages that are complete, ordered, and cost at most 3 statements each."""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.dev.seed import seed
from portal.extensions import db
from portal.models import AuditEvent, Group, SyncRecord, User
from portal.services import audit
from tests.helpers import Admin, count_statements

MAX_STATEMENTS = 3
NEXT = re.compile(r'rel="next" href="([^"]+)"')
PREV = re.compile(r'rel="prev" href="([^"]+)"')
USER_LINK = re.compile(r'class="row-title" href="/admin/users/(\d+)"')
# The whole audit target is in the title: the text may be clipped, and may be a link.
TARGET = re.compile(r'data-label="Target"[^>]*>\s*<(?:a|span) [^>]*title="([^"]*)"')
GROUP_LINK = re.compile(r'class="row-title" href="/admin/groups/(\d+)"')


@pytest.fixture
def seeded(app: Flask) -> Flask:
    """A portal whose database holds a few hundred users, groups, memberships and syncs."""
    with app.app_context():
        seed(230, 15, 1400, seed=7, n_sync=260)
        for n in range(60):
            audit.record("seeder", "group.created", f"Group {n}")
        db.session.commit()
    return app


def walk(admin: Admin, app: Flask, url: str, link: re.Pattern[str]) -> list[int]:
    """Follow `Next` links from `url` to the end, checking each page's statement count."""
    ids: list[int] = []
    while url:
        with count_statements(app) as statements:
            page = admin.client.get(url).text
        assert len(statements) <= MAX_STATEMENTS, (url, statements)
        ids += [int(i) for i in link.findall(page)]
        found = NEXT.search(page)
        url = unescape(found.group(1)) if found else ""
    return ids


def user_ids(app: Flask, *order: sa.ColumnElement[object], where: object = True) -> list[int]:
    """Return the ids of users in the given order, straight from the database."""
    with app.app_context():
        return list(db.session.scalars(sa.select(User.id).where(where).order_by(*order)))


def nulls_last(column: sa.ColumnElement[object], descending: bool = False) -> list[object]:
    """Order by a column with its NULLs last on every database, then by id."""
    direction = column.desc() if descending else column.asc()
    return [column.is_(None), direction, User.id.desc() if descending else User.id]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sort=name", lambda: [User.display_name, User.id]),
        ("sort=name&dir=desc", lambda: [User.display_name.desc(), User.id.desc()]),
        ("sort=email", lambda: nulls_last(User.email)),
        ("sort=last_login&dir=desc", lambda: nulls_last(User.last_login_at, descending=True)),
        ("sort=created&dir=desc", lambda: [User.id.desc()]),
    ],
)
def test_walking_every_users_page_lists_each_user_once_in_order(
    seeded: Flask, admin: Admin, query: str, expected: object
) -> None:
    walked = walk(admin, seeded, f"/admin/users?{query}&size=40", USER_LINK)
    assert walked == user_ids(seeded, *expected())  # type: ignore[operator]


def test_previous_links_lead_back_through_the_same_pages(seeded: Flask, admin: Admin) -> None:
    url, pages = "/admin/users?sort=email&size=50", []
    while url:
        page = admin.client.get(url).text
        pages.append([int(i) for i in USER_LINK.findall(page)])
        found = NEXT.search(page)
        url = unescape(found.group(1)) if found else ""
    backwards = [pages[-1]]
    while found := PREV.search(page):
        with count_statements(seeded) as statements:
            page = admin.client.get(unescape(found.group(1))).text
        assert len(statements) <= MAX_STATEMENTS
        backwards.append([int(i) for i in USER_LINK.findall(page)])
    assert backwards[::-1] == pages


@pytest.mark.parametrize("size", ["10", "200"])
@pytest.mark.parametrize(
    "filters",
    ["", "q=silva", "type=Local", "status=disabled", "sync=failed", "group=All+users"],
)
def test_users_pages_cost_at_most_three_statements_at_any_size_and_filter(
    seeded: Flask, admin: Admin, filters: str, size: str
) -> None:
    walk(admin, seeded, f"/admin/users?{filters}&size={size}&sort=last_login", USER_LINK)


def test_users_filters_narrow_the_list(seeded: Flask, admin: Admin) -> None:
    local = walk(admin, seeded, "/admin/users?type=Local&size=200", USER_LINK)
    assert local == user_ids(seeded, User.display_name, User.id, where=User.user_type == "Local")
    disabled = walk(admin, seeded, "/admin/users?status=disabled&size=200", USER_LINK)
    assert disabled == user_ids(seeded, User.display_name, User.id, where=~User.is_active)
    found = walk(admin, seeded, "/admin/users?q=SILVA&size=200", USER_LINK)
    assert found == user_ids(
        seeded, User.display_name, User.id, where=User.display_name.like("%Silva%")
    )
    assert found and local and disabled


def test_last_sync_failed_filter_keeps_users_whose_latest_record_failed(
    seeded: Flask, admin: Admin
) -> None:
    with seeded.app_context():
        latest: dict[int, str] = {}
        for record in db.session.scalars(sa.select(SyncRecord).order_by(SyncRecord.synced_at)):
            latest[record.user_id] = record.status
    expected = sorted(uid for uid, status in latest.items() if status == "failed")
    walked = walk(admin, seeded, "/admin/users?sync=failed&sort=created", USER_LINK)
    assert sorted(walked) == expected and expected


def test_group_filter_lists_the_groups_members(seeded: Flask, admin: Admin) -> None:
    with seeded.app_context():
        group = db.session.scalars(sa.select(Group).where(Group.source == "entra")).first()
        members = sorted(m.user_id for m in group.memberships)
        name = group.name
    walked = walk(admin, seeded, f"/admin/users?group={name}&size=30", USER_LINK)
    assert sorted(walked) == members


def test_groups_list_and_group_members_walk_within_the_statement_budget(
    seeded: Flask, admin: Admin
) -> None:
    walked = walk(admin, seeded, "/admin/groups?size=4", GROUP_LINK)
    with seeded.app_context():
        assert walked == list(
            db.session.scalars(sa.select(Group.id).order_by(Group.name, Group.id))
        )
        all_users = db.session.scalar(sa.select(Group.id).where(Group.source == "builtin"))
        expected = list(
            db.session.scalars(
                sa.select(User.id)
                .where(User.is_active, User.user_type == "External")
                .order_by(User.display_name, User.id)
            )
        )
    assert walk(admin, seeded, f"/admin/groups/{all_users}?size=25", USER_LINK) == expected


def test_groups_list_shows_each_groups_member_count(seeded: Flask, admin: Admin) -> None:
    page = admin.client.get("/admin/groups?q=All+users").text
    with seeded.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(User)
            .where(User.is_active, User.user_type == "External")
        )
    assert f'data-label="Members" class="num">{count:,}<' in page


@pytest.mark.parametrize("query", ["", "status=failed", "status=ok", "window=all"])
def test_sync_activity_lists_failures_first_within_the_budget(
    seeded: Flask, admin: Admin, query: str
) -> None:
    statuses: list[str] = []
    url = f"/admin/sync?{query}&size=30"
    while url:
        with count_statements(seeded) as statements:
            page = admin.client.get(url).text
        assert len(statements) <= MAX_STATEMENTS
        statuses += re.findall(r'data-label="Status"><span class="badge badge-(\w+)"', page)
        found = NEXT.search(page)
        url = unescape(found.group(1)) if found else ""
    assert statuses
    if not query:
        failed = statuses.count("failed")
        assert statuses[:failed] == ["failed"] * failed and failed
    if query.startswith("status="):
        assert set(statuses) == {query.split("=")[1]}


def test_audit_log_pages_newest_first_and_filters_by_action(seeded: Flask, admin: Admin) -> None:
    url, targets = "/admin/audit?size=25&action=group.created", []
    while url:
        with count_statements(seeded) as statements:
            page = admin.client.get(url).text
        assert len(statements) <= MAX_STATEMENTS
        targets += TARGET.findall(page)
        found = NEXT.search(page)
        url = unescape(found.group(1)) if found else ""
    assert targets == [f"Group {n}" for n in reversed(range(60))]
    with seeded.app_context():
        created = sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.action == "group.created"
        )
        assert db.session.scalar(created) == 60


def test_a_forged_cursor_shows_the_first_page(seeded: Flask, admin: Admin) -> None:
    first = admin.client.get("/admin/users").text
    for cursor in ("garbage", "WzksWzFdXQ", "W1swXSwiYSJd"):
        page = admin.client.get(f"/admin/users?after={cursor}")
        assert page.status_code == 200
        assert USER_LINK.findall(page.text) == USER_LINK.findall(first)
