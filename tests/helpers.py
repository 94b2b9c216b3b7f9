"""What the tests share besides fixtures: the one app builder, sign-in flows, forms, counters.

Tests import these from here; the conftest files hold fixtures only.
"""

from __future__ import annotations

import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from portal import create_app
from portal.config import load_config
from portal.extensions import db
from portal.models import Base, User
from portal.services import users

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "emulator-test-secret"
REDIRECT_URI = "http://localhost/auth/callback"


def build_app(env: Mapping[str, str | None], instance: Path | str) -> Flask:
    """Build a portal for tests from environment variables, as production reads them."""
    config = load_config({k: v for k, v in env.items() if v is not None}, str(instance))
    return create_app({**config, "TESTING": True})


def base_env(emulator: Any, database_url: str) -> dict[str, str]:
    """Return the environment variables of a portal pointed at the emulator."""
    return {
        "PORTAL_ENV": "production",
        "SECRET_KEY": "test-secret-key-of-at-least-32-chars",
        "PORTAL_BASE_URL": "http://localhost",
        "DATABASE_URL": database_url,
        "ENTRA_TENANT_ID": emulator.tenant_id,
        "ENTRA_CLIENT_ID": CLIENT_ID,
        "ENTRA_CLIENT_SECRET": CLIENT_SECRET,
        "ENTRA_AUTHORITY_HOST": emulator.url,
        "GRAPH_ENDPOINT": emulator.url,
        "ENTRA_CA_BUNDLE": str(emulator.ca_path),
    }


def emulator_session(emulator: Any) -> requests.Session:
    """Return a requests session that trusts the emulator's CA, as a browser would."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(emulator.ca_path)
    return session


def pick_account(emulator: Any, authorize_url: str, object_id: str) -> requests.Response:
    """Answer the emulator's account picker as a person would, without following the redirect."""
    return emulator_session(emulator).post(
        authorize_url, data={"account": object_id}, allow_redirects=False, timeout=10
    )


def prepare_callback(
    client: FlaskClient, emulator: Any, object_id: str, next_url: str | None = None
) -> str:
    """Start the flow and pick the account; return the callback path and query, not yet visited."""
    query = {"next": next_url} if next_url is not None else {}
    started = client.get("/auth/login", query_string=query)
    assert started.status_code == 302, started.status_code
    answer = pick_account(emulator, started.headers["Location"], object_id)
    assert answer.status_code == 302, answer.text[:300]
    callback = urlsplit(answer.headers["Location"])
    return f"{callback.path}?{callback.query}"


def sign_in(client: FlaskClient, emulator: Any, object_id: str, next_url: str | None = None) -> Any:
    """Drive the whole authorization-code flow and return the portal's callback response."""
    return client.get(prepare_callback(client, emulator, object_id, next_url))


@contextmanager
def count_statements(app: Flask) -> Iterator[list[str]]:
    """Collect every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


ADMIN_PASSWORD = "correct horse battery staple"
TENANT_ID = "00000000-0000-0000-0000-00000000000a"
TOKEN = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/login?local=1") -> str:
    """Return the CSRF token of the client's session, read from a page as a browser would."""
    match = TOKEN.search(client.get(page).text)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


def post(client: FlaskClient, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client), **(data or {})}, **kwargs)


def local_sign_in(client: FlaskClient, username: str, password: str = ADMIN_PASSWORD) -> Any:
    """Sign a Local account in through the /login form."""
    return post(client, "/login", {"username": username, "password": password})


def make_local(app: Flask, username: str, *, is_admin: bool) -> int:
    """Create a Local account and return its id."""
    with app.app_context():
        user = users.create_local(username, ADMIN_PASSWORD, is_admin=is_admin)
        db.session.commit()
        return user.id


@dataclass
class Admin:
    """A signed-in local admin: their id, username and test client."""

    id: int
    username: str
    client: FlaskClient


def add_external(app: Flask, count: int, **fields: Any) -> list[int]:
    """Insert External users straight into the database and return their ids."""
    with app.app_context():
        rows = []
        for i in range(count):
            object_id = str(uuid.uuid4())
            rows.append(
                User(
                    tenant_id=TENANT_ID,
                    object_id=object_id,
                    user_type="External",
                    display_name=fields.get("display_name", f"Person {i:04d}"),
                    email=fields.get("email", f"person{i:04d}.{object_id[:6]}@contoso.example"),
                    upn=f"person{i:04d}.{object_id[:6]}@contoso.example",
                    is_active=fields.get("is_active", True),
                )
            )
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


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


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def emulator_app(emulator: Any, database_url: str, tmp_path: Path, **env: str) -> Flask:
    """Build a portal pointed at the emulator, without make_app's cleanup (it needs the DB)."""
    return build_app({**base_env(emulator, database_url), **env}, tmp_path)


def closed_database_url() -> str:
    """Return a PostgreSQL URL whose port refuses connections."""
    return f"postgresql+psycopg://portal@127.0.0.1:{free_port()}/portal"


def count_rows(app: Flask, model: type[Base]) -> int:
    """Count a table's rows through the app's database."""
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def session_cookie(client: FlaskClient) -> str:
    """Return the value of the portal's session cookie."""
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    return cookie.value


def require_browser(chromium: str, env: Mapping[str, str]) -> None:
    """Skip the browser tests without Chromium, but fail them under CI=true: CI must run them."""
    if Path(chromium).exists():
        return
    if env.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but Chromium is not installed at {chromium}", pytrace=False)
    pytest.skip(f"Chromium is not installed at {chromium}")


class Clock:
    """A controllable clock for the portal's one time seam (`portal.models.base.clock`)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """Return the frozen time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward without sleeping."""
        self.now += timedelta(seconds=seconds)
