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
from portal.services import audit, operations, sync
from portal.services import groups as group_service
from tests.helpers import prepare_callback, sign_in
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


def local_group(app: Flask, name: str) -> int:
    """Create a local group and return its id."""
    with app.app_context():
        group_id = group_service.create_local(name).id
        db.session.commit()
        return group_id


def linked_object_id(app: Flask, group_id: int) -> str | None:
    """Return the Entra object ID a local group is linked to, if any."""
    with app.app_context():
        return db.session.get(Group, group_id).object_id  # type: ignore[union-attr]


def test_match_mode_drops_a_name_link_once_a_second_entra_group_has_that_name(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(GROUP_SYNC_MODE="match")
    name = _names(1)[0]
    local_id = local_group(app, name)
    squatter, member = create_user("Squatter"), create_user("Real Member")
    own = add_group(emu, squatter, name)  # a group the squatter made, named like the real one
    signed_in(sign_in(app.test_client(), emu, squatter))
    assert linked_object_id(app, local_id) == own  # the only one known: linked

    real = add_group(emu, member, name)
    signed_in(sign_in(app.test_client(), emu, member))
    signed_in(sign_in(app.test_client(), emu, squatter))

    assert linked_object_id(app, local_id) is None
    assert memberships(app, member) == {"All users": "builtin"}
    assert memberships(app, squatter) == {"All users": "builtin"}
    assert real != own


def test_match_mode_links_nothing_while_two_entra_groups_share_the_name(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(GROUP_SYNC_MODE="match")
    name = _names(1)[0]
    local_id = local_group(app, name)
    first, second = create_user(), create_user()
    add_group(emu, first, name)
    add_group(emu, second, name)

    for oid in (first, second, first):
        signed_in(sign_in(app.test_client(), emu, oid))

    assert linked_object_id(app, local_id) is None
    assert memberships(app, first) == {"All users": "builtin"}


def test_match_mode_never_links_across_tenants_by_name(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    other = "7d0c3a5e-6b1f-4d2a-9e8c-1f2a3b4c5d6e"
    if emu.directory.find_tenant(other) is None:
        emu.add_tenant(other, name="Fabrikam")
    app = make_app(
        GROUP_SYNC_MODE="match",
        ENTRA_TENANT_ID="organizations",
        ENTRA_ALLOWED_TENANTS=f"{emu.tenant_id},{other}",
    )
    name = _names(1)[0]
    local_id = local_group(app, name)
    home, outsider = create_user(), create_user(tenant_id=other)
    add_group(emu, home, name)
    foreign = emu.add_group(other, name)
    emu.add_member(foreign, outsider)

    signed_in(sign_in(app.test_client(), emu, home))
    signed_in(sign_in(app.test_client(), emu, outsider))
    signed_in(sign_in(app.test_client(), emu, home))

    # One group of that name in each tenant: the name says nothing about which one is meant.
    assert linked_object_id(app, local_id) is None
    assert memberships(app, outsider) == {"All users": "builtin"}
    assert memberships(app, home) == {"All users": "builtin"}


def test_a_pinned_link_holds_whatever_names_entra_shows(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(GROUP_SYNC_MODE="match")
    name = _names(1)[0]
    local_id = local_group(app, name)
    squatter, member = create_user(), create_user()
    add_group(emu, squatter, name)
    real = add_group(emu, member, name)
    for oid in (squatter, member):
        signed_in(sign_in(app.test_client(), emu, oid))
    with app.app_context():
        group = db.session.get(Group, local_id)
        assert group is not None
        operations.pin_group_link(audit.CLI, group, real.upper(), [emu.tenant_id])
        db.session.commit()

    for oid in (member, squatter):
        signed_in(sign_in(app.test_client(), emu, oid))

    assert linked_object_id(app, local_id) == real
    assert memberships(app, member) == {name: "entra", "All users": "builtin"}
    assert memberships(app, squatter) == {"All users": "builtin"}
