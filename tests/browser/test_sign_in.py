"""A person signs in through the emulator's account picker in Chromium and sees the home page.

Screenshots go to test-output/screenshots/; docs/img/ holds copies made from them for the README.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "test-output" / "screenshots"
BROWSER_CLIENT_ID = "33333333-4444-5555-6666-777777777777"
BROWSER_CLIENT_SECRET = "browser-test-secret"
NORA_EMAIL = "nora@northwind.example"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

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
    server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)
    url = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    emulator.register_client(
        BROWSER_CLIENT_ID,
        BROWSER_CLIENT_SECRET,
        redirect_uris=[f"{url}/auth/callback"],
        tenant_id=northwind,
        post_logout_redirect_uris=[f"{url}/login"],
    )
    server.app = make_app(
        PORTAL_BASE_URL=url,
        ENTRA_TENANT_ID=northwind,
        ENTRA_CLIENT_ID=BROWSER_CLIENT_ID,
        ENTRA_CLIENT_SECRET=BROWSER_CLIENT_SECRET,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def page() -> Iterator[Any]:
    """A Chromium page that accepts the emulator's private CA, as a person clicking through."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1100, "height": 720}
        )
        yield context.new_page()
        context.close()
        browser.close()


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
