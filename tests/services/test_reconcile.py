"""Reconciliation between sign-ins against the emulator's Graph delta queries, both databases."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.auth.entra import graph_app_token as app_token
from portal.extensions import db
from portal.models import (
    AuditEvent,
    DeltaState,
    DirectoryEdge,
    EntraGroup,
    Group,
    GroupMembership,
    ReconcileRun,
    SyncRecord,
    User,
    UserSession,
)
from portal.models.group import MEMBERSHIP_MANUAL
from portal.services import reconcile, users
from tests.helpers import CLIENT_ID, emulator_session, local_sign_in, make_local, post, sign_in


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    """The shared emulator with faults and knobs reset around each test."""
    emulator.reset_faults()
    yield emulator
    emulator.reset_faults()
    emulator.set_group_claims(CLIENT_ID, True)


@dataclass
class Directory:
    """A fresh tenant of one test, and the ids of what is in it."""

    tenant_id: str
    users: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def directory(emu: Any) -> Directory:
    """Ann in Inner ⊂ Outer, Bob in Outer and Admins, Cy in nothing; a tenant of its own."""
    tag = uuid.uuid4().hex[:6]
    tid = emu.add_tenant(name=f"Recon {tag}")
    found = Directory(tid)
    for key in ("ann", "bob", "cy"):
        upn = f"{key}-{tag}@recon.example"
        found.users[key] = emu.add_user(tid, key.title(), upn, email=upn)
    for name in ("Outer", "Inner", "Admins", "Other"):
        found.groups[name] = emu.add_group(tid, f"{name} {tag}")
    emu.add_member(found.groups["Outer"], found.groups["Inner"])
    emu.add_member(found.groups["Inner"], found.users["ann"])
    emu.add_member(found.groups["Outer"], found.users["bob"])
    emu.add_member(found.groups["Admins"], found.users["bob"])
    emu.add_member(found.groups["Other"], found.users["cy"])
    return found


@pytest.fixture
def app(make_app: Callable[..., Flask], directory: Directory) -> Flask:
    """A portal admitting only the test's tenant; Bob's Admins group makes portal admins."""
    portal = make_app(
        ENTRA_TENANT_ID=directory.tenant_id,
        PORTAL_ADMIN_GROUP_IDS=directory.groups["Admins"],
    )
    portal.config["GRAPH_TIMEOUT"] = (1.0, 0.5)
    portal.config["RECONCILE_BUDGET_SECONDS"] = 5.0
    return portal


def signed_in(app: Flask, emu: Any, directory: Directory, *keys: str) -> None:
    """Sign these users in once, so the portal knows them (and mirrors their groups)."""
    for key in keys:
        answer = sign_in(app.test_client(), emu, directory.users[key])
        assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:300]


def run(app: Flask, **kwargs: Any) -> reconcile.Outcome:
    """Run one reconciliation with the CLI's token provider."""
    with app.app_context():
        return reconcile.run(app_token, **kwargs)


def groups_of(app: Flask, oid: str) -> dict[str, str]:
    """Return a user's memberships as {group name without tag: source}."""
    with app.app_context():
        query = (
            sa.select(Group.name, GroupMembership.source)
            .join(GroupMembership.group)
            .join(GroupMembership.user)
            .where(User.object_id == oid)
        )
        found = db.session.execute(query).all()
    return {
        name if source == "builtin" else name.rsplit(" ", 1)[0]: source for name, source in found
    }


def user_row(app: Flask, oid: str) -> User:
    """Return a detached copy of the user's row."""
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.object_id == oid)).one()
        db.session.expunge(user)
        return user


def snapshot(app: Flask) -> dict[str, Any]:
    """Return what a failed or held run must leave untouched."""
    with app.app_context():
        return {
            "memberships": sorted(
                db.session.execute(
                    sa.select(GroupMembership.user_id, GroupMembership.group_id)
                ).all()
            ),
            "active": sorted(db.session.execute(sa.select(User.id, User.is_active)).all()),
            "edges": db.session.scalar(sa.select(sa.func.count()).select_from(DirectoryEdge)),
            "links": sorted(
                db.session.execute(sa.select(DeltaState.users_link, DeltaState.groups_link)).all()
            ),
        }


# -- examples ----------------------------------------------------------------------------------


def test_first_run_reads_everything_and_agrees_with_sign_in(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann", "bob")

    outcome = run(app)

    assert outcome.as_json() == {
        "status": "ok",
        "full": True,
        "users_disabled": 0,
        "users_enabled": 0,
        "memberships_added": 0,
        "memberships_removed": 0,
        "graph_calls": 2,
        "reason": None,
    }
    with app.app_context():
        state = db.session.get(DeltaState, directory.tenant_id)
        assert state is not None and "$deltatoken=" in (state.groups_link or "")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DirectoryEdge)) == 5


def test_removed_membership_leaves_nested_groups_too_and_writes_a_sync_record(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann", "bob")
    run(app)
    emu.remove_member(directory.groups["Inner"], directory.users["ann"])

    outcome = run(app)

    assert (outcome.status, outcome.full, outcome.memberships_removed) == ("ok", False, 2)
    assert groups_of(app, directory.users["ann"]) == {"All users": "builtin"}
    with app.app_context():
        record = db.session.scalars(
            sa.select(SyncRecord).order_by(SyncRecord.id.desc()).limit(1)
        ).one()
        assert (record.object_id, record.source, record.status) == (
            directory.users["ann"],
            "reconcile",
            "ok",
        )
        assert [n.rsplit(" ", 1)[0] for n in record.removed] == ["Inner", "Outer"]


def test_rewired_nested_group_adds_and_removes_transitive_memberships(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann", "bob", "cy")
    run(app)
    emu.remove_member(directory.groups["Outer"], directory.groups["Inner"])
    emu.add_member(directory.groups["Outer"], directory.groups["Other"])

    outcome = run(app)

    assert groups_of(app, directory.users["ann"]) == {"All users": "builtin", "Inner": "entra"}
    assert groups_of(app, directory.users["cy"]) == {
        "All users": "builtin",
        "Other": "entra",
        "Outer": "entra",
    }
    assert (outcome.memberships_added, outcome.memberships_removed) == (1, 1)


def test_only_already_linked_groups_change_and_no_user_is_created(
    app: Flask, emu: Any, directory: Directory, create_user: Callable[..., str]
) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    fresh = emu.add_group(directory.tenant_id, f"Fresh {uuid.uuid4().hex[:6]}")
    emu.add_member(fresh, directory.users["ann"])
    emu.add_member(fresh, directory.users["bob"])

    outcome = run(app)

    assert outcome.memberships_added == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
        assert db.session.scalar(sa.select(Group.id).where(Group.name.like("Fresh%"))) is None


def test_disabled_user_is_disabled_then_enabled_again_by_entra(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    emu.set_user(directory.users["ann"], account_enabled=False)

    assert run(app).users_disabled == 1
    user = user_row(app, directory.users["ann"])
    assert (user.is_active, user.is_entra_disabled) == (False, True)
    with app.app_context():
        from portal.models.session import UserSession

        reasons = db.session.scalars(
            sa.select(UserSession.end_reason).where(UserSession.user_id == user.id)
        ).all()
    assert reasons and set(reasons) == {"reconcile"}
    assert sign_in(app.test_client(), emu, directory.users["ann"]).status_code in (302, 403)

    emu.set_user(directory.users["ann"], account_enabled=True)
    assert run(app).users_enabled == 1
    user = user_row(app, directory.users["ann"])
    assert (user.is_active, user.is_entra_disabled) == (True, False)
    with app.app_context():
        actions = db.session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.actor == "reconcile")
        ).all()
    assert {"user.disabled", "user.enabled", "reconcile.run"} <= set(actions)


def test_an_admins_disable_wins_over_entra(app: Flask, emu: Any, directory: Directory) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    emu.set_user(directory.users["ann"], account_enabled=False)
    run(app)
    with app.app_context():
        user = db.session.scalars(
            sa.select(User).where(User.object_id == directory.users["ann"])
        ).one()
        users.set_active(user, False)  # the admin disables the user too
        db.session.commit()
    emu.set_user(directory.users["ann"], account_enabled=True)

    assert run(app).users_enabled == 0
    assert user_row(app, directory.users["ann"]).is_active is False


def test_deleted_user_is_disabled_and_leaves_every_group(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann", "bob")
    run(app)
    emu.delete_user(directory.users["bob"])  # groups/delta says nothing about Bob's groups

    outcome = run(app)

    assert (outcome.users_disabled, outcome.memberships_removed) == (1, 2)
    bob = user_row(app, directory.users["bob"])
    assert (bob.is_active, bob.is_admin) == (False, False)
    assert groups_of(app, directory.users["bob"]) == {"All users": "builtin"}


def test_user_missing_from_a_full_read_is_disabled(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    emu.delete_user(directory.users["ann"])
    emu.expire_delta_links()  # so the deletion is only visible as absence from a full read

    outcome = run(app)

    assert (outcome.full, outcome.users_disabled) == (True, 1)


def test_admin_status_follows_the_admin_groups(app: Flask, emu: Any, directory: Directory) -> None:
    signed_in(app, emu, directory, "ann", "bob")
    run(app)
    assert user_row(app, directory.users["bob"]).is_admin
    emu.remove_member(directory.groups["Admins"], directory.users["bob"])
    emu.add_member(directory.groups["Admins"], directory.groups["Inner"])

    run(app)

    assert not user_row(app, directory.users["bob"]).is_admin
    assert user_row(app, directory.users["ann"]).is_admin


def test_manual_memberships_stay(app: Flask, emu: Any, directory: Directory) -> None:
    signed_in(app, emu, directory, "ann")
    with app.app_context():
        db.session.execute(
            sa.update(GroupMembership)
            .where(GroupMembership.source == "entra")
            .values(source=MEMBERSHIP_MANUAL)
        )
        db.session.commit()
    run(app)
    emu.remove_member(directory.groups["Inner"], directory.users["ann"])

    assert run(app).memberships_removed == 0
    assert groups_of(app, directory.users["ann"])["Inner"] == "manual"


def test_renamed_group_is_followed_unless_the_name_is_taken(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    tag = uuid.uuid4().hex[:6]
    emu.rename_group(directory.groups["Inner"], f"Renamed {tag}")
    with app.app_context():
        db.session.add(Group(name=f"Taken {tag}", source="local", description=""))
        db.session.commit()
    emu.rename_group(directory.groups["Outer"], f"Taken {tag}")

    run(app)

    assert set(groups_of(app, directory.users["ann"])) == {"All users", "Renamed", "Outer"}


def test_group_filter_applies_as_at_sign_in(
    make_app: Callable[..., Flask], emu: Any, directory: Directory
) -> None:
    app = make_app(ENTRA_TENANT_ID=directory.tenant_id)
    signed_in(app, emu, directory, "ann")
    app.config["GROUP_SYNC_FILTER"] = "^Inner"

    run(app)

    assert set(groups_of(app, directory.users["ann"])) == {"All users", "Inner"}


def test_deleted_group_ends_its_memberships(app: Flask, emu: Any, directory: Directory) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    emu.delete_group(directory.groups["Inner"])

    run(app)

    assert set(groups_of(app, directory.users["ann"])) == {"All users"}


def test_refused_delta_link_reads_everything_again(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    emu.remove_member(directory.groups["Inner"], directory.users["ann"])
    emu.expire_delta_links()

    outcome = run(app)

    assert (outcome.status, outcome.full, outcome.memberships_removed) == ("ok", True, 2)


def test_run_over_the_limit_is_held_then_applied_with_force(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann", "bob")
    run(app)
    app.config["RECONCILE_MAX_CHANGES"] = 1
    emu.remove_member(directory.groups["Outer"], directory.groups["Inner"])
    emu.remove_member(directory.groups["Outer"], directory.users["bob"])
    before = snapshot(app)

    held = run(app)

    assert (held.status, held.memberships_removed) == ("held", 2)
    assert snapshot(app) == before
    with app.app_context():
        last = db.session.scalars(sa.select(ReconcileRun).order_by(ReconcileRun.id.desc())).first()
        assert last is not None and last.status == "held" and len(last.changes) == 2
        assert db.session.scalar(
            sa.select(AuditEvent.id).where(AuditEvent.action == "reconcile.held")
        )
    assert run(app).status == "held"  # still held: the delta state was kept
    forced = run(app, force=True)
    assert (forced.status, forced.memberships_removed) == ("ok", 2)


def test_second_run_while_one_holds_the_lock_is_busy(app: Flask) -> None:
    with app.app_context(), reconcile.run_lock() as locked:
        assert locked
        assert reconcile.run(app_token).status == "busy"
    assert run(app).status == "ok"


FAULTS = {
    "429 past the budget": ("429", 30),
    "503": ("503", None),
    "hang": ("hang", None),
    "malformed page": ("malformed", None),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=list(FAULTS))
def test_fault_mid_run_applies_nothing_and_the_next_run_completes(
    app: Flask, emu: Any, directory: Directory, fault: tuple[str, int | None]
) -> None:
    signed_in(app, emu, directory, "ann", "bob")
    run(app)
    emu.remove_member(directory.groups["Inner"], directory.users["ann"])
    emu.set_user(directory.users["bob"], account_enabled=False)
    before = snapshot(app)
    kind, retry_after = fault
    emu.graph_faults.hang_seconds = 3
    emu.graph_faults.add(kind, times=6, path_contains="/groups/delta", retry_after=retry_after)

    failed = run(app)

    assert failed.status == "failed" and failed.reason
    assert snapshot(app) == before
    emu.graph_faults.clear()
    done = run(app)
    assert (done.status, done.full, done.memberships_removed, done.users_disabled) == (
        "ok",
        False,
        2,
        1,
    )


def test_missing_permission_fails_the_run(app: Flask, emu: Any, directory: Directory) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    emu.revoke_scope(directory.tenant_id, "GroupMember.Read.All")

    failed = run(app)

    assert failed.status == "failed" and "403" in (failed.reason or "")
    emu.directory.tenant(directory.tenant_id).revoked.clear()
    assert run(app).status == "ok"


# -- the command -------------------------------------------------------------------------------


def test_cli_prints_the_contract_json_and_exits_by_status(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    runner = app.test_cli_runner()

    ok = runner.invoke(args=["sync", "reconcile", "--json", "--full"])
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["status"] == "ok" and body["full"] is True
    emu.graph_faults.add("500", times=10, path_contains="/users/delta")
    failed = runner.invoke(args=["sync", "reconcile", "--json"])
    assert failed.exit_code != 0
    assert json.loads(failed.stdout)["status"] == "failed"


# -- property: after a run, every known user's memberships are what a sign-in would make --------


def _mutate(emu: Any, directory: Directory, rng: random.Random, rounds: int) -> None:
    """Apply random directory changes: memberships, nesting, renames, (dis|en)abled users."""
    groups = list(directory.groups.values())
    people = list(directory.users.values())
    for _ in range(rounds):
        action = rng.choice(["add", "remove", "nest", "unnest", "rename", "disable", "enable"])
        group = rng.choice(groups)
        if action == "add":
            emu.add_member(group, rng.choice(people))
        elif action == "remove":
            emu.remove_member(group, rng.choice(people))
        elif action == "nest":
            other = rng.choice(groups)
            if other != group:
                emu.add_member(group, other)
        elif action == "unnest":
            emu.remove_member(group, rng.choice(groups))
        elif action == "rename":
            emu.rename_group(group, f"G{rng.randrange(10**6)}")
        else:
            emu.set_user(rng.choice(people), account_enabled=action == "enable")


def _expected(emu: Any, app: Flask, oid: str) -> set[str]:
    """Return the linked local groups a sign-in of this user would put them in."""
    entra = set(emu.transitive_group_ids(oid))
    with app.app_context():
        query = sa.select(Group.name, Group.entra_group_id).where(Group.entra_group_id.isnot(None))
        linked = db.session.execute(query).all()
        from portal.models import EntraGroup

        ids = dict(db.session.execute(sa.select(EntraGroup.id, EntraGroup.object_id)).all())
    return {name for name, eid in linked if ids[eid] in entra}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_property_memberships_match_a_fresh_sign_in(
    app: Flask, emu: Any, directory: Directory, seed: int
) -> None:
    rng = random.Random(seed)
    for key in ("ann", "bob", "cy"):  # everyone in every group once, so every group is linked
        for group in directory.groups.values():
            emu.add_member(group, directory.users[key])
    signed_in(app, emu, directory, "ann", "bob", "cy")
    run(app)
    for _ in range(3):
        _mutate(emu, directory, rng, rounds=8)
        if rng.random() < 0.3:
            emu.expire_delta_links()
        assert run(app, force=True).status == "ok"
        for oid in directory.users.values():
            local = groups_of_full(app, oid)
            assert local == _expected(emu, app, oid), (seed, oid)
            assert user_row(app, oid).is_active == emu.user(oid).account_enabled
    for oid in directory.users.values():  # and a real sign-in agrees: nothing left to change
        emu.set_user(oid, account_enabled=True)
    run(app, force=True)
    for oid in directory.users.values():
        before = groups_of_full(app, oid)
        sign_in(app.test_client(), emu, oid)
        assert groups_of_full(app, oid) == before


def groups_of_full(app: Flask, oid: str) -> set[str]:
    """Return the names of the user's Entra-sourced memberships."""
    with app.app_context():
        query = (
            sa.select(Group.name)
            .join(GroupMembership.group)
            .join(GroupMembership.user)
            .where(User.object_id == oid, GroupMembership.source == "entra")
        )
        return set(db.session.scalars(query))


# -- the console: runs, applying a held run, one user's re-sync --------------------------------


def admin_client(app: Flask) -> Any:
    """A local admin signed in on a test client of this portal."""
    make_local(app, "recon-admin", is_admin=True)
    client = app.test_client()
    assert local_sign_in(client, "recon-admin").status_code == 302
    return client


def user_id(app: Flask, oid: str) -> int:
    """Return the portal's id of an External user."""
    with app.app_context():
        return db.session.scalars(sa.select(User.id).where(User.object_id == oid)).one()


def test_held_run_lists_its_proposals_and_apply_anyway_applies_them(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann", "bob")
    run(app)
    app.config["RECONCILE_MAX_CHANGES"] = 1
    emu.remove_member(directory.groups["Outer"], directory.groups["Inner"])
    emu.remove_member(directory.groups["Outer"], directory.users["bob"])
    assert run(app).status == "held"
    client = admin_client(app)

    page = client.get("/admin/reconcile")

    assert page.status_code == 200
    assert "Apply anyway" in page.text and "Bob" in page.text and "held" in page.text
    applied = post(client, "/admin/reconcile/apply", follow_redirects=True)
    assert applied.status_code == 200 and "Reconciliation done" in applied.text
    assert "Outer" not in groups_of(app, directory.users["bob"])
    with app.app_context():
        newest = db.session.scalars(
            sa.select(ReconcileRun).order_by(ReconcileRun.id.desc())
        ).first()
        assert newest is not None and (newest.status, newest.actor) == ("ok", "recon-admin")
    assert "Apply anyway" not in client.get("/admin/reconcile").text


def test_resync_previews_then_applies_on_confirmation(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    emu.remove_member(directory.groups["Inner"], directory.users["ann"])
    client = admin_client(app)
    uid = user_id(app, directory.users["ann"])

    assert f"/admin/users/{uid}/resync" in client.get(f"/admin/users/{uid}").text
    preview = client.get(f"/admin/users/{uid}/resync")

    assert preview.status_code == 200 and "Apply these changes" in preview.text
    assert "Inner" in preview.text
    assert set(groups_of(app, directory.users["ann"])) == {"All users", "Inner", "Outer"}
    done = post(client, f"/admin/users/{uid}/resync", follow_redirects=True)
    assert done.status_code == 200 and "re-synced" in done.text
    assert set(groups_of(app, directory.users["ann"])) == {"All users"}
    with app.app_context():
        record = db.session.scalars(sa.select(SyncRecord).order_by(SyncRecord.id.desc())).first()
        assert record is not None and record.source == "reconcile"


def test_reconcile_page_is_for_admins_only(app: Flask, emu: Any, directory: Directory) -> None:
    make_local(app, "plain", is_admin=False)
    client = app.test_client()
    assert app.test_client().get("/admin/reconcile").status_code == 302
    local_sign_in(client, "plain")
    assert client.get("/admin/reconcile").status_code == 403


def test_run_now_reconciles_what_the_demo_page_changed(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    control = emulator_session(emu)
    page = control.get(f"{emu.url}/_emulator/directory", timeout=10)
    assert page.status_code == 200 and "Ann" in page.text
    toggled = control.post(f"{emu.url}/_emulator/users/{directory.users['ann']}/toggle", timeout=10)
    assert toggled.status_code == 200 and not emu.user(directory.users["ann"]).account_enabled
    client = admin_client(app)

    done = post(client, "/admin/reconcile/run", follow_redirects=True)

    assert "Reconciliation done: 1 user(s) disabled" in done.text
    assert user_row(app, directory.users["ann"]).is_active is False


def test_a_user_entra_disables_loses_every_session_and_enabling_revives_none(
    app: Flask, emu: Any, directory: Directory
) -> None:
    oid = directory.users["ann"]
    client = app.test_client()
    assert sign_in(client, emu, oid).status_code == 302
    assert client.get("/").status_code == 200
    run(app)
    emu.set_user(oid, account_enabled=False)

    assert run(app).users_disabled == 1
    emu.set_user(oid, account_enabled=True)
    assert run(app).users_enabled == 1

    assert client.get("/").status_code == 302
    with app.app_context():
        reasons = db.session.scalars(
            sa.select(UserSession.end_reason).join(User).where(User.object_id == oid)
        ).all()
    assert reasons == ["reconcile"]


def test_a_group_renamed_with_a_nul_byte_and_a_long_name_is_stored_clipped_and_clean(
    app: Flask, emu: Any, directory: Directory
) -> None:
    signed_in(app, emu, directory, "ann")
    run(app)
    emu.rename_group(directory.groups["Inner"], "In\x00ner " + "z" * 300)

    outcome = run(app)

    assert outcome.status == "ok"
    with app.app_context():
        query = sa.select(EntraGroup.display_name).where(
            EntraGroup.object_id == directory.groups["Inner"]
        )
        assert db.session.scalar(query) == ("Inner " + "z" * 300)[:256]
