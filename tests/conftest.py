"""Shared fixtures: a fresh database per run (SQLite, and PostgreSQL when TEST_DATABASE_URL is
set), the bundled Entra + Graph emulator over real TLS, and an app factory built from env vars."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import Base
from tests.helpers import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Clock, base_env, build_app

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"

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


@pytest.fixture(autouse=True)
def _disarm_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Reset the shared emulator's faults after each test that used it, failed or not."""
    yield
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset_faults()


@pytest.fixture
def make_app(emulator: Any, database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build portals from environment variables (overrides on top of `base_env`)."""
    apps: list[Flask] = []

    def build(**env: str) -> Flask:
        app = build_app({**base_env(emulator, database_url), **env}, tmp_path)
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


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the portal's time at now; tests move it with `clock.advance(seconds)`."""
    from portal.models import base

    frozen = Clock(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(base, "clock", frozen)
    return frozen
