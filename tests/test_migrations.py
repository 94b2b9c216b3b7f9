"""Every migration upgrades and downgrades, head matches the models, and data survives."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask_migrate import downgrade, upgrade

from portal import create_app
from portal.extensions import db
from portal.models import (
    AuditEvent,
    EntraGroup,
    Group,
    GroupMembership,
    LoginFailure,
    SyncRecord,
    User,
)

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = str(ROOT / "migrations")
SEEDED = (AuditEvent, EntraGroup, Group, GroupMembership, LoginFailure, SyncRecord, User)
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a database with no tables at all, SQLite or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url = sa.make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    name = f"portal_migrations_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def app(empty_database_url: str) -> Iterator[Flask]:
    """A portal on the empty database, with an app context pushed for Alembic."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": empty_database_url,
            "SECRET_KEY": "x",
            "TESTING": True,
            "PORTAL_BASE_URL": "http://localhost",
            "ENTRA_CONFIGURED": False,
        }
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def revisions() -> list[str]:
    """Return every revision from the first to head, in upgrade order."""
    script = ScriptDirectory(MIGRATIONS)
    assert len(script.get_heads()) == 1, "migrations have several heads: merge them"
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def migration_config() -> Config:
    """Return the Alembic configuration Flask-Migrate builds for `flask db`."""
    return current_app.extensions["migrate"].migrate.get_config(MIGRATIONS)


def tables() -> set[str]:
    """Return the names of the tables in the database, without Alembic's own.

    The users search's FTS5 table (SQLite) and its shadow tables are left out: migration-only,
    not in the models, and rebuilt from users (their row counts depend on how they were filled).
    """
    names = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
    return {n for n in names if not n.startswith("users_search")}


def current_revision() -> str | None:
    """Return the revision the database is at."""
    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def assert_schema_matches_models() -> None:
    """Fail if autogenerate would write a migration: what `flask db check` checks."""
    db.engine.dispose()  # forget reflection caches of connections opened before the migration
    command.check(migration_config())


def seed() -> dict[str, object]:
    """Write one row in every table and return how many rows each holds."""
    user = User(tenant_id=str(uuid.uuid4()), object_id=str(uuid.uuid4()), user_type="External")
    user.display_name, user.email = "Ada Lovelace", "ada@contoso.example"
    user.last_login_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    link = EntraGroup(object_id=str(uuid.uuid4()), tenant_id=user.tenant_id, display_name="Eng")
    group = Group(name="Eng", source="entra", entra_group=link)
    db.session.add_all([user, group, GroupMembership(group=group, user=user, source="entra")])
    db.session.flush()
    db.session.add(SyncRecord(user_id=user.id, status="ok", added=["Eng"], graph_calls=1))
    db.session.add(AuditEvent(actor="cli:test", action="user.disable", target="x", details={}))
    db.session.add(LoginFailure(username="root", remote_addr="192.0.2.1"))
    db.session.commit()
    return snapshot()


def snapshot() -> dict[str, object]:
    """Count the rows of every table, and read back values that must survive."""
    count = sa.select(sa.func.count())
    counts: dict[str, object] = {
        t: db.session.scalar(count.select_from(sa.table(t))) for t in tables()
    }
    ada = db.session.scalars(sa.select(User)).one()
    counts["ada"] = (ada.email, ada.last_login_at)
    db.session.remove()
    return counts


def test_every_migration_upgrades_and_downgrades_one_step_at_a_time(app: Flask) -> None:
    steps = revisions()

    for revision in steps:
        upgrade(directory=MIGRATIONS, revision=revision)
        assert current_revision() == revision
    assert_schema_matches_models()
    for previous in reversed(steps[:-1]):
        downgrade(directory=MIGRATIONS, revision=previous)
        assert current_revision() == previous
    downgrade(directory=MIGRATIONS, revision="base")

    assert tables() == set()


def test_round_trip_through_base_restores_the_schema_the_models_declare(app: Flask) -> None:
    upgrade(directory=MIGRATIONS)
    seed()

    downgrade(directory=MIGRATIONS, revision="base")
    assert tables() == set()
    upgrade(directory=MIGRATIONS)

    assert tables() == {table.name for table in db.metadata.sorted_tables}
    assert_schema_matches_models()


def test_data_survives_downgrading_to_the_first_revision_and_back(app: Flask) -> None:
    first = revisions()[0]
    upgrade(directory=MIGRATIONS)
    before = seed()

    downgrade(directory=MIGRATIONS, revision=first)
    upgrade(directory=MIGRATIONS)

    assert snapshot() == before
    seeded = [model.__tablename__ for model in SEEDED]
    assert all(before[table] for table in seeded)


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="pg_trgm is PostgreSQL's")
def test_upgrade_without_the_right_to_create_pg_trgm_says_what_to_do(
    capfd: pytest.CaptureFixture[str],
) -> None:
    admin_url = sa.make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    tag = uuid.uuid4().hex[:8]
    name, role = f"portal_notrgm_{tag}", f"portal_notrgm_{tag}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    in_db = sa.create_engine(admin_url.set(database=name), isolation_level="AUTOCOMMIT")
    with in_db.connect() as conn:  # tables yes, extensions no (no CREATE on the database)
        conn.execute(sa.text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'))
        conn.execute(sa.text("DROP EXTENSION IF EXISTS pg_trgm"))
    in_db.dispose()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": admin_url.set(database=name, username=role, password=None),
            "SECRET_KEY": "x",
            "TESTING": True,
            "PORTAL_BASE_URL": "http://localhost",
            "ENTRA_CONFIGURED": False,
        }
    )
    try:
        with app.app_context(), pytest.raises(SystemExit):
            upgrade(directory=MIGRATIONS)
        with app.app_context():
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
    logged = capfd.readouterr().err  # Flask-Migrate logs the error, then exits
    assert "CREATE EXTENSION pg_trgm" in logged
    assert "permission denied" in logged
