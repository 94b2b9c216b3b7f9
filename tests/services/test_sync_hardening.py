"""The outside review's probes of group sync: withheld names, odd names, crafted filters."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import EntraGroup, Group, User
from portal.services import sync
from tests.conftest import prepare_callback, sign_in
from tests.services.test_sync import (
    _names,
    add_group,
    graph_calls,
    last_record,
    memberships,
    signed_in,
)


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    """The shared emulator, with faults and counters reset around each test."""
    emulator.reset_faults()
    emulator.reset_counters()
    yield emulator
    emulator.reset_faults()


def test_a_group_graph_returns_without_a_name_keeps_its_memberships(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(GROUP_NAME_TTL_SECONDS="0")
    oid = create_user()
    name = _names(1)[0]
    group_id = add_group(emu, oid, name)
    signed_in(sign_in(app.test_client(), emu, oid))

    for withheld in ("", "   ", "\x00"):
        emu.rename_group(group_id, withheld)
        signed_in(sign_in(app.test_client(), emu, oid))

        assert memberships(app, oid) == {name: "entra", "All users": "builtin"}
        assert last_record(app, oid).removed == []


def test_an_id_get_by_ids_leaves_out_is_never_cached_as_no_group(
    app: Flask, emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    real = add_group(emu, oid)
    bogus = str(uuid.uuid4())  # a deleted group or a directory role: getByIds leaves it out
    for _ in range(2):
        emu.reset_counters()
        emu.tamper_next_id_token(claims={"groups": [real, bogus]})
        signed_in(sign_in(app.test_client(), emu, oid))
        assert set(memberships(app, oid)) == {emu.group(real).display_name, "All users"}
    assert graph_calls(emu) >= 1  # the second sign-in asked about the unknown ID again
    with app.app_context():
        cached = db.session.scalars(sa.select(EntraGroup.object_id))
        assert bogus not in set(cached)


def test_long_and_nul_group_names_from_graph_are_clipped_on_every_database(
    app: Flask, emu: Any, create_user: Callable[..., str]
) -> None:
    people = [create_user(), create_user()]
    name = "Fin\x00ance " + uuid.uuid4().hex + "y" * 300
    group_id = emu.add_group(None, name)
    emu.add_members(group_id, people)

    for oid in people:
        signed_in(sign_in(app.test_client(), emu, oid))

    clean = name.replace("\x00", "")[:256]
    for oid in people:
        assert memberships(app, oid) == {clean: "entra", "All users": "builtin"}
    with app.app_context():
        cached = db.session.scalar(
            sa.select(EntraGroup.display_name).where(EntraGroup.object_id == group_id)
        )
        assert cached == clean


def test_a_backtracking_filter_cannot_hold_a_sign_in(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    # With Python's re, `(a+)+$` on this name backtracks for hours; RE2 answers at once.
    app = make_app(GROUP_SYNC_FILTER="(a+)+$")
    oid = create_user()
    add_group(emu, oid, "a" * 60 + "!")
    kept = add_group(emu, oid, "Team " + uuid.uuid4().hex[:4] + " aaa")

    signed_in(sign_in(app.test_client(), emu, oid))

    assert memberships(app, oid) == {emu.group(kept).display_name: "entra", "All users": "builtin"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 2


def test_groups_claim_empty_list_means_in_no_group_and_leaves_synced_groups(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    admins = str(uuid.uuid4())
    app = make_app(PORTAL_ADMIN_GROUP_IDS=admins)
    oid = create_user()
    name = _names(1)[0]
    group_id = add_group(emu, oid, name)
    emu.tamper_next_id_token(claims={"groups": [group_id, admins]})
    signed_in(sign_in(app.test_client(), emu, oid))

    emu.tamper_next_id_token(claims={"groups": []})
    signed_in(sign_in(app.test_client(), emu, oid))

    # `groups: []` is an answer ("in no group"), unlike a token without the claim.
    assert memberships(app, oid) == {"All users": "builtin"}
    record = last_record(app, oid)
    assert (record.status, record.source, record.removed) == ("ok", "claim", [name])
    with app.app_context():
        assert db.session.scalar(sa.select(User.is_admin).where(User.object_id == oid)) is False


def test_two_overlapping_sign_ins_of_one_person_leave_one_token_s_groups_whole(
    make_app: Callable[..., Flask],
    emu: Any,
    create_user: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admins = str(uuid.uuid4())
    app = make_app(PORTAL_ADMIN_GROUP_IDS=admins)
    oid = create_user()
    old, first, second = (add_group(emu, oid, name) for name in _names(3))
    emu.tamper_next_id_token(claims={"groups": [old]})
    signed_in(sign_in(app.test_client(), emu, oid))
    tokens = iter([[first, admins], [second]])
    both_resolved = threading.Barrier(2, timeout=30)
    real = sync.resolve_groups

    def resolve_then_wait(claims: Any, access_token: Any, snapshot: Any = None) -> Any:
        # Each sign-in carries its own token's groups; both have read the user before either
        # writes, which is the overlap the review found.
        resolution = real({**claims, "groups": next(tokens)}, access_token, snapshot)
        both_resolved.wait()
        return resolution

    monkeypatch.setattr(sync, "resolve_groups", resolve_then_wait)
    clients = [app.test_client(), app.test_client()]
    callbacks = [prepare_callback(c, emu, oid) for c in clients]

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda c, url: c.get(url), clients, callbacks))

    for answer in answers:
        signed_in(answer)
    names = {emu.group(i).display_name: i for i in (old, first, second)}
    entra = {names[n] for n, source in memberships(app, oid).items() if source == "entra"}
    with app.app_context():
        admin = db.session.scalar(sa.select(User.is_admin).where(User.object_id == oid))
    assert (entra, admin) in [({first}, True), ({second}, False)]
