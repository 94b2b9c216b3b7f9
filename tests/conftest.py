"""Shared fixtures: a fresh database per run (SQLite, and PostgreSQL when TEST_DATABASE_URL is
set), the bundled Entra + Graph emulator over real TLS, and an app factory built from env vars."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.config import load_config
from portal.extensions import db
from portal.models import Base

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "emulator-test-secret"
REDIRECT_URI = "http://localhost/auth/callback"

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def _postgres_database(name: str) -> Iterator[str]:
    """Create a fresh PostgreSQL database for this run and drop it afterwards."""
    admin_url = sa.make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Yield the URL of an empty database migrated to head, one per backend and run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.db'}"
        _migrate(url)
        yield url
        return
    name = f"portal_test_{worker}_{uuid.uuid4().hex[:8]}"
    for url in _postgres_database(name):
        _migrate(url)
        yield url


def _migrate(url: str) -> None:
    """Run the Alembic migrations to head, as an operator's `flask db upgrade` would."""
    from flask_migrate import upgrade

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "x",
            "TESTING": True,
            "PORTAL_BASE_URL": "http://localhost",
            "ENTRA_CONFIGURED": False,
        }
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Run the bundled Entra ID + Graph emulator over HTTPS for the whole run."""
    from portal.dev.emulator import Emulator

    emu = Emulator(state_dir=tmp_path_factory.mktemp("emulator"))
    emu.start(port=0)
    emu.tenant_id = emu.add_tenant(name="Contoso")
    emu.register_client(
        CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI], tenant_id=emu.tenant_id
    )
    yield emu
    emu.stop()


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


@pytest.fixture
def make_app(emulator: Any, database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build portals from environment variables (overrides on top of `base_env`)."""
    apps: list[Flask] = []

    def build(**env: str) -> Flask:
        values = {**base_env(emulator, database_url), **env}
        config = load_config({k: v for k, v in values.items() if v is not None}, str(tmp_path))
        app = create_app({**config, "TESTING": True})
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            _empty_tables()
            db.engine.dispose()


def _empty_tables() -> None:
    """Delete every row so the next test starts from an empty, migrated database."""
    db.session.remove()
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """A portal with the default configuration, pointed at the emulator."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the default portal."""
    return app.test_client()


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


@pytest.fixture
def create_user(emulator: Any) -> Callable[..., str]:
    """Add a user to the emulator's tenant and return their object ID."""

    def create(display_name: str = "Test User", email: str | None = None, **kwargs: Any) -> str:
        upn = kwargs.pop("upn", f"user-{uuid.uuid4().hex[:10]}@contoso.example")
        return emulator.add_user(
            kwargs.pop("tenant_id", emulator.tenant_id),
            display_name,
            upn,
            email=email if email is not None else upn,
            **kwargs,
        )

    return create


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


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the portal's time at now; tests move it with `clock.advance(seconds)`."""
    from portal.models import base

    frozen = Clock(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(base, "clock", frozen)
    return frozen
