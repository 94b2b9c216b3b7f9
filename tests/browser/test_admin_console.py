"""Admins walk the console in Chromium: local and External sign-in, every page, two actions.

Screenshots go to test-output/screenshots/admin-*.png; docs/img/ holds copies for the README.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from portal.dev.seed import seed
from portal.extensions import db
from portal.models import ReconcileRun
from portal.models.base import utcnow
from portal.services import users
from tests.helpers import SCREENSHOTS, serve_portal

CLIENT = ("55555555-6666-7777-8888-999999999999", "admin-browser-secret")
PASSWORD = "a long local admin password"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fabrikam(emulator: Any) -> dict[str, str]:
    """A tenant of its own: an admin group with Ada in it, and Ben who is no admin."""
    tenant_id = emulator.add_tenant(name="Fabrikam")
    ada = emulator.add_user(
        tenant_id, "Ada Admin", "ada@fabrikam.example", email="ada@fabrikam.example"
    )
    emulator.add_user(tenant_id, "Ben Member", "ben@fabrikam.example", email="ben@fabrikam.example")
    admins = emulator.add_group(tenant_id, "Portal admins")
    emulator.add_member(admins, ada)
    return {"tenant_id": tenant_id, "admin_group": admins}


@pytest.fixture
def portal(
    make_app: Callable[..., Flask], emulator: Any, fabrikam: dict[str, str]
) -> Iterator[str]:
    """Serve a portal with sample data on a free port, registered in the emulator."""

    def add_sample_data(app: Flask) -> None:
        with app.app_context():
            seed(80, 12, 500, seed=11, n_sync=60)
            users.create_local("console-admin", PASSWORD, is_admin=True)
            started = utcnow() - timedelta(minutes=12)
            db.session.add(
                ReconcileRun(
                    started_at=started,
                    finished_at=started + timedelta(seconds=2),
                    status="ok",
                    users_disabled=1,
                    memberships_added=14,
                    memberships_removed=3,
                    graph_calls=4,
                    duration_ms=2100,
                )
            )
            db.session.commit()

    tenant_id = fabrikam["tenant_id"]
    admins = fabrikam["admin_group"]
    with serve_portal(
        make_app, emulator, CLIENT, tenant_id, add_sample_data, PORTAL_ADMIN_GROUP_IDS=admins
    ) as url:
        yield url


def shot(page: Any, name: str, full_page: bool = True) -> None:
    """Save a screenshot under test-output/screenshots/ (long lists: the first screen only)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"admin-{name}.png", full_page=full_page)


def nav(page: Any, label: str) -> None:
    """Follow an entry of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()


def test_local_admin_walks_the_console_disables_a_user_and_adds_a_membership(
    portal: str, page: Any
) -> None:
    from playwright.sync_api import expect

    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{portal}/admin/users")
    page.get_by_text("Sign in with a local account").click()
    page.get_by_label("Username").fill("console-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Next ›")).to_be_visible()
    shot(page, "users", full_page=False)

    nav(page, "Groups")
    page.get_by_role("link", name="New local group").click()
    page.get_by_label("Name").fill("Field volunteers")
    page.get_by_label("Description").fill("People who help at events.")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_text("Group Field volunteers created.")).to_be_visible()

    nav(page, "Users")
    page.get_by_label("Type").select_option("External")
    expect(page).to_have_url(re.compile(r"/admin/users\?.*type=External"))
    page.locator("a.row-title").first.click()
    person = page.locator("h1").inner_text()
    page.get_by_role("button", name="Disable user").click()
    expect(page.get_by_text(f"{person} is disabled.")).to_be_visible()
    # The picker offers matching groups as one types, and remembers the chosen group's id.
    picker = page.get_by_label("Add to a group")
    picker.fill("field vol")
    expect(page.locator('#group-options option[value="Field volunteers"]')).to_be_attached()
    picker.fill("Field volunteers")
    expect(page.locator("input[name=group_id]")).to_have_value(re.compile(r"^\d+$"))
    page.get_by_role("button", name="Add", exact=True).click()
    expect(
        page.get_by_text(f"{person} is now a manual member of Field volunteers.")
    ).to_be_visible()
    expect(page.locator(".member-list").get_by_text("manual")).to_be_visible()
    shot(page, "user")

    page.get_by_role("link", name="Field volunteers").click()
    expect(page.get_by_role("link", name=person)).to_be_visible()
    shot(page, "group")
    nav(page, "Groups")
    expect(page.get_by_role("link", name="All users")).to_be_visible()
    shot(page, "groups", full_page=False)

    nav(page, "Sync activity")
    page.get_by_label("Since").select_option("all")
    expect(page).to_have_url(re.compile(r"window=all"))
    expect(page.locator("tbody tr").first.locator(".badge-failed")).to_be_visible()
    shot(page, "sync", full_page=False)

    nav(page, "Audit log")
    for action in ("user.disabled", "membership.added", "group.created"):
        expect(page.locator("tbody").get_by_text(action, exact=True)).to_be_visible()
    shot(page, "audit")

    nav(page, "Configuration")
    page.get_by_role("button", name="Check configuration").click()
    expect(page.get_by_text("all passed")).to_be_visible()
    expect(page.locator(".step-ok")).to_have_count(6)
    shot(page, "config")

    nav(page, "Overview")
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Show failed syncs")).to_be_visible()
    card = page.locator("#reconciliation")
    expect(card.get_by_text("Applied", exact=True)).to_be_visible()
    expect(card.get_by_role("link", name="All reconciliation runs")).to_be_visible()
    shot(page, "overview")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()  # folded into a menu
    page.get_by_role("button", name="Menu").click()
    nav(page, "Users")
    expect(page.locator("td[data-label='Name']").first).to_be_visible()
    shot(page, "users-phone", full_page=False)


def test_external_admin_signs_in_through_the_account_picker_and_reaches_the_console(
    portal: str, page: Any
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{portal}/admin/groups")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.get_by_role("button", name="Ada Admin").click()

    expect(page).to_have_url(f"{portal}/admin/groups")
    expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Portal admins")).to_be_visible()
    page.get_by_role("link", name="Portal admins").click()
    expect(page.get_by_text("The name of this group comes from Entra ID")).to_be_visible()
    expect(page.get_by_role("link", name="Ada Admin")).to_be_visible()
    shot(page, "external-group")
