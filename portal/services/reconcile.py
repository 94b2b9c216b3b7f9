"""Reconciliation between sign-ins: users and memberships follow Entra through Graph deltas.

Per admitted tenant a run reads `/users/delta` and `/groups/delta` (everything the first time,
with `full`, or when Graph refuses the stored delta link), keeps the tenant's direct
membership edges (users and nested groups) in `directory_edges`, and works out for every
known user the transitive membership of the groups that matter (linked local groups and
`PORTAL_ADMIN_GROUP_IDS`), as the token's `groups` claim would list it. Memberships of
already-linked local groups then follow under the sign-in rules (mode, filter, provenance,
manual memberships); no user and no group is created.

Graph is read before anything is written; the writes of one tenant then happen in one
transaction, committed at the end, or rolled back when the run fails or is held
(`RECONCILE_MAX_CHANGES`), so the stored delta links and edges stay as they were and the next
run resumes from the same point. One run at a time across instances: a PostgreSQL advisory
lock, or a lock row on SQLite.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from portal.database import insert as dialect_insert
from portal.extensions import db
from portal.models import (
    DeltaState,
    DirectoryEdge,
    EntraGroup,
    Group,
    GroupMembership,
    ReconcileLock,
    ReconcileRun,
    SyncRecord,
    User,
)
from portal.models.base import utcnow
from portal.models.group import BUILTIN, MEMBERSHIP_ENTRA
from portal.models.reconcile import RUN_FAILED, RUN_HELD, RUN_OK
from portal.models.session import RECONCILE as RECONCILE_ENDED
from portal.models.sync import FROM_RECONCILE, OK
from portal.models.user import EXTERNAL
from portal.services import audit, graph, operations, sessions
from portal.services.text import clean_text

log = logging.getLogger(__name__)

ACTOR = audit.RECONCILE
BUSY = "busy"
USERS_DELTA = "/users/delta?$select=id,accountEnabled,displayName,mail,userPrincipalName"
GROUPS_DELTA = "/groups/delta?$select=displayName,members"
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
ADVISORY_LOCK_KEY = 0x706F7274616C  # "portal": one key for every instance of the app
LOCK_NAME = "reconcile"
STALE_LOCK = timedelta(hours=6)  # a lock row this old belongs to a run that died
CHUNK = 500
PROFILE_LENGTHS = {"email": 320, "display_name": 256, "upn": 320}  # the users columns
MAX_RECORDED_CHANGES = 1000  # per run, for the console; the counts stay exact

TokenProvider = Callable[[str], str]


@dataclass
class Outcome:
    """What one run did (or proposed): the CLI's JSON object."""

    status: str = RUN_OK
    full: bool = False
    users_disabled: int = 0
    users_enabled: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0
    graph_calls: int = 0
    reason: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the contract's JSON object."""
        return {
            "status": self.status,
            "full": self.full,
            "users_disabled": self.users_disabled,
            "users_enabled": self.users_enabled,
            "memberships_added": self.memberships_added,
            "memberships_removed": self.memberships_removed,
            "graph_calls": self.graph_calls,
            "reason": self.reason,
        }

    def add(self, other: Outcome) -> None:
        """Add a tenant's counts to the run's."""
        self.full = self.full or other.full
        for name in ("users_disabled", "users_enabled", "memberships_added"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.memberships_removed += other.memberships_removed
        self.graph_calls += other.graph_calls
        room = MAX_RECORDED_CHANGES - len(self.changes)
        self.changes.extend(other.changes[: max(0, room)])


@dataclass
class UserDelta:
    """What Graph said about one known user in this run."""

    removed: bool = False
    enabled: bool | None = None
    profile: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Reading:
    """Everything one tenant's delta rounds said, before any write."""

    full: bool
    users: dict[str, UserDelta] = field(default_factory=dict)  # known users only
    seen_users: set[str] = field(default_factory=set)  # full read: known users Entra listed
    names: dict[str, str | None] = field(default_factory=dict)
    deleted_groups: set[str] = field(default_factory=set)
    deleted_users: set[str] = field(default_factory=set)  # any user, known or not
    # member -> is_group, per group; for a full read, every member of every group.
    added: dict[str, dict[str, bool]] = field(default_factory=dict)
    removed: dict[str, set[str]] = field(default_factory=dict)
    users_link: str | None = None
    groups_link: str | None = None


# -- the run ---------------------------------------------------------------------------------


def run(
    token_for: TokenProvider,
    *,
    full: bool = False,
    force: bool = False,
    actor: audit.Actor = ACTOR,
) -> Outcome:
    """Reconcile every admitted tenant once; commits per tenant, then records the run."""
    started, started_at = time.monotonic(), utcnow()
    with run_lock() as locked:
        if not locked:
            return Outcome(status=BUSY, reason="another reconciliation run is in progress")
        try:
            outcome = _run_tenants(full=full, force=force, token_for=token_for)
            _record_run(outcome, started, started_at, actor)
            db.session.commit()
        except BaseException:
            db.session.rollback()  # before the lock goes: SQLite would wait on our writes
            raise
    return outcome


def _run_tenants(*, full: bool, force: bool, token_for: TokenProvider) -> Outcome:
    """Reconcile each admitted tenant in its own transaction; the worst status wins."""
    outcome = Outcome()
    for tenant_id in admitted_tenants():
        tenant = _reconcile_tenant(tenant_id, token_for, full=full, force=force)
        outcome.add(tenant)
        if tenant.status != RUN_OK and outcome.status != RUN_FAILED:
            outcome.status, outcome.reason = tenant.status, tenant.reason
    return outcome


def admitted_tenants() -> list[str]:
    """Return the tenants whose users may sign in: the configured one or the allow-list."""
    tenant = str(current_app.config.get("ENTRA_TENANT_ID") or "").lower()
    if tenant in {"", "organizations", "common", "consumers"}:
        return [t.lower() for t in current_app.config.get("ENTRA_ALLOWED_TENANTS") or []]
    return [tenant]


def _reconcile_tenant(
    tenant_id: str, token_for: TokenProvider, *, full: bool, force: bool
) -> Outcome:
    """Read one tenant's deltas, then apply (or hold) its changes in one transaction."""
    outcome = Outcome()
    call: graph.GraphCall | None = None
    try:
        budget = current_app.config.get("RECONCILE_BUDGET_SECONDS", graph.BATCH_BUDGET_SECONDS)
        call = graph.client().batch_call(token_for(tenant_id), float(budget))
        reading = _read(tenant_id, call, full)
        outcome.full = reading.full
        plan = _plan(tenant_id, reading)
    except graph.GraphError as exc:
        outcome.graph_calls = call.calls if call else 0
        db.session.rollback()
        outcome.status, outcome.reason = RUN_FAILED, f"tenant {tenant_id}: {exc.reason}"
        log.warning("reconcile: %s", outcome.reason)
        return outcome
    outcome.graph_calls = call.calls
    plan.count(outcome)
    if not force and _over_limit(outcome):
        db.session.rollback()
        outcome.status = RUN_HELD
        outcome.reason = (
            f"tenant {tenant_id}: {outcome.memberships_removed} membership removal(s) and "
            f"{outcome.users_disabled} user(s) to disable; RECONCILE_MAX_CHANGES is "
            f"{_max_changes()} (run with --force to apply)"
        )
        return outcome
    plan.apply(reading)
    _store_links(tenant_id, reading)
    db.session.commit()
    return outcome


def _max_changes() -> int:
    return int(current_app.config.get("RECONCILE_MAX_CHANGES", 500))


def _over_limit(outcome: Outcome) -> bool:
    limit = _max_changes()
    return outcome.memberships_removed > limit or outcome.users_disabled > limit


# -- reading Graph ---------------------------------------------------------------------------


def _read(tenant_id: str, call: graph.GraphCall, full: bool) -> Reading:
    """Run both delta rounds; a refused delta link starts both over as a full read."""
    state = db.session.get(DeltaState, tenant_id)
    full = full or state is None or not (state.users_link and state.groups_link)
    known = _known_users(tenant_id)
    try:
        reading = _read_rounds(call, state, full, known)
    except graph.GraphError as exc:
        if full or not exc.delta_expired:
            raise
        log.info(
            "reconcile: tenant %s: delta link refused (%s), reading everything",
            tenant_id,
            exc.code or exc.status,
        )
        reading = _read_rounds(call, state, True, known)
    return reading


def _known_users(tenant_id: str) -> set[str]:
    query = sa.select(User.object_id).where(User.user_type == EXTERNAL, User.tenant_id == tenant_id)
    return {oid for oid in db.session.scalars(query) if oid}


def _read_rounds(
    call: graph.GraphCall, state: DeltaState | None, full: bool, known: set[str]
) -> Reading:
    reading = Reading(full=full)
    start = USERS_DELTA if full or state is None else state.users_link
    for item in call.delta(start or USERS_DELTA):
        _read_user(reading, item, known)
    reading.users_link = call.delta_link
    start = GROUPS_DELTA if full or state is None else state.groups_link
    for item in call.delta(start or GROUPS_DELTA):
        _read_group(reading, item)
    reading.groups_link = call.delta_link
    return reading


def _read_user(reading: Reading, item: dict[str, Any], known: set[str]) -> None:
    object_id = item["id"].lower()
    if "@removed" in item:
        reading.deleted_users.add(object_id)
    else:
        reading.deleted_users.discard(object_id)
    if object_id not in known:
        return
    delta = reading.users.setdefault(object_id, UserDelta())
    delta.removed = "@removed" in item
    if delta.removed:
        return
    reading.seen_users.add(object_id)
    if isinstance(item.get("accountEnabled"), bool):
        delta.enabled = item["accountEnabled"]
    fields = {"mail": "email", "displayName": "display_name", "userPrincipalName": "upn"}
    for key, column in fields.items():
        if key in item and (item[key] is None or isinstance(item[key], str)):
            # Outside input, stored as sign-in stores claims: clipped, no control characters.
            delta.profile[column] = clean_text(item[key], PROFILE_LENGTHS[column])


def _read_group(reading: Reading, item: dict[str, Any]) -> None:
    group_id = sys.intern(item["id"].lower())
    if "@removed" in item:
        reading.deleted_groups.add(group_id)
        reading.added.pop(group_id, None)
        return
    reading.deleted_groups.discard(group_id)
    name = clean_text(item.get("displayName"), graph.NAME_LENGTH)
    if name:
        reading.names[group_id] = name
    members = item.get("members@delta", [])
    if not isinstance(members, list):
        raise graph.GraphError("Graph's group delta carries a malformed members@delta list")
    added = reading.added.setdefault(group_id, {})
    for member in members:
        _read_member(reading, group_id, added, member)


def _read_member(reading: Reading, group_id: str, added: dict[str, bool], member: Any) -> None:
    if not isinstance(member, dict) or not isinstance(member.get("id"), str):
        raise graph.GraphError("Graph's group delta carries a member without an id")
    kind = member.get("@odata.type", USER_TYPE)
    if kind not in (USER_TYPE, GROUP_TYPE):
        return  # devices, contacts, service principals: never in a user's groups claim
    member_id = sys.intern(member["id"].lower())
    if "@removed" in member:  # either {"reason": "deleted"} or the bare string form
        added.pop(member_id, None)
        reading.removed.setdefault(group_id, set()).add(member_id)
    else:
        added[member_id] = kind == GROUP_TYPE
        reading.removed.get(group_id, set()).discard(member_id)


# -- working out the changes -----------------------------------------------------------------


@dataclass
class UserChange:
    """What happens to one known user."""

    user_id: int
    object_id: str
    label: str
    disable: bool = False
    enable: bool = False
    add: list[tuple[int, str]] = field(default_factory=list)  # (group id, name)
    remove: list[tuple[int, int, str]] = field(
        default_factory=list
    )  # (membership id, group id, name)
    admin: bool | None = None
    profile: dict[str, str | None] = field(default_factory=dict)

    @property
    def memberships_changed(self) -> bool:
        """Tell whether the user joins or leaves a group."""
        return bool(self.add or self.remove)

    def summary(self) -> dict[str, Any]:
        """Describe the change for the console."""
        return {
            "object_id": self.object_id,
            "user": self.label,
            "disable": self.disable,
            "enable": self.enable,
            "added": sorted(n for _, n in self.add),
            "removed": sorted(n for _, _, n in self.remove),
            "admin": self.admin,
        }


@dataclass
class Plan:
    """A tenant's changes, worked out inside its transaction before the hold check."""

    tenant_id: str
    changes: list[UserChange] = field(default_factory=list)
    renames: list[tuple[Group, str]] = field(default_factory=list)
    users: dict[int, User] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> None:
        """Put the plan's counts and summaries into the tenant's outcome."""
        for change in self.changes:
            outcome.users_disabled += change.disable
            outcome.users_enabled += change.enable
            outcome.memberships_added += len(change.add)
            outcome.memberships_removed += len(change.remove)
            if (
                change.disable
                or change.enable
                or change.memberships_changed
                or change.admin is not None
            ):
                if len(outcome.changes) < MAX_RECORDED_CHANGES:
                    outcome.changes.append({"tenant_id": self.tenant_id, **change.summary()})

    def apply(self, reading: Reading) -> None:
        """Write the users' changes and their sync records (the edges are written already)."""
        for group, name in self.renames:
            log.info("reconcile: group %r renamed to %r", group.name, name)
            group.name = name
        for change in self.changes:
            _apply_user(self.users[change.user_id], change)
        db.session.flush()


def _plan(tenant_id: str, reading: Reading) -> Plan:
    """Write the edges and names, then work out every known user's changes."""
    _write_edges(tenant_id, reading)
    _write_names(tenant_id, reading.names)
    db.session.flush()
    plan = Plan(tenant_id)
    linked = _linked_groups(tenant_id)
    plan.renames = _renames(linked, reading.names)
    names = {oid: name for oid, (_, name, _) in linked.items()}
    names.update({oid: n for oid, n in reading.names.items() if oid in linked})
    wanted_by_user = _transitive(tenant_id, set(linked) | _admin_ids())
    memberships = _memberships(tenant_id)
    users = db.session.scalars(
        sa.select(User).where(User.user_type == EXTERNAL, User.tenant_id == tenant_id)
    ).all()
    matcher = _filter()
    for user in users:
        plan.users[user.id] = user
        change = _user_change(
            user,
            reading,
            wanted_by_user.get(user.object_id or "", set()),
            linked,
            names,
            memberships.get(user.id, []),
            matcher,
        )
        if change is not None:
            plan.changes.append(change)
    return plan


def _write_edges(tenant_id: str, reading: Reading) -> None:
    """Bring directory_edges in line with what the rounds said."""
    edges = DirectoryEdge.__table__
    if reading.full:
        db.session.execute(sa.delete(edges).where(edges.c.tenant_id == tenant_id))
    else:
        gone = sorted(reading.deleted_groups | reading.deleted_users)
        for chunk in _chunks(gone):
            db.session.execute(
                sa.delete(edges).where(
                    edges.c.tenant_id == tenant_id,
                    sa.or_(edges.c.group_id.in_(chunk), edges.c.member_id.in_(chunk)),
                )
            )
        for group_id, members in reading.removed.items():
            for chunk in _chunks(sorted(members)):
                db.session.execute(
                    sa.delete(edges).where(
                        edges.c.tenant_id == tenant_id,
                        edges.c.group_id == group_id,
                        edges.c.member_id.in_(chunk),
                    )
                )
    rows = (
        {"tenant_id": tenant_id, "group_id": g, "member_id": m, "is_group": is_group}
        for g, members in reading.added.items()
        for m, is_group in members.items()
    )
    insert = dialect_insert(db.session, edges)
    if not reading.full:
        insert = insert.on_conflict_do_nothing(
            index_elements=["tenant_id", "group_id", "member_id"]
        )
    for batch in _batches(rows, 5000):
        db.session.execute(insert, batch)


def _write_names(tenant_id: str, names: dict[str, str | None]) -> None:
    """Store group names that changed or are new in the name cache (read by sign-in too)."""
    if not names:
        return
    cached: dict[str, str | None] = {}
    for chunk in _chunks(sorted(names)):
        query = sa.select(EntraGroup.object_id, EntraGroup.display_name).where(
            EntraGroup.object_id.in_(chunk)
        )
        cached.update({oid: name for oid, name in db.session.execute(query)})
    now = utcnow()
    rows = [
        {"object_id": oid, "tenant_id": tenant_id, "display_name": name, "read_at": now}
        for oid, name in sorted(names.items())
        if name and cached.get(oid, "") != name
    ]
    stmt = dialect_insert(db.session, EntraGroup)
    stmt = stmt.on_conflict_do_update(
        index_elements=["object_id"],
        set_={"display_name": stmt.excluded.display_name, "read_at": stmt.excluded.read_at},
    )
    for batch in _batches(iter(rows), 5000):
        db.session.execute(stmt, batch)


def _linked_groups(tenant_id: str) -> dict[str, tuple[Group, str | None, int]]:
    """Return the tenant's Entra groups linked to a local group: object ID -> (group, name, id)."""
    query = (
        sa.select(EntraGroup.object_id, Group, EntraGroup.display_name, EntraGroup.id)
        .join(Group, Group.entra_group_id == EntraGroup.id)
        .where(EntraGroup.tenant_id == tenant_id)
    )
    return {oid: (group, name, eid) for oid, group, name, eid in db.session.execute(query)}


def _renames(
    linked: dict[str, tuple[Group, str | None, int]], names: dict[str, str | None]
) -> list[tuple[Group, str]]:
    """Mirror mode: a mirrored group follows its Entra group's new name unless that clashes."""
    if current_app.config["GROUP_SYNC_MODE"] != "mirror":
        return []
    renames: list[tuple[Group, str]] = []
    for oid, (group, _, _) in linked.items():
        name = names.get(oid)
        if not name or name == group.name or group.source == BUILTIN:
            continue
        clash = db.session.scalar(
            sa.select(Group.id).where(Group.name == name, Group.id != group.id).limit(1)
        )
        if clash is None:
            renames.append((group, name))
        else:
            log.warning("reconcile: group %r keeps its name: %r is taken", group.name, name)
    return renames


def _admin_ids() -> set[str]:
    return {i.lower() for i in current_app.config.get("PORTAL_ADMIN_GROUP_IDS") or []}


def _transitive(tenant_id: str, wanted: set[str]) -> dict[str, set[str]]:
    """Return, per known user, the wanted groups they are in directly or through nesting."""
    edges = DirectoryEdge.__table__
    parents: dict[str, list[str]] = {}
    nested = sa.select(edges.c.member_id, edges.c.group_id).where(
        edges.c.tenant_id == tenant_id, edges.c.is_group.is_(True)
    )
    for member_id, group_id in db.session.execute(nested):
        parents.setdefault(member_id, []).append(group_id)
    closure: dict[str, frozenset[str]] = {}
    users = (
        sa.select(edges.c.member_id, edges.c.group_id)
        .join(
            User, sa.and_(User.tenant_id == edges.c.tenant_id, User.object_id == edges.c.member_id)
        )
        .where(edges.c.tenant_id == tenant_id, edges.c.is_group.is_(False))
    )
    result: dict[str, set[str]] = {}
    for member_id, group_id in db.session.execute(users):
        if group_id not in closure:
            closure[group_id] = _ancestors(group_id, parents, wanted)
        result.setdefault(member_id, set()).update(closure[group_id])
    return result


def _ancestors(start: str, parents: dict[str, list[str]], wanted: set[str]) -> frozenset[str]:
    """Return the wanted groups among start and every group above it (cycles are harmless)."""
    seen = {start}
    queue = deque([start])
    while queue:
        for parent in parents.get(queue.popleft(), ()):
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return frozenset(seen & wanted)


def _memberships(
    tenant_id: str, user_id: int | None = None
) -> dict[int, list[tuple[int, int, str, str]]]:
    """Return known users' memberships: user id -> (membership id, group id, source, name)."""
    query = (
        sa.select(
            GroupMembership.user_id,
            GroupMembership.id,
            Group.id,
            GroupMembership.source,
            Group.name,
        )
        .join(Group, Group.id == GroupMembership.group_id)
        .join(User, User.id == GroupMembership.user_id)
        .where(User.user_type == EXTERNAL, User.tenant_id == tenant_id)
    )
    if user_id is not None:
        query = query.where(User.id == user_id)
    found: dict[int, list[tuple[int, int, str, str]]] = {}
    for uid, membership_id, group_id, source, name in db.session.execute(query):
        found.setdefault(uid, []).append((membership_id, group_id, source, name))
    return found


def _filter() -> re.Pattern[str] | None:
    pattern = current_app.config.get("GROUP_SYNC_FILTER")
    return re.compile(pattern) if pattern else None


def _user_change(
    user: User,
    reading: Reading,
    in_groups: set[str],
    linked: dict[str, tuple[Group, str | None, int]],
    names: dict[str, str | None],
    memberships: list[tuple[int, int, str, str]],
    matcher: re.Pattern[str] | None,
) -> UserChange | None:
    """Work out one known user's changes; None when nothing changes."""
    oid = user.object_id or ""
    change = UserChange(user.id, oid, user.label)
    delta = reading.users.get(oid)
    gone = (delta is not None and delta.removed) or (reading.full and oid not in reading.seen_users)
    disabled_in_entra = gone or (delta is not None and delta.enabled is False)
    if disabled_in_entra and user.is_active:
        change.disable = True
    elif delta is not None and delta.enabled and not user.is_active and user.is_entra_disabled:
        change.enable = True
    if delta is not None and not gone:
        change.profile = {
            k: v
            for k, v in delta.profile.items()
            if getattr(user, k) != v and (v or k != "display_name")
        }
    _membership_changes(change, in_groups, linked, names, memberships, matcher)
    is_admin = not _admin_ids().isdisjoint(in_groups)
    if is_admin != user.is_admin:
        change.admin = is_admin
    touched = change.disable or change.enable or change.profile or change.memberships_changed
    return change if touched or change.admin is not None else None


def _membership_changes(
    change: UserChange,
    in_groups: set[str],
    linked: dict[str, tuple[Group, str | None, int]],
    names: dict[str, str | None],
    memberships: list[tuple[int, int, str, str]],
    matcher: re.Pattern[str] | None,
) -> None:
    """Join the linked groups Entra lists and leave the Entra-sourced ones it no longer does."""
    wanted: dict[int, str] = {}
    unnamed: set[int] = set()  # a linked group without a usable name keeps its memberships
    for oid, (group, _, _) in linked.items():
        name = names.get(oid)
        if name is None:
            unnamed.add(group.id)
        elif oid in in_groups and (matcher is None or matcher.search(name)):
            wanted[group.id] = group.name
    have = {group_id for _, group_id, _, _ in memberships}
    change.add = sorted((gid, name) for gid, name in wanted.items() if gid not in have)
    change.remove = [
        (mid, gid, name)
        for mid, gid, source, name in memberships
        if source == MEMBERSHIP_ENTRA and gid not in wanted and gid not in unnamed
    ]


# -- one user, on an admin's request ----------------------------------------------------------


def preview_user(user: User, group_ids: Iterable[str]) -> UserChange:
    """Work out one user's membership and admin changes from their transitive group IDs."""
    tenant_id = user.tenant_id or ""
    linked = _linked_groups(tenant_id)
    names = {oid: name for oid, (_, name, _) in linked.items()}
    in_groups = {i.lower() for i in group_ids}
    change = UserChange(user.id, user.object_id or "", user.label)
    current = _memberships(tenant_id, user.id).get(user.id, [])
    _membership_changes(change, in_groups, linked, names, current, _filter())
    is_admin = not _admin_ids().isdisjoint(in_groups)
    if is_admin != user.is_admin:
        change.admin = is_admin
    return change


def apply_user(user: User, change: UserChange) -> None:
    """Apply a previewed change to one user (the caller commits)."""
    _apply_user(user, change)
    db.session.flush()


# -- writing ---------------------------------------------------------------------------------


def _apply_user(user: User, change: UserChange) -> None:
    """Write one user's changes, their sync record and audit events."""
    for column, value in change.profile.items():
        setattr(user, column, value)
    if change.disable:
        user.is_active, user.is_entra_disabled = False, True
        audit.record(
            ACTOR, audit.USER_DISABLED, _target(user), reason="disabled or deleted in Entra"
        )
        end_sessions(user)
    elif change.enable:
        user.is_active, user.is_entra_disabled = True, False
        audit.record(ACTOR, audit.USER_ENABLED, _target(user), reason="enabled in Entra")
    if change.admin is not None:
        user.is_admin = change.admin
        action = audit.ADMIN_GRANTED if change.admin else audit.ADMIN_REVOKED
        audit.record(ACTOR, action, _target(user))
    if change.memberships_changed:
        _write_memberships(user, change)


def _write_memberships(user: User, change: UserChange) -> None:
    now = utcnow()
    if change.add:
        rows = [
            {"group_id": gid, "user_id": user.id, "source": MEMBERSHIP_ENTRA, "created_at": now}
            for gid, _ in change.add
        ]
        stmt = dialect_insert(db.session, GroupMembership).on_conflict_do_nothing(
            index_elements=["group_id", "user_id"]
        )
        db.session.execute(stmt, rows)
    ids = [mid for mid, _, _ in change.remove]
    for chunk in _chunks(ids):
        db.session.execute(sa.delete(GroupMembership).where(GroupMembership.id.in_(chunk)))
    db.session.expire(user, ["memberships"])
    db.session.add(
        SyncRecord(
            user_id=user.id,
            tenant_id=user.tenant_id,
            object_id=user.object_id,
            status=OK,
            source=FROM_RECONCILE,
            added=sorted(n for _, n in change.add),
            removed=sorted(n for _, _, n in change.remove),
            graph_calls=0,
        )
    )


def end_sessions(user: User) -> None:
    """End the user's open session records (reason `reconcile`); enabling later revives none."""
    count = sessions.end_all(user.id, RECONCILE_ENDED)
    log.info("reconcile: %d session(s) of %s/%s end", count, user.tenant_id, user.object_id)


def _target(user: User) -> str:
    return operations.describe(user)


def _store_links(tenant_id: str, reading: Reading) -> None:
    state = db.session.get(DeltaState, tenant_id) or DeltaState(tenant_id=tenant_id)
    state.users_link, state.groups_link, state.updated_at = (
        reading.users_link,
        reading.groups_link,
        utcnow(),
    )
    db.session.add(state)
    db.session.flush()


def _record_run(outcome: Outcome, started: float, started_at: Any, actor: audit.Actor) -> None:
    run = ReconcileRun(
        started_at=started_at,
        finished_at=utcnow(),
        status=outcome.status,
        is_full=outcome.full,
        users_disabled=outcome.users_disabled,
        users_enabled=outcome.users_enabled,
        memberships_added=outcome.memberships_added,
        memberships_removed=outcome.memberships_removed,
        graph_calls=outcome.graph_calls,
        duration_ms=round((time.monotonic() - started) * 1000),
        reason=outcome.reason,
        changes=outcome.changes,
        actor=actor.name,
    )
    db.session.add(run)
    db.session.flush()
    outcome.run_id = run.id
    action = audit.RECONCILE_HELD if outcome.status == RUN_HELD else audit.RECONCILE_RUN
    audit.record(actor, action, f"run:{run.id}", **outcome.as_json())


# -- one run at a time -----------------------------------------------------------------------


@contextmanager
def run_lock() -> Iterator[bool]:
    """Hold the cross-instance reconciliation lock; yields False when another run holds it."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            locked = connection.scalar(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_LOCK_KEY)))
            connection.commit()
            try:
                yield bool(locked)
            finally:
                if locked:
                    connection.scalar(sa.select(sa.func.pg_advisory_unlock(ADVISORY_LOCK_KEY)))
                    connection.commit()
        return
    locked = _take_lock_row()
    try:
        yield locked
    finally:
        if locked:
            with db.engine.begin() as connection:
                connection.execute(sa.delete(ReconcileLock).where(ReconcileLock.name == LOCK_NAME))


def _take_lock_row() -> bool:
    """Insert the lock row in its own transaction; take over one left by a dead run."""
    now = utcnow()
    try:
        with db.engine.begin() as connection:
            connection.execute(sa.insert(ReconcileLock).values(name=LOCK_NAME, acquired_at=now))
        return True
    except IntegrityError:
        pass
    with db.engine.begin() as connection:
        taken = connection.execute(
            sa.update(ReconcileLock)
            .where(ReconcileLock.name == LOCK_NAME, ReconcileLock.acquired_at < now - STALE_LOCK)
            .values(acquired_at=now)
        )
        return taken.rowcount == 1


# -- helpers ---------------------------------------------------------------------------------


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    return (items[i : i + CHUNK] for i in range(0, len(items), CHUNK))


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
