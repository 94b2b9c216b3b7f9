"""The users search finds exactly what the plain substring match finds, through its indexes."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import User
from portal.services.user_search import matching_users

PEOPLE = [
    ("Ada Lovelace", "ada@contoso.example", "ada@contoso.example", None),
    ("ADA LOVELACE II", "Ada.L@Contoso.Example", None, None),
    ("Grace Hopper", None, "grace@fabrikam.example", None),
    ("Zoë Ängström", "zoe@contoso.example", None, None),
    ("100% Sure_Thing", "percent@contoso.example", None, None),
    ('Quote "Me" O\'Brien', None, None, "obrien"),
    ("", None, None, "local-admin"),
    ("Édith Piaf", "edith@contoso.example", None, None),
]
TEXTS = [
    "ada", "ADA", "lovelace ii", "contoso", "CONTOSO.EXAMPLE", "fabrikam", "ab", "a", "zoë", "ZOË",
    "ängström", "100%", "%", "_", "e_t", "sure_", '"me"', "o'brien", "local-", "nobody", "édith",
    "ÉDITH", "piaf", "@", ".example", "ada@contoso.example",
]  # fmt: skip


def substring_match(text: str) -> sa.ColumnElement[bool]:
    """The search as it was before the indexes: case-insensitive LIKE on each column."""
    columns = (User.display_name, User.email, User.upn, User.username)
    return sa.or_(*(column.icontains(text, autoescape=True) for column in columns))


def found(condition: sa.ColumnElement[bool]) -> set[str]:
    """Return the display names (or usernames) of the users matching a condition."""
    query = sa.select(User.display_name, User.username).where(condition)
    return {name or username for name, username in db.session.execute(query)}


def add_people(tag: str) -> list[User]:
    """Add the sample people, their unique fields tagged so tests do not collide."""
    people = [
        User(
            tenant_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            user_type="External" if username is None else "Local",
            display_name=name,
            email=email,
            upn=upn,
            username=f"{username}-{tag}" if username else None,
        )
        for name, email, upn, username in PEOPLE
    ]
    db.session.add_all(people)
    db.session.commit()
    return people


@pytest.fixture
def people(app: Flask) -> list[User]:
    """The sample people in a fresh database, inside an app context."""
    with app.app_context():
        yield add_people(uuid.uuid4().hex[:6])


@pytest.mark.parametrize("text", TEXTS)
def test_search_finds_exactly_the_substring_matches(people: list[User], text: str) -> None:
    assert found(matching_users(text)) == found(substring_match(text))


def test_search_matches_a_whole_object_id(people: list[User]) -> None:
    target = people[2]

    assert found(matching_users(str(target.object_id).upper())) == {"Grace Hopper"}


def test_search_follows_every_write_to_users(people: list[User]) -> None:
    grace, ada = people[2], people[0]
    grace.email = "admiral@navy.example"
    db.session.delete(ada)
    db.session.commit()
    db.session.execute(
        sa.update(User).where(User.id == people[3].id).values(display_name="Zoe Renamed")
    )
    db.session.commit()

    assert found(matching_users("admiral@navy")) == {"Grace Hopper"}
    assert "Ada Lovelace" not in found(matching_users("lovelace"))
    assert found(matching_users("renamed")) == {"Zoe Renamed"}
    assert found(matching_users("Ängström")) == set()
    for text in TEXTS:
        assert found(matching_users(text)) == found(substring_match(text)), text


def test_search_uses_the_trigram_index(people: list[User]) -> None:
    query = sa.select(User.id).where(matching_users("contoso.example"))
    dialect = db.session.get_bind().dialect.name
    compiled = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if dialect == "sqlite":
        plan = " ".join(
            str(r[-1]) for r in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
        assert "users_search VIRTUAL TABLE" in plan
    else:  # a handful of rows: only with sequential scans priced out does the index show
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in db.session.execute(sa.text(f"EXPLAIN {compiled}")))
        assert "_trgm" in plan
