"""Group sync at sign-in: Entra group IDs to names through Graph, then local memberships.

`load_snapshot` reads the user, then their memberships, groups and those groups' cached names as
plain rows (no ORM objects: for 150 groups that saves ~3 ms of CPU per sign-in); `resolve_groups`
then only reads (the rest of the name cache, then Graph), so no
database lock is held while Graph answers; `apply` then writes everything and only flushes: the
sign-in view commits once. Writes are O(changed): an unchanged sign-in writes no membership
rows, and with fresh names it runs four statements in all (the two reads, UPDATE users, INSERT
sync_records).

The memberships are read before the user's row is locked (no lock while Graph answers); the
sign-in then updates the user's row only if nobody signed them in since (`users.stamp_sign_in`),
which also locks it. If somebody did, the memberships are read again under the lock, so two
overlapping sign-ins apply one after the other and the last token wins whole.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import current_app

from portal.config import group_filter
from portal.database import insert
from portal.extensions import db
from portal.log import audit_log
from portal.models import EntraGroup, Group, GroupMembership, SyncRecord, User
from portal.models.base import utcnow
from portal.models.group import (
    ALL_USERS,
    BUILTIN,
    ENTRA,
    LOCAL,
    MEMBERSHIP_BUILTIN,
    MEMBERSHIP_ENTRA,
)
from portal.models.sync import FAILED, FROM_CLAIM, FROM_GRAPH, OK, SKIPPED, UNCHANGED
from portal.services import audit, graph
from portal.services.groups import all_users_group, entra_name_counts
from portal.services.operations import describe
from portal.services.policy import app_roles

CHUNK = 500  # rows or IDs per statement: stays far below SQLite's bound-parameter limit


class GroupRow(NamedTuple):
    """The columns of a group that sync reads: a light stand-in for a loaded `Group`."""

    id: int
    name: str
    source: str
    entra_group_id: int | None


class Held(NamedTuple):
    """One of the user's memberships (its id and source) with its group."""

    id: int
    source: str
    group: GroupRow


@dataclass
class Snapshot:
    """What the database holds for one External user, read before any write."""

    user: User | None = None
    # The user's memberships with their groups; None when not loaded (no user yet).
    memberships: list[Held] | None = None
    # The user's groups linked to an Entra group, by entra_groups.id.
    linked: dict[int, GroupRow | Group] = field(default_factory=dict)
    # Those Entra groups' cache rows: object ID -> (entra_groups.id, name, read_at).
    cached: dict[str, tuple[int, str | None, datetime]] = field(default_factory=dict)


@dataclass
class Resolution:
    """Where a sign-in's group IDs came from and what they resolved to."""

    source: str | None = None
    status: str | None = None  # None while the groups are known; SKIPPED or FAILED otherwise
    reason: str | None = None
    tenant_id: str = ""
    # Every group ID the user is in; None when unknown (then admin status stays as it was).
    group_ids: list[str] | None = None
    # The token's app roles (`roles` claim); None when no token was read (reconciliation).
    roles: list[str] | None = None
    # Group names by object ID, from the cache or Graph; IDs that are no groups are absent.
    names: dict[str, str] = field(default_factory=dict)
    # What Graph said this sign-in, to store in the cache: a name, or None for "no group".
    graph_names: dict[str, str | None] = field(default_factory=dict)
    read_at: datetime = field(default_factory=utcnow)
    # Cache rows already loaded (object ID -> entra_groups.id), so apply need not reload them.
    cache_ids: dict[str, int] = field(default_factory=dict)
    snapshot: Snapshot = field(default_factory=Snapshot)
    graph_calls: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def known(self) -> bool:
        """Tell whether the groups are known, so memberships may follow them."""
        return self.status is None


def load_snapshot(tenant_id: str, object_id: str) -> Snapshot:
    """Load an External user, then their memberships, groups and those groups' cache rows."""
    query = sa.select(User).where(User.tenant_id == tenant_id, User.object_id == object_id)
    user = db.session.scalars(query).one_or_none()
    if user is None:
        return Snapshot()
    snapshot = Snapshot(user=user, memberships=[])
    cache = (EntraGroup.object_id, EntraGroup.display_name, EntraGroup.read_at)
    rows = db.session.execute(
        _held_query(user.id, *cache).outerjoin(EntraGroup, EntraGroup.id == Group.entra_group_id)
    )
    for *held, entra_object_id, name, read_at in rows:
        snapshot.memberships.append(membership := _held(*held))
        if (entra_id := membership.group.entra_group_id) is not None:
            snapshot.linked[entra_id] = membership.group
            snapshot.cached[entra_object_id] = (entra_id, name, read_at)
    return snapshot


def _held_query(user_id: int, *extra: Any) -> sa.Select[Any]:
    """Select a user's memberships with their groups' columns, as plain rows."""
    return (
        sa.select(
            GroupMembership.id,
            GroupMembership.source,
            Group.id,
            Group.name,
            Group.source,
            Group.entra_group_id,
            *extra,
        )
        .join(Group, Group.id == GroupMembership.group_id)
        .where(GroupMembership.user_id == user_id)
    )


def _held(
    membership_id: int, source: str, group_id: int, name: str, kind: str, entra_id: int | None
) -> Held:
    """Build one membership row from `_held_query`'s first six columns."""
    return Held(membership_id, source, GroupRow(group_id, name, kind, entra_id))


def resolve_groups(
    claims: Mapping[str, Any], access_token: str | None, snapshot: Snapshot | None = None
) -> Resolution:
    """Work out the user's groups before any write: cache reads and Graph calls only."""
    resolution = Resolution(source=_source(claims), tenant_id=str(claims["tid"]).lower())
    resolution.roles = app_roles(claims)
    resolution.snapshot = snapshot or Snapshot()
    if resolution.source is None:
        resolution.status = SKIPPED
        resolution.reason = "the token carried neither a groups claim nor an overage marker"
        return resolution
    call = graph.client().call(access_token)
    try:
        _resolve(resolution, claims, call)
    except graph.GraphError as exc:
        resolution.status, resolution.reason = FAILED, exc.reason
    resolution.graph_calls = call.calls
    return resolution


def _source(claims: Mapping[str, Any]) -> str | None:
    """Return where the group IDs come from: the claim, Graph (overage), or nowhere."""
    if "groups" in claims:
        return FROM_CLAIM
    claim_names = claims.get("_claim_names")
    if isinstance(claim_names, Mapping) and "groups" in claim_names:
        # The overage marker's `_claim_sources` URL names the retired Azure AD Graph and is
        # input from the token: it is never called. Microsoft Graph is asked instead.
        return FROM_GRAPH
    return None


def _resolve(resolution: Resolution, claims: Mapping[str, Any], call: graph.GraphCall) -> None:
    """Fill in the group IDs and their names, calling Graph only for what the cache lacks."""
    if resolution.source == FROM_CLAIM:
        raw = claims["groups"]
        if not isinstance(raw, list):
            raise graph.GraphError("the groups claim is not a list")
        resolution.group_ids = list(dict.fromkeys(str(i).lower() for i in raw))
    else:
        # IDs only, in one call; names come from the cache, then getByIds for the rest.
        ids = call.member_group_ids()
        if ids is None:  # past getMemberGroups' 11,000: page through, names included
            found = call.transitive_groups()
            ids, resolution.graph_names = list(found), {i: n for i, n in found.items() if n}
        resolution.group_ids = ids
    unnamed = [i for i in resolution.group_ids if i not in resolution.graph_names]
    fresh = _fresh_names(unnamed, resolution)
    missing = [i for i in unnamed if i not in fresh]
    if missing:
        # Only names are cached: an ID Graph leaves out or names not at all is asked again next
        # time, never remembered as "no group" (an omission proves nothing).
        resolution.graph_names.update(call.lookup(missing).names)
    known = {**fresh, **resolution.graph_names}
    resolution.names = {i: n for i in resolution.group_ids if (n := known.get(i))}


def _fresh_names(ids: Sequence[str], resolution: Resolution) -> dict[str, str]:
    """Return the cached names younger than GROUP_NAME_TTL_SECONDS."""
    ttl = timedelta(seconds=current_app.config["GROUP_NAME_TTL_SECONDS"])
    cached = resolution.snapshot.cached
    rows = [(*cached[i], i) for i in ids if i in cached]
    # Only IDs outside the user's linked groups cost a query (new groups, unsynced, no group).
    columns = (EntraGroup.id, EntraGroup.display_name, EntraGroup.read_at, EntraGroup.object_id)
    for chunk in _chunks([i for i in ids if i not in cached]):
        rows.extend(db.session.execute(sa.select(*columns).where(EntraGroup.object_id.in_(chunk))))
    fresh: dict[str, str] = {}
    for row_id, name, read_at, object_id in rows:
        resolution.cache_ids[object_id] = row_id
        if name and resolution.read_at - read_at < ttl:  # a row without a name is asked again
            fresh[object_id] = name
    return fresh


def apply(user: User, resolution: Resolution) -> SyncRecord:
    """Bring the user's memberships and admin status in line, and record the sync."""
    added: list[str] = []
    removed: list[str] = []
    current = resolution.snapshot.memberships
    if current is None or resolution.snapshot.user is not user:
        current = _memberships(user)
    if user.is_external and user.is_active:
        _join_all_users(user, current, added)
    if resolution.known:
        _store_names(resolution)
        dropped: set[int] = set()
        if resolution.graph_names and current_app.config["GROUP_SYNC_MODE"] == "match":
            dropped = _unlink_ambiguous(set(resolution.graph_names.values()))
        known = {e: g for e, g in resolution.snapshot.linked.items() if g.id not in dropped}
        linked = _linked_groups(_synced(resolution), known)
        _follow_entra_memberships(user, current, linked, _unnamed(resolution), added, removed)
    if user.is_external:
        roles = resolution.roles if resolution.roles is not None else user.app_roles
        _follow_admin(user, resolution.group_ids, roles or [])
    return _record(user, resolution, added, removed)


def _memberships(user: User) -> list[Held]:
    """Load all of the user's memberships and their groups in one query."""
    return [_held(*row) for row in db.session.execute(_held_query(user.id))]


def _join_all_users(user: User, current: list[Held], added: list[str]) -> None:
    """Put an active External user in the built-in `All users` group if they are not yet."""
    if any(h.group.source == BUILTIN and h.group.name == ALL_USERS for h in current):
        return
    group = all_users_group()
    if _insert_memberships(user, [group.id], MEMBERSHIP_BUILTIN):
        added.append(group.name)
        _audit(user, "joined", group.name)


def _store_names(resolution: Resolution) -> None:
    """Write what Graph said into the name cache, safe against concurrent sign-ins."""
    rows = [
        {
            "object_id": object_id,
            "tenant_id": resolution.tenant_id,
            "display_name": name,
            "read_at": resolution.read_at,
        }
        for object_id, name in sorted(resolution.graph_names.items())  # one lock order for all
    ]
    stmt = insert(db.session, EntraGroup)
    stmt = stmt.on_conflict_do_update(
        index_elements=["object_id"],
        set_={"display_name": stmt.excluded.display_name, "read_at": stmt.excluded.read_at},
    )
    _execute_many(stmt, rows)
    new = [
        i
        for i in resolution.graph_names
        if resolution.graph_names[i] and i not in resolution.cache_ids
    ]
    for chunk in _chunks(new):
        query = sa.select(EntraGroup.object_id, EntraGroup.id).where(
            EntraGroup.object_id.in_(chunk)
        )
        resolution.cache_ids.update({oid: row_id for oid, row_id in db.session.execute(query)})


def _synced(resolution: Resolution) -> dict[int, str]:
    """Return the Entra groups that sync (entra_groups.id -> name), after GROUP_SYNC_FILTER."""
    pattern = current_app.config.get("GROUP_SYNC_FILTER")
    matcher = _filter(pattern) if pattern else None
    return {
        resolution.cache_ids[object_id]: name
        for object_id, name in resolution.names.items()
        if matcher is None or matcher.search(name)
    }


@functools.lru_cache(maxsize=8)
def _filter(pattern: str) -> Any:
    """Compile GROUP_SYNC_FILTER once per process (RE2: linear time on any name)."""
    return group_filter(pattern)


def _linked_groups(
    synced: dict[int, str], known: Mapping[int, GroupRow | Group]
) -> dict[int, GroupRow | Group]:
    """Return the local group of each synced Entra group (entra_groups.id -> Group).

    `known` holds the links already loaded with the user's memberships; only others are queried.
    """
    linked: dict[int, GroupRow | Group] = {
        e: g for e, g in known.items() if e in synced and g.entra_group_id == e
    }
    linked.update(_load_linked({eid: n for eid, n in synced.items() if eid not in linked}))
    unlinked = {eid: name for eid, name in synced.items() if eid not in linked}
    if current_app.config["GROUP_SYNC_MODE"] == "mirror":
        _rename(linked, synced)
        if unlinked:
            _create_mirrors(unlinked)
            linked.update(_load_linked(unlinked))
    elif unlinked:
        linked.update(_link_by_name(unlinked))
    return linked


def _load_linked(synced: Mapping[int, str]) -> dict[int, GroupRow | Group]:
    """Load the local groups linked to these Entra groups, by object ID link only (plain rows)."""
    linked: dict[int, GroupRow | Group] = {}
    columns = (Group.id, Group.name, Group.source, Group.entra_group_id)
    for chunk in _chunks(list(synced)):
        query = sa.select(*columns).where(Group.entra_group_id.in_(chunk))
        linked.update({row.entra_group_id: GroupRow(*row) for row in db.session.execute(query)})
    return linked


def _rename(linked: dict[int, GroupRow | Group], synced: dict[int, str]) -> None:
    """Give mirrored groups the name Entra has now."""
    for eid, group in list(linked.items()):
        if group.name != synced[eid] and group.source != BUILTIN:
            audit_log.info("group sync: group %r renamed to %r", group.name, synced[eid])
            renamed = db.session.get_one(Group, group.id)
            renamed.name = synced[eid]
            linked[eid] = renamed


def _create_mirrors(unlinked: dict[int, str]) -> None:
    """Create a local group per Entra group; a concurrent sign-in creating it too is fine."""
    now = utcnow()
    rows = [
        {"name": name, "source": ENTRA, "description": "", "entra_group_id": eid, "created_at": now}
        for eid, name in sorted(unlinked.items())
    ]
    _execute_many(
        insert(db.session, Group).on_conflict_do_nothing(index_elements=["entra_group_id"]), rows
    )
    audit_log.info("group sync: created %d mirrored group(s)", len(rows))
    audit.record_many(audit.SYNC, audit.GROUP_CREATED, [row["name"] for row in rows], source=ENTRA)


def _link_by_name(unlinked: dict[int, str]) -> dict[int, Group]:
    """Match mode: link each Entra group to the one unlinked local group of exactly its name,
    while it is the only Entra group of that name the portal knows, in any admitted tenant."""
    candidates: dict[str, list[Group]] = {}
    for chunk in _chunks(sorted(set(unlinked.values()))):
        query = sa.select(Group).where(
            Group.name.in_(chunk),
            Group.entra_group_id.is_(None),
            Group.source.in_([LOCAL, ENTRA]),
        )
        for group in db.session.scalars(query):
            candidates.setdefault(group.name, []).append(group)
    # A name two Entra groups share (one a user made themselves, or another tenant's), or two
    # local groups share, says nothing: link neither; admins see it and pin the right one.
    known = entra_name_counts(candidates)
    linked: dict[int, Group] = {}
    for eid, name in unlinked.items():
        groups = candidates.get(name, [])
        if len(groups) == 1 and known.get(name) == 1:
            groups[0].entra_group_id = eid
            linked[eid] = groups[0]
            audit_log.info("group sync: linked local group %r to its Entra group", name)
    return linked


def _unlink_ambiguous(names: Iterable[str]) -> set[int]:
    """Match mode: drop the name links of local groups whose name more Entra groups now carry,
    and return those groups' IDs.

    Called with the names Graph just gave, the only way a name becomes ambiguous. A link an
    admin pinned stays; the members who joined through Entra leave at their next sign-in.
    """
    dropped: set[int] = set()
    ambiguous = sorted(name for name, count in entra_name_counts(names).items() if count > 1)
    for chunk in _chunks(ambiguous):
        query = sa.select(Group).where(
            Group.name.in_(chunk),
            Group.source == LOCAL,
            Group.entra_group_id.is_not(None),
            Group.is_link_pinned.is_(False),
        )
        for group in db.session.scalars(query):
            group.entra_group_id = None
            dropped.add(group.id)
            audit_log.warning("group sync: %r is ambiguous in Entra: link dropped", group.name)
    return dropped


def _unnamed(resolution: Resolution) -> set[int]:
    """Return the cache rows (entra_groups.id) of listed groups Graph gave no usable name.

    Such a group is still the user's: without a name it cannot be filtered or linked, so its
    memberships stay as they are rather than being counted as left.
    """
    ids = resolution.group_ids or []
    return {row for i in ids if i not in resolution.names and (row := resolution.cache_ids.get(i))}


def _follow_entra_memberships(
    user: User,
    current: list[Held],
    linked: Mapping[int, GroupRow | Group],
    unnamed: set[int],
    added: list[str],
    removed: list[str],
) -> None:
    """Join the listed groups and leave the entra-sourced memberships no longer listed."""
    have = {h.group.id for h in current}
    wanted = {g.id: g.name for g in linked.values()}
    joining = sorted(gid for gid in wanted if gid not in have)
    if joining:
        _insert_memberships(user, joining, MEMBERSHIP_ENTRA)
        added.extend(wanted[gid] for gid in joining)
    leaving = [
        h
        for h in current
        if h.source == MEMBERSHIP_ENTRA
        and h.group.id not in wanted
        and h.group.entra_group_id not in unnamed
    ]
    for chunk in _chunks([h.id for h in leaving]):
        db.session.execute(sa.delete(GroupMembership).where(GroupMembership.id.in_(chunk)))
    removed.extend(h.group.name for h in leaving)
    for name in sorted(wanted[gid] for gid in joining):
        _audit(user, "joined", name)
    for name in sorted(h.group.name for h in leaving):
        _audit(user, "left", name)


def _insert_memberships(user: User, group_ids: Iterable[int], source: str) -> bool:
    """Insert memberships, skipping any a concurrent sign-in of the same user just added."""
    now = utcnow()
    rows = [
        {"group_id": gid, "user_id": user.id, "source": source, "created_at": now}
        for gid in group_ids
    ]
    stmt = insert(db.session, GroupMembership).on_conflict_do_nothing(
        index_elements=["group_id", "user_id"]
    )
    _execute_many(stmt, rows)
    # The ORM did not see these rows: make `user.memberships` reload when next read.
    db.session.expire(user, ["memberships"])
    return bool(rows)


def _follow_admin(user: User, group_ids: Sequence[str] | None, roles: Sequence[str]) -> None:
    """Make an External user admin exactly when a PORTAL_ADMIN_GROUP_IDS group or a
    PORTAL_ADMIN_APP_ROLES role says so; unknown groups leave a role-less user as they were."""
    by_role = not set(current_app.config.get("PORTAL_ADMIN_APP_ROLES") or []).isdisjoint(roles)
    if group_ids is None and not by_role:
        return
    admin_ids = set(current_app.config["PORTAL_ADMIN_GROUP_IDS"])
    is_admin = by_role or not admin_ids.isdisjoint(group_ids or [])
    if user.is_admin != is_admin:
        user.is_admin = is_admin
        _audit(user, "granted" if is_admin else "lost", "portal admin")
        action = audit.ADMIN_GRANTED if is_admin else audit.ADMIN_REVOKED
        why = "app role" if by_role else "PORTAL_ADMIN_GROUP_IDS"
        audit.record(audit.SYNC, action, describe(user), by=why, user_id=user.id)


def _record(user: User, resolution: Resolution, added: list[str], removed: list[str]) -> SyncRecord:
    """Add the sign-in's sync record: what changed, or why nothing could."""
    status = resolution.status or (OK if added or removed else UNCHANGED)
    record = SyncRecord(
        user_id=user.id,
        tenant_id=user.tenant_id,
        object_id=user.object_id,
        status=status,
        source=resolution.source,
        added=sorted(added),
        removed=sorted(removed),
        reason=resolution.reason,
        graph_calls=resolution.graph_calls,
        duration_ms=round((time.monotonic() - resolution.started) * 1000),
    )
    db.session.add(record)
    db.session.flush()
    if status == FAILED:
        audit_log.warning("group sync: %s failed: %s", _who(user), resolution.reason)
    return record


def _audit(user: User, verb: str, what: str) -> None:
    """Log one sync change on the audit logger."""
    audit_log.info("group sync: %s %s %r", _who(user), verb, what)


def _who(user: User) -> str:
    """Name a user in logs by tenant and object ID (no claims, no tokens)."""
    return f"{user.tenant_id}/{user.object_id}"


def _execute_many(stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run one INSERT over all rows as a bulk executemany (SQLAlchemy's ORM bulk INSERT).

    The statement is compiled once and cached, and the driver sends the rows as a batch; a
    500-row VALUES clause was compiled afresh every time, which cost more than the writes.
    """
    if rows:
        # Core, not the ORM's bulk path: the ORM would process every parameter dict first.
        db.session.connection().execute(stmt, rows)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """Split items into statement-sized chunks."""
    return (items[i : i + CHUNK] for i in range(0, len(items), CHUNK))
