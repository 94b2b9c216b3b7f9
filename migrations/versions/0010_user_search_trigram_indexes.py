"""trigram indexes for the users search

Revision ID: 0010usersearch
Revises: 0009sessions
Create Date: 2026-12-06 03:00:00.000000

The admin users search matches a piece of the name, email, UPN or username. On PostgreSQL
GIN trigram indexes (pg_trgm) serve the `ILIKE` the search runs there, unchanged;
on SQLite an FTS5 table with the trigram tokenizer, kept in step by triggers that fire in the
same statement as every write to users, narrows the rows the unchanged condition checks.
Neither is in the models: `flask db check` skips them (migrations/env.py).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010usersearch"
down_revision = "0009sessions"
branch_labels = None
depends_on = None

COLUMNS = ("display_name", "email", "upn", "username")
FTS = "users_search"
NO_TRGM = (
    "The users search needs the PostgreSQL extension pg_trgm, which this database user may not "
    "create ({detail}). Ask a database superuser to run `CREATE EXTENSION pg_trgm;` in this "
    "database (it ships with PostgreSQL's contrib package), then run `flask db upgrade` again."
)
NO_FTS5 = (
    "The users search needs SQLite's FTS5 with the trigram tokenizer (SQLite 3.34 or newer); "
    "this SQLite ({version}) lacks it ({detail}). Use a Python built with a newer SQLite."
)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        _create_pg_trgm()
        for column in COLUMNS:
            op.execute(
                f"CREATE INDEX ix_users_{column}_trgm ON users USING gin ({column} gin_trgm_ops)"
            )
    else:
        _create_fts5()


def _create_pg_trgm():
    bind = op.get_bind()
    present = bind.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    if present:
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0]
        raise RuntimeError(NO_TRGM.format(detail=detail)) from None


def _create_fts5():
    columns = ", ".join(COLUMNS)
    try:
        op.execute(f"CREATE VIRTUAL TABLE {FTS} USING fts5({columns}, tokenize='trigram')")
    except sa.exc.OperationalError as exc:
        version = op.get_bind().scalar(sa.text("SELECT sqlite_version()"))
        raise RuntimeError(NO_FTS5.format(version=version, detail=exc.orig)) from None
    new = ", ".join(f"new.{c}" for c in COLUMNS)
    op.execute(f"INSERT INTO {FTS} (rowid, {columns}) SELECT id, {columns} FROM users")  # noqa: S608 - constants of this file, no input
    op.execute(
        f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON users BEGIN "  # noqa: S608 - constants of this file, no input
        f"INSERT INTO {FTS} (rowid, {columns}) VALUES (new.id, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF {columns} ON users BEGIN "  # noqa: S608 - constants of this file, no input
        f"DELETE FROM {FTS} WHERE rowid = old.id; "
        f"INSERT INTO {FTS} (rowid, {columns}) VALUES (new.id, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON users BEGIN "  # noqa: S608 - constants of this file, no input
        f"DELETE FROM {FTS} WHERE rowid = old.id; END"
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for column in COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_users_{column}_trgm")
    else:
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
