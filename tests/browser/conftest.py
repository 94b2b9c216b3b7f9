"""Browser-test machinery: one Chromium per run, fresh contexts, portals served on free ports."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Chromium's background connections are refused on a closed network; keep it quiet and fast.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Debian Chromium, driven by Playwright, for the whole run."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Chromium is not installed at {CHROMIUM}", pytrace=False)
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context that accepts the emulator's private CA, as a person clicking through."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@contextmanager
def serve_portal(
    make_app: Callable[..., Flask],
    emulator: Any,
    client: tuple[str, str],
    tenant_id: str,
    prepare: Callable[[Flask], None] | None = None,
    **env: str,
) -> Iterator[str]:
    """Serve a portal on a free port, registered in the emulator as app `client`; yield its URL."""
    server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)
    url = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    client_id, secret = client
    emulator.register_client(
        client_id,
        secret,
        redirect_uris=[f"{url}/auth/callback"],
        tenant_id=tenant_id,
        post_logout_redirect_uris=[f"{url}/login"],
    )
    app = make_app(
        PORTAL_BASE_URL=url,
        ENTRA_TENANT_ID=tenant_id,
        ENTRA_CLIENT_ID=client_id,
        ENTRA_CLIENT_SECRET=secret,
        **env,
    )
    if prepare is not None:
        prepare(app)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
