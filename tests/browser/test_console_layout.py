"""The console holds up with wide data and many groups: no sideways scrolling, bounded page heights.

Screenshots go to test-output/screenshots/layout-*.png; docs/img/ holds copies for the README.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Group, GroupMembership, SyncRecord, User
from portal.services import audit, users
from tests.helpers import SCREENSHOTS, serve_portal

CLIENT = ("66666666-7777-8888-9999-000000000000", "layout-browser-secret")
PASSWORD = "a long local admin password"
LONG = "Maximilian-Alexander Wolfeschlegelsteinhausenbergerdorff von Habsburg-Lothringen"
LONG_EMAIL = "maximilian.alexander.wolfeschlegelsteinhausenbergerdorff@subsidiary.contoso.example"
LONG_GROUP = "Regional operations working group for the north-western territories and islands"
GROUPS = 1000
WIDTHS = (1280, 390)

pytestmark = pytest.mark.browser


def wide_data(app: Flask) -> dict[str, int]:
    """Add a local admin, a member in 1,000 long-named groups, and long values everywhere."""
    with app.app_context():
        admin = users.create_local("layout-admin", PASSWORD, is_admin=True)
        member = users.create_local("member", PASSWORD, is_admin=False)
        member.display_name, member.email = LONG, LONG_EMAIL
        wide = User(
            tenant_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            user_type="External",
            display_name=LONG,
            email=LONG_EMAIL,
            upn=f"{LONG_EMAIL.replace('@', '_')}#EXT#@contoso.onmicrosoft.com",
        )
        db.session.add(wide)
        groups = [Group(name=f"{LONG_GROUP} {n:04d}", source="local") for n in range(GROUPS)]
        db.session.add_all(groups)
        db.session.flush()
        for person in (member, wide):
            db.session.add_all(
                GroupMembership(group_id=g.id, user_id=person.id, source="manual") for g in groups
            )
        names = [g.name for g in groups]
        db.session.add(SyncRecord(user_id=wide.id, status="ok", added=names, removed=names[:3]))
        db.session.add(SyncRecord(user_id=wide.id, status="failed", reason=LONG * 2))
        for _ in range(3):
            audit.record(
                LONG_EMAIL,
                "membership.add",
                f"{LONG} <{LONG_EMAIL}> in {LONG_GROUP}",
                user_id=wide.id,
                group_id=groups[0].id,
            )
        db.session.commit()
        return {"admin": admin.id, "member": member.id, "wide": wide.id, "group": groups[0].id}


@pytest.fixture
def wide_portal(make_app: Callable[..., Flask], emulator: Any) -> Iterator[tuple[str, dict]]:
    """Serve a portal holding the wide data; yield its URL and the ids."""
    ids: dict[str, int] = {}

    def prepare(app: Flask) -> None:
        ids.update(wide_data(app))

    with serve_portal(make_app, emulator, CLIENT, emulator.tenant_id, prepare) as url:
        yield url, ids


def sign_in_locally(page: Any, url: str, username: str) -> None:
    """Sign a local account in through the form."""
    page.goto(f"{url}/login?local=1")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def overflow(page: Any) -> dict[str, int]:
    """Return how far the page, and the widest table box, reach past their own width (pixels)."""
    return page.evaluate(
        """() => {
            const root = document.documentElement;
            const boxes = [...document.querySelectorAll('.table-wrap, .card')];
            return {
                page: root.scrollWidth - root.clientWidth,
                box: Math.max(0, ...boxes.map((b) => b.scrollWidth - b.clientWidth)),
            };
        }"""
    )


def widest(page: Any) -> str:
    """Name the elements that reach past the viewport's right edge, for a failure message."""
    return page.evaluate(
        """() => [...document.querySelectorAll('main *')]
            .filter((e) => e.getBoundingClientRect().right > innerWidth + 1)
            .slice(-3).map((e) => `${e.tagName}.${e.className}`).join(' ')"""
    )


def shot(page: Any, name: str) -> None:
    """Save the first screen as test-output/screenshots/layout-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"layout-{name}.png")


def test_no_admin_page_scrolls_sideways_with_long_values(
    wide_portal: tuple[str, dict], page: Any
) -> None:
    url, ids = wide_portal
    sign_in_locally(page, url, "layout-admin")
    paths = {
        "users": "/admin/users?q=Maximilian",
        "user": f"/admin/users/{ids['wide']}",
        "groups": "/admin/groups",
        "group": f"/admin/groups/{ids['group']}",
        "sync": "/admin/sync?window=all",
        "audit": "/admin/audit",
    }
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in paths.items():
            page.goto(f"{url}{path}")
            shot(page, f"{name}-{width}")
            assert overflow(page) == {"page": 0, "box": 0}, (width, path, widest(page))


def test_a_user_in_1000_groups_keeps_the_user_and_home_pages_short(
    wide_portal: tuple[str, dict], page: Any
) -> None:
    from playwright.sync_api import expect

    url, ids = wide_portal
    sign_in_locally(page, url, "layout-admin")
    page.goto(f"{url}/admin/users/{ids['wide']}")
    expect(page.get_by_text(f"Showing 1–25 of {GROUPS}")).to_be_visible()
    admin_height = page.evaluate("document.documentElement.scrollHeight")
    page.get_by_role("button", name="Sign out").click()

    sign_in_locally(page, url, "member")
    expect(page.get_by_text(f"Showing 1–50 of {GROUPS}")).to_be_visible()
    home_height = page.evaluate("document.documentElement.scrollHeight")
    page.get_by_label("Search your groups").fill("0999")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("Showing 1–1 of 1 groups")).to_be_visible()

    assert admin_height < 3000
    assert home_height < 3000


def test_sync_changes_open_on_demand(wide_portal: tuple[str, dict], page: Any) -> None:
    from playwright.sync_api import expect

    url, ids = wide_portal
    sign_in_locally(page, url, "layout-admin")
    page.goto(f"{url}/admin/users/{ids['wide']}")
    changes = page.locator("details.changes").first

    expect(changes.locator("summary")).to_have_text(f"+{GROUPS} −3 (show)")
    expect(changes.get_by_text(f"{LONG_GROUP} 0500")).to_be_hidden()
    closed = page.evaluate("document.documentElement.scrollHeight")
    changes.locator("summary").click()
    expect(changes.get_by_text(f"{LONG_GROUP} 0500")).to_be_visible()
    with_open = page.evaluate("document.documentElement.scrollHeight")
    assert with_open - closed < 600  # 1,000 names scroll inside their own box
