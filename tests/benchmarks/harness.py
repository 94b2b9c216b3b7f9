"""The world a benchmark runs in: the emulator, fresh databases, portals and the sign-in flow."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.config import load_config
from portal.extensions import db
from portal.models import Base, Group, GroupMembership, User

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "bench-output"
CLIENT_ID = "b3c1a2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
CLIENT_SECRET = "benchmark-client-secret"
TEST_CLIENT_BASE = "http://localhost"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Workspace:
    """The emulator (with its tenant and the benchmark's app registration) and a scratch dir."""

    emulator: Any
    tenant_id: str
    scratch: Path
    base_urls: list[str] = field(default_factory=lambda: [TEST_CLIENT_BASE])

    @classmethod
    @contextmanager
    def start(cls, scratch: Path | None = None) -> Iterator[Workspace]:
        """Start a private emulator for a benchmark run and stop it afterwards."""
        from portal.dev.emulator import Emulator

        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            root = scratch or Path(tmp)
            emu = Emulator(state_dir=root / "emulator")
            emu.start(port=0)
            try:
                yield cls.attach(emu, emu.add_tenant(name="Contoso Bench"), root)
            finally:
                emu.stop()

    @classmethod
    def attach(cls, emulator: Any, tenant_id: str, scratch: Path) -> Workspace:
        """Use a running emulator (the test suite's) and register the benchmark's client in it."""
        ws = cls(emulator, tenant_id, scratch)
        ws.allow_base_url(TEST_CLIENT_BASE)
        return ws

    def allow_base_url(self, base_url: str) -> None:
        """Register a portal base URL's redirect URI with the benchmark's client."""
        if base_url not in self.base_urls:
            self.base_urls.append(base_url)
        self.emulator.register_client(
            CLIENT_ID,
            CLIENT_SECRET,
            redirect_uris=[f"{u}/auth/callback" for u in self.base_urls],
            tenant_id=self.tenant_id,
        )

    def reset(self) -> None:
        """Disarm faults, latency and budgets and zero the counters."""
        self.emulator.reset_faults()
        self.emulator.reset_counters()

    def env(
        self, database_url: str, base_url: str = TEST_CLIENT_BASE, **extra: str
    ) -> dict[str, str]:
        """Return the environment of a production portal pointed at the emulator."""
        return {
            "PORTAL_ENV": "production",
            "SECRET_KEY": "benchmark-secret-key-of-32-characters",
            "PORTAL_BASE_URL": base_url,
            "DATABASE_URL": database_url,
            "ENTRA_TENANT_ID": self.tenant_id,
            "ENTRA_CLIENT_ID": CLIENT_ID,
            "ENTRA_CLIENT_SECRET": CLIENT_SECRET,
            "ENTRA_AUTHORITY_HOST": self.emulator.url,
            "GRAPH_ENDPOINT": self.emulator.url,
            "ENTRA_CA_BUNDLE": str(self.emulator.ca_path),
            "PORTAL_LOG_FORMAT": "text",
            **extra,
        }

    def build_app(self, database_url: str, **extra: str) -> Flask:
        """Build a portal from environment variables, as `make_app` in the tests does."""
        config = load_config(self.env(database_url, **extra), str(self.scratch / "instance"))
        app = create_app({**config, "TESTING": True})
        quiet_logs()
        return app


def quiet_logs() -> None:
    """Keep in-process portals' log lines (one audit line per joined group) off the tables."""
    for name in ("portal", "urllib3", "alembic", "msal"):
        logging.getLogger(name).setLevel(logging.ERROR)


# -- databases ---------------------------------------------------------------------------------


def postgres_admin_url() -> sa.URL:
    """Return the URL of the PostgreSQL server the benchmarks create databases on."""
    raw = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG
    return sa.make_url(raw).set(drivername="postgresql+psycopg")


def available_backends() -> list[str]:
    """Return the databases this machine offers: SQLite, and PostgreSQL when it answers."""
    engine = sa.create_engine(postgres_admin_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return ["sqlite", "postgresql"]
    except sa.exc.OperationalError:
        return ["sqlite"]
    finally:
        engine.dispose()


@contextmanager
def fresh_database(backend: str, scratch: Path) -> Iterator[str]:
    """Create an empty database migrated to head, yield its URL, and drop it afterwards."""
    name = f"portal_bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        path = scratch / f"{name}.db"
        migrate(f"sqlite:///{path}")
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url().set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate(url: str) -> None:
    """Run the Alembic migrations to head, as an operator's `flask db upgrade` would."""
    from flask_migrate import upgrade

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "x",
            "TESTING": True,
            "PORTAL_BASE_URL": TEST_CLIENT_BASE,
            "ENTRA_CONFIGURED": False,
        }
    )
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    quiet_logs()


def empty_tables(app: Flask) -> None:
    """Delete every row, so the next phase starts from an empty, migrated database."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


def dispose(app: Flask) -> None:
    """Close the app's database connections."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# -- the directory -------------------------------------------------------------------------------


def add_groups(ws: Workspace, count: int, prefix: str) -> list[str]:
    """Create `count` groups with unique names and return their object IDs."""
    return [ws.emulator.add_group(ws.tenant_id, f"{prefix} {i:05d}") for i in range(count)]


def add_user(ws: Workspace, label: str, group_ids: list[str]) -> str:
    """Create a user in these groups and return their object ID."""
    upn = f"{label}-{uuid.uuid4().hex[:8]}@bench.example"
    oid = ws.emulator.add_user(ws.tenant_id, f"Bench {label}", upn, email=upn)
    for gid in group_ids:
        ws.emulator.add_member(gid, oid)
    return oid


def expected_groups(ws: Workspace, object_id: str) -> set[str]:
    """Return the group names the emulator says the user should have, `All users` included."""
    names = {ws.emulator.group(g).display_name for g in ws.emulator.transitive_group_ids(object_id)}
    return names | {"All users"}


def stored_groups(object_id: str) -> set[str]:
    """Return the names of the groups the database holds for the user (app context needed)."""
    query = (
        sa.select(Group.name)
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .join(User, User.id == GroupMembership.user_id)
        .where(User.object_id == object_id)
    )
    return set(db.session.scalars(query))


def membership_problems(app: Flask, ws: Workspace, object_ids: list[str]) -> list[str]:
    """Compare each user's stored group names with the emulator's ground truth."""
    problems: list[str] = []
    with app.app_context():
        for oid in object_ids:
            have, want = stored_groups(oid), expected_groups(ws, oid)
            if have != want:
                problems.append(
                    f"user {oid[:8]}: {len(want - have)} missing, {len(have - want)} extra "
                    f"of {len(want)}"
                )
        db.session.remove()
    return problems


# -- the sign-in flow ------------------------------------------------------------------------


def idp_session(ws: Workspace) -> requests.Session:
    """Return a browser-like session that trusts the emulator's CA."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ws.emulator.ca_path)
    return session


@dataclass
class SignIn:
    """One sign-in through the test client: its outcome and how long each part took."""

    status: int
    location: str
    flow_seconds: float
    callback_seconds: float


def sign_in(client: FlaskClient, ws: Workspace, object_id: str, idp: requests.Session) -> SignIn:
    """Drive the authorization-code flow as tests/conftest.py `sign_in` does, timing each part."""
    start = time.perf_counter()
    started = client.get("/auth/login")
    if started.status_code != 302:
        raise RuntimeError(f"/auth/login answered {started.status_code}")
    answer = idp.post(
        started.headers["Location"], data={"account": object_id}, allow_redirects=False, timeout=30
    )
    if answer.status_code != 302:
        raise RuntimeError(f"the account picker answered {answer.status_code}")
    callback = urlsplit(answer.headers["Location"])
    mark = time.perf_counter()
    response = client.get(f"{callback.path}?{callback.query}")
    end = time.perf_counter()
    return SignIn(
        response.status_code, response.headers.get("Location", ""), end - start, end - mark
    )


def database_problems(ws: Workspace, database_url: str, object_ids: list[str]) -> list[str]:
    """Compare every listed user's stored group names with the ground truth, in one query."""
    engine = sa.create_engine(database_url)
    query = (
        sa.select(User.object_id, Group.name)
        .join(GroupMembership, GroupMembership.user_id == User.id)
        .join(Group, Group.id == GroupMembership.group_id)
    )
    stored: dict[str, set[str]] = {}
    try:
        with engine.connect() as conn:
            for oid, name in conn.execute(query):
                stored.setdefault(oid, set()).add(name)
    finally:
        engine.dispose()
    problems = []
    for oid in object_ids:
        have, want = stored.get(oid, set()), expected_groups(ws, oid)
        if have != want:
            problems.append(f"user {oid[:8]}: {len(want - have)} missing, {len(have - want)} extra")
    return problems
