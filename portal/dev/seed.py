"""A development-only bulk seeder: many users, groups, memberships and sync records, fast.

Rows go in with bulk inserts (PostgreSQL: COPY; SQLite: executemany in large batches) and
explicit ids, so 100,000 users, 10,000 groups and 1,000,000 memberships take seconds rather
than the hours one ORM object per row would. Data is deterministic for a given `seed`, and
is added after whatever the database already holds.
"""

from __future__ import annotations

import functools
import json
import random
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, SyncRecord, User
from portal.models.base import utcnow
from portal.services import groups

TENANT_ID = "5eed0000-0000-4000-8000-000000000001"
BATCH = 50_000
FIRST = "Ada Alan Amir Anna Ben Carla Chen Dana Elif Emma Farah Felix Grace Hana Ivan Jonas Kai Lara Leo Lina Maya Mei Nora Omar Paula Rahul Rosa Sam Sofia Tariq Uma Vera Wei Yara Zoe".split()  # noqa: E501
LAST = "Abe Baker Costa Dubois Ekström Fischer García Haddad Ito Jansen Kowalski Larsen Müller Nakamura Okafor Patel Quinn Rossi Silva Tanaka Umar Varga Wagner Xu Yilmaz Zhang".split()  # noqa: E501
TEAMS = "Finance Sales Engineering Support Legal Marketing Research Operations HR Design Security Data".split()  # noqa: E501
KINDS = "Team Project Readers Editors Owners Alumni Guests Leads".split()
SYNC_STATUSES = ("unchanged",) * 6 + ("ok",) * 2 + ("skipped", "failed")
FAILURES = (
    "Graph answered 503 Service Unavailable twice",
    "Graph throttled (429) past the 10 s budget",
    "Graph timed out after 10 s",
    "Graph answered a malformed page (no value)",
)


def seed(
    n_users: int, n_groups: int, n_memberships: int, seed: int = 1, *, n_sync: int | None = None
) -> dict[str, int]:
    """Add users, groups (and `All users`), memberships and sync records; return the counts.

    `n_memberships` counts every membership row, the `All users` ones included. `n_sync`
    defaults to one sync record for every second user. Commits once at the end.
    """
    rng = random.Random(seed)  # noqa: S311 - test data, no secrecy involved
    now = utcnow()
    all_users = groups.all_users_group().id
    ids = _next_ids()
    user_rows = list(_users(rng, n_users, ids["users"], now))
    entra_rows, group_rows = _groups(rng, n_groups, ids["groups"], ids["entra_groups"], now)
    member_rows = list(
        _memberships(rng, user_rows, group_rows, all_users, n_memberships, ids["memberships"], now)
    )
    n_sync = n_users // 2 if n_sync is None else n_sync
    sync_rows = list(_sync_records(rng, user_rows, group_rows, n_sync, ids["sync"], now))
    for model, rows in (
        (User, user_rows),
        (EntraGroup, entra_rows),
        (Group, group_rows),
        (GroupMembership, member_rows),
        (SyncRecord, sync_rows),
    ):
        _bulk_insert(model.__table__, rows)
    _advance_sequences()
    db.session.commit()
    return {
        "users": len(user_rows),
        "groups": len(group_rows),
        "memberships": len(member_rows),
        "sync_records": len(sync_rows),
    }


def _next_ids() -> dict[str, int]:
    """Return the first free id of every table the seeder fills."""
    tables = {
        "users": User.id,
        "groups": Group.id,
        "entra_groups": EntraGroup.id,
        "memberships": GroupMembership.id,
        "sync": SyncRecord.id,
    }
    return {
        name: (db.session.scalar(sa.select(sa.func.max(column))) or 0) + 1
        for name, column in tables.items()
    }


def _guid(rng: random.Random) -> str:
    """Return a random version-4 GUID string drawn from `rng`, so runs repeat."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _users(
    rng: random.Random, count: int, first_id: int, now: datetime
) -> Iterator[dict[str, Any]]:
    """Yield user rows: mostly External, one in fifty Local, a few disabled or never signed in."""
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = n % 50 == 49
        handle = f"{first}.{last}.{first_id + n}".lower()
        created = now - timedelta(days=rng.uniform(1, 730))
        yield {
            "id": first_id + n,
            "tenant_id": None if local else TENANT_ID,
            "object_id": None if local else _guid(rng),
            "username": handle if local else None,
            "user_type": "Local" if local else "External",
            "email": None if local and n % 100 == 99 else f"{handle}@contoso.example",
            "display_name": f"{first} {last}",
            "upn": None if local else f"{handle}@contoso.example",
            "password_hash": None,
            "is_active": rng.random() > 0.02,
            "is_admin": n % 5000 == 0,
            "is_entra_disabled": False,
            "created_at": created,
            "last_login_at": None
            if rng.random() < 0.1
            else created + (now - created) * rng.random(),
            "app_roles": [],
        }


def _groups(
    rng: random.Random, count: int, first_id: int, first_entra_id: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return Entra group rows and group rows: nine in ten groups are linked to Entra."""
    entra_rows: list[dict[str, Any]] = []
    group_rows: list[dict[str, Any]] = []
    for n in range(count):
        name = f"{rng.choice(TEAMS)} {rng.choice(KINDS)} {first_id + n}"
        linked = n % 10 != 9
        entra_id = first_entra_id + len(entra_rows) if linked else None
        if linked:
            entra_rows.append(
                {
                    "id": entra_id,
                    "object_id": _guid(rng),
                    "tenant_id": TENANT_ID,
                    "display_name": name,
                    "read_at": now,
                }
            )
        group_rows.append(
            {
                "id": first_id + n,
                "name": name,
                "source": "entra" if linked else "local",
                "description": "",
                "entra_group_id": entra_id,
                "is_link_pinned": False,
                "created_at": now - timedelta(days=rng.uniform(1, 730)),
            }
        )
    return entra_rows, group_rows


def _memberships(
    rng: random.Random,
    users: Sequence[dict[str, Any]],
    groups: Sequence[dict[str, Any]],
    all_users: int,
    count: int,
    first_id: int,
    now: datetime,
) -> Iterator[dict[str, Any]]:
    """Yield `All users` for active External users, then skewed random memberships up to `count`.

    Group sizes follow a power law (a few groups hold thousands, most a handful), as in a
    real directory; a set of seen pairs keeps (group, user) unique.
    """
    rows = 0
    for user in users:
        if rows >= count:
            return
        if user["is_active"] and user["user_type"] == "External":
            yield _membership(first_id + rows, all_users, user["id"], "builtin", now)
            rows += 1
    if not users or not groups:
        return
    seen: set[tuple[int, int]] = set()
    wanted = min(count - rows, len(users) * len(groups))
    while len(seen) < wanted:
        group = int(len(groups) * rng.random() ** 3)
        seen.add((group, rng.randrange(len(users))))
    # In (group, user) order the unique index grows at its end instead of at random pages.
    for group_index, user_index in sorted(seen):
        group, user = groups[group_index], users[user_index]
        source = "manual" if group["source"] == "local" or rng.random() < 0.05 else "entra"
        yield _membership(first_id + rows, group["id"], user["id"], source, now)
        rows += 1


def _membership(
    row_id: int, group_id: int, user_id: int, source: str, now: datetime
) -> dict[str, Any]:
    """Return one membership row."""
    return {
        "id": row_id,
        "group_id": group_id,
        "user_id": user_id,
        "source": source,
        "created_at": now,
    }


def _sync_records(
    rng: random.Random,
    users: Sequence[dict[str, Any]],
    groups: Sequence[dict[str, Any]],
    count: int,
    first_id: int,
    now: datetime,
) -> Iterator[dict[str, Any]]:
    """Yield sync records of External users over the last 30 days, oldest first."""
    external = [u for u in users if u["user_type"] == "External"]
    if not external or not groups:
        return
    times = sorted(now - timedelta(days=rng.uniform(0, 30)) for _ in range(count))
    for n, at in enumerate(times):
        user = rng.choice(external)
        status = rng.choice(SYNC_STATUSES)
        changed = status == "ok"
        yield {
            "id": first_id + n,
            "user_id": user["id"],
            "tenant_id": user["tenant_id"],
            "object_id": user["object_id"],
            "synced_at": at,
            "status": status,
            "source": None if status == "skipped" else "claim",
            "added": sorted(rng.choice(groups)["name"] for _ in range(rng.randint(1, 3)))
            if changed
            else [],
            "removed": [rng.choice(groups)["name"]] if changed and rng.random() < 0.3 else [],
            "reason": rng.choice(FAILURES) if status == "failed" else None,
            "graph_calls": rng.randint(1, 3) if status in {"ok", "failed"} else 0,
            "duration_ms": rng.randint(20, 900),
        }


def _bulk_insert(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows in bulk: COPY on PostgreSQL, batched executemany elsewhere."""
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        _copy(connection, table, rows)
        return
    # The DB-API's executemany on plain tuples, with each column's own bind conversion applied
    # once per value: several times faster than going through the ORM or Core per row.
    columns = [column.name for column in table.columns]
    convert = [_converter(column, connection.dialect) for column in table.columns]
    marks = ", ".join("?" * len(columns))
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    # Random-order index inserts thrash SQLite's default 2 MB page cache; give it 256 MB here.
    cursor.execute("PRAGMA cache_size = -262144")
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        cursor.executemany(
            statement, [[f(row[c]) for f, c in zip(convert, columns, strict=True)] for row in batch]
        )


def _converter(column: sa.Column[Any], dialect: sa.Dialect) -> Any:
    """Return the function that turns a Python value into what the driver stores for `column`."""
    processor = column.type.bind_processor(dialect)
    if processor is None:
        return _same
    if isinstance(column.type, sa.JSON):
        return processor
    # Many rows share a timestamp or flag; converting each distinct value once saves seconds.
    return functools.lru_cache(maxsize=4096)(processor)


def _same(value: Any) -> Any:
    """Return the value unchanged."""
    return value


def _copy(connection: sa.Connection, table: sa.Table, rows: Iterable[dict[str, Any]]) -> None:
    """Stream rows into a PostgreSQL table with COPY, the fastest way in."""
    columns = [column.name for column in table.columns]
    json_columns = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c in json_columns else row[c] for c in columns])


def _advance_sequences() -> None:
    """Move PostgreSQL id sequences past the explicit ids the seeder used."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return
    for table in ("users", "groups", "entra_groups", "group_memberships", "sync_records"):
        connection.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        )
        # Fresh statistics, or the planner guesses row counts until autovacuum comes by.
        connection.execute(sa.text(f"ANALYZE {table}"))


@click.command("seed")
@click.option("--users", "n_users", default=100_000, show_default=True, help="Users to add.")
@click.option("--groups", "n_groups", default=10_000, show_default=True, help="Groups to add.")
@click.option(
    "--memberships",
    "n_memberships",
    default=1_000_000,
    show_default=True,
    help="Membership rows to add, `All users` included.",
)
@click.option("--seed", "seed_value", default=1, show_default=True, help="Random seed.")
@with_appcontext
def seed_command(n_users: int, n_groups: int, n_memberships: int, seed_value: int) -> None:
    """Fill a development database with sample users, groups, memberships and sync records."""
    if current_app.config.get("PORTAL_ENV") == "production":
        click.echo("dev seed: refusing to seed with PORTAL_ENV=production", err=True)
        sys.exit(1)
    started = time.perf_counter()
    counts = seed(n_users, n_groups, n_memberships, seed_value)
    elapsed = time.perf_counter() - started
    summary = ", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in counts.items())
    click.echo(f"seeded {summary} in {elapsed:.1f} s")
