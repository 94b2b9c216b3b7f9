"""One person in two browsers: sign out everywhere in one, the other lands on /login next click."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.helpers import SCREENSHOTS, serve_portal

SESSIONS_CLIENT = ("44444444-5555-6666-7777-888888888888", "sessions-browser-secret")
PERSON = "Sid Sessions"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def fabrikam(emulator: Any) -> str:
    """A tenant of its own holding one person, so the account picker lists only them."""
    tenant_id = emulator.add_tenant(name="Fabrikam")
    emulator.add_user(tenant_id, PERSON, "sid@fabrikam.example", email="sid@fabrikam.example")
    return tenant_id


@pytest.fixture
def portal_url(make_app: Callable[..., Flask], emulator: Any, fabrikam: str) -> Iterator[str]:
    """Serve a portal on a free local port, registered in the emulator as its own app."""
    with serve_portal(make_app, emulator, SESSIONS_CLIENT, fabrikam) as url:
        yield url


def signed_in_page(browser: Any, portal_url: str) -> Any:
    """Open a fresh browser context and sign the person in through the account picker."""
    from playwright.sync_api import expect

    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{portal_url}/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.get_by_role("button", name=PERSON).click()
    expect(page).to_have_url(f"{portal_url}/")
    expect(page.get_by_role("heading", name=PERSON)).to_be_visible()
    return page


def test_sign_out_everywhere_sends_the_other_browser_to_login_at_its_next_click(
    browser: Any, portal_url: str
) -> None:
    from playwright.sync_api import expect

    laptop = signed_in_page(browser, portal_url)
    phone = signed_in_page(browser, portal_url)
    try:
        laptop.get_by_role("button", name="Sign out everywhere").click()
        expect(laptop).to_have_url(f"{portal_url}/login")

        phone.get_by_role("link", name="Home").click()

        expect(phone).to_have_url(f"{portal_url}/login?next=/")
        expect(phone.get_by_role("link", name="Sign in with Microsoft")).to_be_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=SCREENSHOTS / "signed-out-everywhere.png")
    finally:
        laptop.context.close()
        phone.context.close()
