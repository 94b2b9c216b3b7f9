"""Group sync through the real sign-in flow: the portal, MSAL and Graph against the emulator."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, SyncRecord, User
from portal.services import graph, sync, users
from portal.services import groups as group_service
from tests.helpers import CLIENT_ID, count_statements, prepare_callback, sign_in

GRAPH_ENDPOINTS = (
    "graph.me",
    "graph.user",
    "graph.memberOf",
    "graph.transitiveMemberOf",
    "graph.getMemberGroups",
    "graph.getMemberObjects",
    "graph.getByIds",
    "graph.group",
    "graph.groups",
    "graph.batch",
)
SYNC_TABLES = ("group_memberships", "entra_groups", "groups")


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    """The shared emulator, with counters and consent reset around each test."""
    emulator.reset_counters()
    yield emulator
    emulator.set_group_claims(CLIENT_ID, True)
    emulator.directory.tenant(emulator.tenant_id).revoked.clear()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every wait the Graph client makes (and still make it: the emulator checks)."""
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(graph.GraphClient, "sleep", staticmethod(sleep))
    return recorded


@pytest.fixture
def user_with_groups(
    emu: Any, create_user: Callable[..., str]
) -> Callable[[int], tuple[str, dict[str, str]]]:
    """Create an Entra user in `count` new groups; return their object ID and {group ID: name}."""

    def create(count: int) -> tuple[str, dict[str, str]]:
        oid = create_user("Sync User")
        return oid, {add_group(emu, oid, name): name for name in _names(count)}

    return create


def _names(count: int) -> list[str]:
    """Return unique group names for one test (the emulator lives for the whole run)."""
    tag = uuid.uuid4().hex[:6]
    return [f"Team {tag} {i:04d}" for i in range(count)]


def add_group(emu: Any, member: str, name: str | None = None) -> str:
    """Create an Entra group with this member and return its object ID."""
    group_id = emu.add_group(None, name or _names(1)[0])
    emu.add_member(group_id, member)
    return group_id


def graph_calls(emu: Any) -> int:
    """Return how many Graph requests the emulator received since the last reset."""
    counters = emu.counters
    return sum(counters.get(name, 0) for name in GRAPH_ENDPOINTS)


def memberships(app: Flask, oid: str) -> dict[str, str]:
    """Return the user's memberships as {group name: membership source}."""
    with app.app_context():
        query = (
            sa.select(Group.name, GroupMembership.source)
            .join(GroupMembership.group)
            .join(GroupMembership.user)
            .where(User.object_id == oid)
        )
        return dict(db.session.execute(query).all())


def last_record(app: Flask, oid: str) -> SyncRecord:
    """Return the user's newest sync record."""
    with app.app_context():
        query = sa.select(SyncRecord).where(SyncRecord.object_id == oid)
        record = db.session.scalars(query.order_by(SyncRecord.id.desc())).first()
        assert record is not None
        db.session.expunge(record)
        return record


def is_admin(app: Flask, oid: str) -> bool:
    """Return the user's admin flag."""
    with app.app_context():
        return bool(db.session.scalar(sa.select(User.is_admin).where(User.object_id == oid)))


def set_admin(app: Flask, oid: str, value: bool) -> None:
    """Set a user's admin flag directly, as an earlier sign-in or an operator might have."""
    with app.app_context():
        db.session.execute(sa.update(User).where(User.object_id == oid).values(is_admin=value))
        db.session.commit()


def writes_to(statements: list[str], tables: tuple[str, ...]) -> list[str]:
    """Return the INSERT, UPDATE and DELETE statements that touch these tables."""
    return [
        s
        for s in statements
        if s.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}
        and any(f" {t}" in s or f'"{t}"' in s for t in tables)
    ]


def signed_in(response: Any, next_url: str = "/") -> None:
    """Assert the callback signed the user in and sent them on."""
    assert response.status_code == 302, response.text[:300]
    assert response.headers["Location"] == next_url


# -- groups from the claim -----------------------------------------------------------------


def test_first_sign_in_with_150_claim_groups_joins_all_with_at_most_one_graph_call(
    app: Flask, client: FlaskClient, emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    oid, entra = user_with_groups(150)

    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == {
        **dict.fromkeys(entra.values(), "entra"),
        "All users": "builtin",
    }
    record = last_record(app, oid)
    assert (record.status, record.source, record.reason) == ("ok", "claim", None)
    assert record.added == sorted([*entra.values(), "All users"])
    assert record.removed == []
    assert record.graph_calls == graph_calls(emu) <= 1
    page = client.get("/?size=200")  # the home page lists groups 50 a page by default
    assert all(name in page.text for name in entra.values())


def test_repeat_sign_in_with_fresh_names_calls_no_graph_and_writes_no_memberships(
    app: Flask, client: FlaskClient, emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    kinds_by_size: list[list[str]] = []
    for size in (3, 150):
        oid, _ = user_with_groups(size)
        signed_in(sign_in(client, emu, oid))
        emu.reset_counters()
        callback = prepare_callback(client, emu, oid)
        with count_statements(app) as statements:
            signed_in(client.get(callback))
        assert graph_calls(emu) == 0
        assert writes_to(statements, SYNC_TABLES) == []
        record = last_record(app, oid)
        assert (record.status, record.graph_calls, record.added, record.removed) == (
            "unchanged",
            0,
            [],
            [],
        )
        kinds = [" ".join(s.split()[:3]) for s in statements]
        kinds_by_size.append([k for k in kinds if "sign_in_flows" not in k and "sessions" not in k])
    # Five statements whether the user is in 3 groups or 150: the user, then their memberships,
    # groups and cached names as plain rows, then last_login_at, then the required sync record
    # and the required signin.ok audit event (beside the sign-in flow and the new session
    # record: tests/auth/test_session_records.py).
    for kinds in kinds_by_size:
        assert len(kinds) == 5, kinds
        assert kinds[0].startswith("SELECT users.id")
        assert kinds[1].startswith("SELECT group_memberships.id")
        assert kinds[2:] == [
            "UPDATE users SET",
            "INSERT INTO sync_records",
            "INSERT INTO audit_events",
        ], kinds


def test_group_added_and_group_removed_in_entra_show_at_next_sign_in(
    app: Flask, client: FlaskClient, emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    oid, entra = user_with_groups(3)
    signed_in(sign_in(client, emu, oid))
    gone_id, gone = next(iter(entra.items()))
    emu.remove_member(gone_id, oid)
    new_name = _names(1)[0]
    add_group(emu, oid, new_name)
    emu.reset_counters()

    signed_in(sign_in(client, emu, oid))

    expected = {n: "entra" for n in entra.values() if n != gone}
    assert memberships(app, oid) == {**expected, new_name: "entra", "All users": "builtin"}
    record = last_record(app, oid)
    assert (record.status, record.added, record.removed) == ("ok", [new_name], [gone])
    assert record.graph_calls == graph_calls(emu) == 1  # only the new ID needed a name


def test_deleted_entra_group_is_left(
    app: Flask, client: FlaskClient, emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    oid, entra = user_with_groups(2)
    signed_in(sign_in(client, emu, oid))
    doomed_id, doomed = next(iter(entra.items()))
    emu.delete_group(doomed_id)

    signed_in(sign_in(client, emu, oid))

    assert doomed not in memberships(app, oid)
    assert last_record(app, oid).removed == [doomed]


def test_renamed_group_gets_its_new_name_on_the_same_local_group(
    make_app: Callable[..., Flask], emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    app = make_app(GROUP_NAME_TTL_SECONDS="0")
    client = app.test_client()
    oid, entra = user_with_groups(1)
    group_id, old_name = next(iter(entra.items()))
    signed_in(sign_in(client, emu, oid))
    with app.app_context():
        local_id = group_service.find_group(group_id).id
    emu.rename_group(group_id, "Renamed " + old_name)

    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == {"Renamed " + old_name: "entra", "All users": "builtin"}
    with app.app_context():
        assert group_service.find_group(group_id).id == local_id  # linked by ID, not name
        assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 2
    assert last_record(app, oid).status == "unchanged"


def test_no_group_information_keeps_memberships_and_admin(
    make_app: Callable[..., Flask], emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    oid, entra = user_with_groups(2)
    admin_group = next(iter(entra))
    app = make_app(PORTAL_ADMIN_GROUP_IDS=admin_group)
    client = app.test_client()
    signed_in(sign_in(client, emu, oid))
    before = memberships(app, oid)
    emu.remove_member(admin_group, oid)
    emu.set_group_claims(CLIENT_ID, False)
    emu.reset_counters()

    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == before
    assert is_admin(app, oid)
    record = last_record(app, oid)
    assert (record.status, record.source, record.graph_calls) == ("skipped", None, 0)
    assert graph_calls(emu) == 0


# -- overage: groups from Graph ------------------------------------------------------------


@pytest.mark.parametrize("size", [250, 1000, 1500])
def test_overage_first_sign_in_asks_ids_once_then_names_in_batches_of_1000(
    app: Flask, client: FlaskClient, emu: Any, create_user: Callable[..., str], size: int
) -> None:
    oid = create_user("Many Groups")
    names = _names(size)
    for name in names:
        emu.add_member(emu.add_group(None, name), oid)

    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == {**dict.fromkeys(names, "entra"), "All users": "builtin"}
    record = last_record(app, oid)
    assert (record.status, record.source) == ("ok", "graph")
    assert emu.counters.get("graph.getMemberGroups") == 1
    assert emu.counters.get("graph.getByIds") == -(-size // 1000)
    assert record.graph_calls == graph_calls(emu) == 1 + -(-size // 1000)
    assert emu.counters.get("graph.getMemberObjects", 0) == 0  # never the _claim_sources URL


def test_unchanged_overage_repeat_sign_in_makes_one_graph_call_and_no_membership_writes(
    app: Flask, client: FlaskClient, emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Many Groups")
    for name in _names(1000):
        emu.add_member(emu.add_group(None, name), oid)
    signed_in(sign_in(client, emu, oid))
    emu.reset_counters()

    with count_statements(app) as statements:
        signed_in(sign_in(client, emu, oid))

    assert graph_calls(emu) == emu.counters.get("graph.getMemberGroups") == 1
    assert writes_to(statements, SYNC_TABLES) == []
    assert (last_record(app, oid).status, last_record(app, oid).graph_calls) == ("unchanged", 1)


def test_overage_new_group_costs_one_get_by_ids_for_its_id_only(
    app: Flask, client: FlaskClient, emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Many Groups")
    for name in _names(300):
        emu.add_member(emu.add_group(None, name), oid)
    signed_in(sign_in(client, emu, oid))
    new = add_group(emu, oid, "Fresh Team " + uuid.uuid4().hex[:6])
    emu.reset_counters()
    sent: list[list[str]] = []
    original = sync.graph.GraphCall._get_by_ids

    def spy(self: Any, ids: list[str]) -> Any:
        sent.append(ids)
        return original(self, ids)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync.graph.GraphCall, "_get_by_ids", spy)
        signed_in(sign_in(client, emu, oid))

    assert sent == [[new]]
    assert graph_calls(emu) == 2
    assert last_record(app, oid).added == [memberships_name(app, new)]


def memberships_name(app: Flask, object_id: str) -> str:
    """Return the cached name of an Entra group."""
    with app.app_context():
        query = sa.select(EntraGroup.display_name).where(EntraGroup.object_id == object_id)
        return str(db.session.scalar(query))


def test_overage_past_get_member_groups_limit_pages_transitive_member_of(
    app: Flask, client: FlaskClient, emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Too Many Groups")
    names = _names(30)
    for name in names:
        emu.add_member(emu.add_group(None, name), oid)
    emu.member_groups_limit, emu.group_claim_limit = 20, 2
    try:
        signed_in(sign_in(client, emu, oid))
    finally:
        emu.member_groups_limit, emu.group_claim_limit = 11000, 200

    assert memberships(app, oid) == {**dict.fromkeys(names, "entra"), "All users": "builtin"}
    assert emu.counters.get("graph.getMemberGroups") == 1
    assert emu.counters.get("graph.transitiveMemberOf") == 1
    assert emu.counters.get("graph.getByIds", 0) == 0  # the pages carried the names
    assert last_record(app, oid).status == "ok"


def test_overage_with_get_by_ids_refused_names_groups_from_transitive_member_of(
    app: Flask, client: FlaskClient, emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Many Groups")
    names = _names(40)
    for name in names:
        emu.add_member(emu.add_group(None, name), oid)

    def refused(self: Any, ids: list[str]) -> Any:
        raise sync.graph.GraphError("Graph answered /directoryObjects/getByIds with 403", 403)

    emu.group_claim_limit = 2
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sync.graph.GraphCall, "_get_by_ids", refused)
            signed_in(sign_in(client, emu, oid))
    finally:
        emu.group_claim_limit = 200

    assert memberships(app, oid) == {**dict.fromkeys(names, "entra"), "All users": "builtin"}
    assert emu.counters.get("graph.getMemberGroups") == 1
    assert emu.counters.get("graph.transitiveMemberOf") == 1
    assert last_record(app, oid).status == "ok"


# -- applying: manual memberships, modes, filter, admin ------------------------------------


def test_manual_membership_survives_when_entra_no_longer_lists_the_user(
    app: Flask, client: FlaskClient, emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    oid, entra = user_with_groups(2)
    signed_in(sign_in(client, emu, oid))
    pinned_id, pinned = next(iter(entra.items()))
    with app.app_context():
        user = users.find_user(oid)
        group_service.add_manual_member(group_service.find_group(pinned_id), user)
        group_service.add_manual_member(group_service.create_local("Hand Picked"), user)
        db.session.commit()
    for group_id in entra:
        emu.remove_member(group_id, oid)

    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == {
        pinned: "manual",
        "Hand Picked": "manual",
        "All users": "builtin",
    }
    assert last_record(app, oid).removed == [n for n in entra.values() if n != pinned]


def test_match_mode_links_only_a_same_named_local_group_and_follows_it_by_id(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    app = make_app(GROUP_SYNC_MODE="match", GROUP_NAME_TTL_SECONDS="0")
    client = app.test_client()
    oid = create_user()
    matched, unmatched = _names(2)
    matched_id = add_group(emu, oid, matched)
    add_group(emu, oid, unmatched)
    add_group(emu, oid, "All users")  # a built-in group is never linked
    with app.app_context():
        local_id = group_service.create_local(matched).id
        db.session.commit()

    signed_in(sign_in(client, emu, oid))
    emu.rename_group(matched_id, "Renamed in Entra")
    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == {matched: "entra", "All users": "builtin"}
    with app.app_context():
        group = group_service.find_group(matched_id)
        assert (group.id, group.source, group.name) == (local_id, "local", matched)
        assert db.session.scalar(sa.select(sa.func.count(Group.id))) == 2  # nothing created


def test_mirror_mode_creates_its_own_group_beside_a_same_named_local_group(
    app: Flask, client: FlaskClient, emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    name = _names(1)[0]
    group_id = add_group(emu, oid, name)
    with app.app_context():
        local_id = group_service.create_local(name).id
        db.session.commit()

    signed_in(sign_in(client, emu, oid))

    with app.app_context():
        mirror = group_service.find_group(group_id)
        assert (mirror.source, mirror.name) == ("entra", name)
        assert mirror.id != local_id
        assert db.session.get(Group, local_id).entra_group_id is None  # type: ignore[union-attr]


def test_filter_limits_synced_groups_but_not_admin_status(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    tag = uuid.uuid4().hex[:6]
    synced = add_group(emu, oid, f"App-{tag} Readers")
    add_group(emu, oid, f"Mail {tag} App-Readers")  # "App-" inside the name: no ^ anchor
    admins = add_group(emu, oid, f"Ops {tag} Admins")
    app = make_app(GROUP_SYNC_FILTER="^App-", PORTAL_ADMIN_GROUP_IDS=admins)
    client = app.test_client()

    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == {
        emu.group(synced).display_name: "entra",
        "All users": "builtin",
    }
    assert is_admin(app, oid)


def test_admin_status_is_granted_and_revoked_by_the_admin_group(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    admins = add_group(emu, oid)
    app = make_app(PORTAL_ADMIN_GROUP_IDS=f"{uuid.uuid4()},{admins.upper()}")
    client = app.test_client()

    signed_in(sign_in(client, emu, oid))
    assert is_admin(app, oid)
    assert client.get("/admin/users").status_code == 200

    emu.remove_member(admins, oid)
    signed_in(sign_in(client, emu, oid))
    assert not is_admin(app, oid)


def test_sync_never_demotes_a_local_admin(app: Flask) -> None:
    with app.app_context():
        admin = users.create_local("root-admin", "correct horse battery", is_admin=True)
        sync.apply(admin, sync.Resolution(source="claim", group_ids=[]))
        assert admin.is_admin
        assert group_service.user_group_names(admin) == []


def test_each_change_is_one_audit_line_without_tokens(
    client: FlaskClient,
    emu: Any,
    user_with_groups: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    oid, entra = user_with_groups(3)
    with caplog.at_level(logging.INFO, logger="portal.audit"):
        signed_in(sign_in(client, emu, oid))
    joined = [r.getMessage() for r in caplog.records if "joined" in r.getMessage()]
    assert len(joined) == 4  # three Entra groups and All users
    assert all(oid in line for line in joined)
    assert not any("eyJ" in r.getMessage() for r in caplog.records)


# -- when Graph fails ----------------------------------------------------------------------


FAULTS = {
    "timeout": ("hang", None, "in time"),
    "throttled past the budget": ("429", 30, "Retry-After 30 s"),
    "5xx twice": ("500", None, "500 generalException"),
    "malformed JSON": ("malformed_text", None, "malformed JSON"),
    "no value list": ("malformed_json", None, "no valid `value` list"),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=list(FAULTS))
def test_graph_failure_keeps_memberships_and_signs_in_quickly(
    app: Flask,
    client: FlaskClient,
    emu: Any,
    user_with_groups: Callable[..., Any],
    fault: tuple[str, int | None, str],
    waits: list[float],
) -> None:
    kind, retry_after, reason = fault
    app.config["GRAPH_TIMEOUT"] = (1.0, 0.5)
    oid, entra = user_with_groups(2)
    signed_in(sign_in(client, emu, oid))
    before = memberships(app, oid)
    emu.remove_member(next(iter(entra)), oid)
    add_group(emu, oid)  # a new ID: its name must come from Graph
    emu.graph_faults.add(kind, times=2, retry_after=retry_after)

    signed_in(sign_in(client, emu, oid, next_url="/?after=sync"), "/?after=sync")

    assert memberships(app, oid) == before
    record = last_record(app, oid)
    assert (record.status, record.source, record.added, record.removed) == (
        "failed",
        "claim",
        [],
        [],
    )
    assert reason in (record.reason or "")
    # Quick: no Retry-After past the budget was waited out, at most one short 5xx backoff.
    assert sum(waits) <= graph.BACKOFF[1], waits


def test_missing_graph_permission_keeps_memberships_with_a_clear_reason(
    app: Flask, client: FlaskClient, emu: Any, user_with_groups: Callable[..., Any]
) -> None:
    oid, entra = user_with_groups(2)
    signed_in(sign_in(client, emu, oid))
    before = memberships(app, oid)
    add_group(emu, oid)
    emu.revoke_scope(emu.tenant_id, "GroupMember.Read.All")

    signed_in(sign_in(client, emu, oid))

    assert memberships(app, oid) == before
    record = last_record(app, oid)
    assert record.status == "failed"
    assert "403 Authorization_RequestDenied" in (record.reason or "")
    assert "GroupMember.Read.All" in (record.reason or "")


def test_overage_failure_keeps_admin_status_because_the_groups_are_unknown(
    make_app: Callable[..., Flask], emu: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    emu.group_claim_limit = 2
    try:
        groups = [add_group(emu, oid) for _ in range(4)]  # still past the limit after one leaves
        app = make_app(PORTAL_ADMIN_GROUP_IDS=groups[0])
        client = app.test_client()
        signed_in(sign_in(client, emu, oid))
        assert is_admin(app, oid)
        emu.remove_member(groups[0], oid)
        emu.graph_faults.add("500", times=2)
        signed_in(sign_in(client, emu, oid))
    finally:
        emu.group_claim_limit = 200
    assert is_admin(app, oid)
    record = last_record(app, oid)
    assert (record.status, record.source) == ("failed", "graph")


def test_throttled_within_budget_waits_retry_after_then_succeeds(
    app: Flask,
    client: FlaskClient,
    emu: Any,
    user_with_groups: Callable[..., Any],
    waits: list[float],
) -> None:
    oid, entra = user_with_groups(2)
    emu.graph_faults.add("429", times=1, retry_after=1)

    signed_in(sign_in(client, emu, oid))

    assert waits == [1.0]
    assert emu.early_retries == 0
    assert emu.counters.get("graph.early_retry", 0) == 0
    record = last_record(app, oid)
    assert (record.status, record.graph_calls) == ("ok", 2)
    assert set(entra.values()) <= set(memberships(app, oid))


@pytest.mark.parametrize("kind", ["500", "503"])
def test_one_5xx_is_retried_after_a_short_backoff(
    app: Flask, client: FlaskClient, emu: Any, user_with_groups: Callable[..., Any], kind: str
) -> None:
    oid, entra = user_with_groups(2)
    emu.graph_faults.add(kind, times=1)

    signed_in(sign_in(client, emu, oid))

    record = last_record(app, oid)
    assert (record.status, record.graph_calls) == ("ok", 2)
    assert set(entra.values()) <= set(memberships(app, oid))


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_first_sign_ins_sharing_new_groups_all_succeed(
    app: Flask, emu: Any, create_user: Callable[..., str]
) -> None:
    people = [create_user(f"Person {i}") for i in range(4)]
    shared = [emu.add_group(None, name) for name in _names(30)]
    for group_id in shared:
        emu.add_members(group_id, people)
    clients = [app.test_client() for _ in people]
    callbacks = [prepare_callback(c, emu, oid) for c, oid in zip(clients, people, strict=True)]

    with ThreadPoolExecutor(len(people)) as pool:
        answers = list(pool.map(lambda c, url: c.get(url), clients, callbacks))

    for answer in answers:
        signed_in(answer)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Group.id))) == len(shared) + 1
        assert db.session.scalar(sa.select(sa.func.count(EntraGroup.id))) == len(shared)
    for oid in people:
        assert len(memberships(app, oid)) == len(shared) + 1
