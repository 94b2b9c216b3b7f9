"""A person signs in through the emulator's account picker in Chromium and sees the home page.

Screenshots go to test-output/screenshots/; docs/img/ holds copies made from them for the README.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.helpers import SCREENSHOTS, serve_portal

BROWSER_CLIENT = ("33333333-4444-5555-6666-777777777777", "browser-test-secret")
NORA_EMAIL = "nora@northwind.example"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def northwind(emulator: Any) -> str:
    """A tenant of its own holding one person, so the account picker lists only her."""
    tenant_id = emulator.add_tenant(name="Northwind")
    emulator.add_user(tenant_id, "Nora Browser", NORA_EMAIL, email=NORA_EMAIL)
    return tenant_id


@pytest.fixture
def portal_url(make_app: Callable[..., Flask], emulator: Any, northwind: str) -> Iterator[str]:
    """Serve a portal on a free local port, registered in the emulator as its own app."""
    with serve_portal(make_app, emulator, BROWSER_CLIENT, northwind) as url:
        yield url


def test_person_signs_in_through_the_account_picker_and_sees_their_profile(
    portal_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{portal_url}/")
    expect(page).to_have_url(f"{portal_url}/login?next=/")
    page.screenshot(path=SCREENSHOTS / "sign-in.png")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    account = page.get_by_role("button", name="Nora Browser")
    expect(account).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "account-picker.png")
    account.click()

    expect(page).to_have_url(f"{portal_url}/")
    expect(page.get_by_role("heading", name="Nora Browser")).to_be_visible()
    expect(page.get_by_text(NORA_EMAIL, exact=True)).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "home.png")
