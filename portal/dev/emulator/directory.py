"""In-memory directory: tenants, users, groups, directory roles and transitive membership."""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field

USER = "user"
GROUP = "group"
ROLE = "directoryRole"
_CONTAINERS = (GROUP, ROLE)


def new_guid() -> str:
    """Return a random GUID string, the format of every Entra object id."""
    return str(uuid.uuid4())


def _guid(value: str | None) -> str:
    # Entra object ids are lower-case GUIDs; normalising here keeps every lookup a plain dict hit.
    return str(uuid.UUID(value)) if value else new_guid()


def _utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Tenant:
    """A tenant and its consent settings (scopes are compared case-insensitively)."""

    id: str
    name: str
    domain: str
    # None means "the admin consents to whatever an app asks for".
    granted: set[str] | None = None
    revoked: set[str] = field(default_factory=set)

    def effective_scopes(self, requested: list[str]) -> list[str]:
        """Return the requested scopes this tenant has consented to, in request order."""
        allowed = [s for s in requested if s.lower() not in self.revoked]
        if self.granted is None:
            return allowed
        return [s for s in allowed if s.lower() in self.granted]


@dataclass
class DirObject:
    """A user, group or directory role; unused fields stay at their defaults."""

    id: str
    tenant_id: str
    kind: str
    display_name: str
    upn: str | None = None
    email: str | None = None
    user_type: str = "Member"
    idp: str | None = None
    security_enabled: bool = True
    role_template_id: str | None = None
    account_enabled: bool = True
    created: str = field(default_factory=_utc_stamp)


@dataclass(frozen=True)
class Change:
    """One entry of the change log that delta queries read.

    member_id is None for a change to the object itself; present is False for a removal (of
    the object, or of member_id from the group).
    """

    tenant_id: str
    kind: str
    object_id: str
    member_id: str | None = None
    member_kind: str | None = None
    present: bool = True


def _domain_for(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]", "", name.lower()) or "tenant"
    return f"{slug}.onmicrosoft.com"


class Directory:
    """Thread-safe store of directory objects with cached transitive membership."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.default_tenant_id: str | None = None
        self.objects: dict[str, DirObject] = {}
        # Dicts used as insertion-ordered sets so listings (and therefore paging) are stable.
        self._members: dict[str, dict[str, None]] = {}
        self._parents: dict[str, dict[str, None]] = {}
        self._by_tenant: dict[tuple[str, str], dict[str, None]] = {}
        self._by_upn: dict[tuple[str, str], str] = {}
        self._closure: dict[str, tuple[str, ...]] = {}
        # Append-only: a delta token is a position in this list, so replays are exact.
        self.changes: list[Change] = []

    def _log(self, obj: DirObject, member: DirObject | None = None, present: bool = True) -> None:
        self.changes.append(
            Change(
                obj.tenant_id,
                obj.kind,
                obj.id,
                member.id if member else None,
                member.kind if member else None,
                present,
            )
        )

    # -- tenants -------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str | None, name: str, domain: str | None = None) -> str:
        """Create a tenant (the first becomes the default) and return its id."""
        tid = _guid(tenant_id)
        with self.lock:
            if tid in self.tenants:
                raise ValueError(f"tenant {tid} already exists")
            self.tenants[tid] = Tenant(id=tid, name=name, domain=domain or _domain_for(name))
            self.default_tenant_id = self.default_tenant_id or tid
        return tid

    def tenant(self, tenant_id: str | None) -> Tenant:
        """Return the tenant by id (None = the default tenant); KeyError when unknown."""
        with self.lock:
            tid = tenant_id or self.default_tenant_id
            if tid is None or tid not in self.tenants:
                raise KeyError(f"unknown tenant {tenant_id!r}")
            return self.tenants[tid]

    def all_tenants(self) -> list[Tenant]:
        """Return every tenant, in creation order."""
        with self.lock:
            return list(self.tenants.values())

    def find_tenant(self, segment: str) -> Tenant | None:
        """Resolve an authority path segment (tenant GUID or domain) to a tenant."""
        key = segment.lower()
        with self.lock:
            if key in self.tenants:
                return self.tenants[key]
            return next((t for t in self.tenants.values() if t.domain == key), None)

    # -- objects -------------------------------------------------------------------------

    def _add(self, obj: DirObject) -> str:
        with self.lock:
            self.tenant(obj.tenant_id)
            if obj.id in self.objects:
                raise ValueError(f"object {obj.id} already exists")
            self.objects[obj.id] = obj
            self._by_tenant.setdefault((obj.tenant_id, obj.kind), {})[obj.id] = None
            if obj.upn:
                self._by_upn[(obj.tenant_id, obj.upn.lower())] = obj.id
            self._log(obj)
        return obj.id

    def add_user(
        self,
        tenant_id: str,
        display_name: str,
        upn: str,
        *,
        email: str | None = None,
        object_id: str | None = None,
        user_type: str = "Member",
        idp: str | None = None,
    ) -> str:
        """Create a user and return its object id."""
        obj = DirObject(
            id=_guid(object_id),
            tenant_id=tenant_id,
            kind=USER,
            display_name=display_name,
            upn=upn,
            email=email,
            user_type=user_type,
            idp=idp,
        )
        return self._add(obj)

    def add_group(
        self,
        tenant_id: str,
        display_name: str,
        object_id: str | None = None,
        security_enabled: bool = True,
    ) -> str:
        """Create a group and return its id."""
        obj = DirObject(
            id=_guid(object_id),
            tenant_id=tenant_id,
            kind=GROUP,
            display_name=display_name,
            security_enabled=security_enabled,
        )
        return self._add(obj)

    def add_role(self, tenant_id: str, display_name: str, template_id: str, object_id: str) -> str:
        """Create an activated directory role and return its id."""
        obj = DirObject(
            id=_guid(object_id),
            tenant_id=tenant_id,
            kind=ROLE,
            display_name=display_name,
            role_template_id=template_id,
        )
        return self._add(obj)

    def get(self, object_id: str) -> DirObject | None:
        """Return the object with this id, or None."""
        with self.lock:
            return self.objects.get(object_id.lower())

    def require(self, object_id: str, *kinds: str) -> DirObject:
        """Return the object or raise KeyError when it is missing or of another kind."""
        obj = self.get(object_id)
        if obj is None or (kinds and obj.kind not in kinds):
            raise KeyError(f"no {'/'.join(kinds) or 'object'} with id {object_id}")
        return obj

    def user_by_upn(self, tenant_id: str, upn: str) -> DirObject | None:
        """Return the user with this UPN in the tenant, or None."""
        with self.lock:
            oid = self._by_upn.get((tenant_id, upn.lower()))
            return self.objects.get(oid) if oid else None

    def listing(self, tenant_id: str, kind: str) -> list[DirObject]:
        """Return the tenant's objects of one kind in creation order."""
        with self.lock:
            ids = self._by_tenant.get((tenant_id, kind), {})
            return [self.objects[i] for i in ids]

    def update_user(self, object_id: str, **changes: object) -> None:
        """Change a user's profile fields (email, display_name, upn, ...)."""
        with self.lock:
            user = self.require(object_id, USER)
            if "upn" in changes and user.upn:
                self._by_upn.pop((user.tenant_id, user.upn.lower()), None)
            for name, value in changes.items():
                setattr(user, name, value)
            if user.upn:
                self._by_upn[(user.tenant_id, user.upn.lower())] = user.id
            self._log(user)

    def delete_user(self, object_id: str) -> None:
        """Delete a user; like Graph, the groups' change log does not mention its memberships."""
        with self.lock:
            user = self.require(object_id, USER)
            for parent in list(self._parents.get(user.id, {})):
                self._members.get(parent, {}).pop(user.id, None)
            self._parents.pop(user.id, None)
            del self.objects[user.id]
            self._by_tenant[(user.tenant_id, USER)].pop(user.id, None)
            if user.upn:
                self._by_upn.pop((user.tenant_id, user.upn.lower()), None)
            self._closure.clear()
            self._log(user, present=False)

    def rename_group(self, group_id: str, name: str) -> None:
        """Change a group's display name."""
        with self.lock:
            group = self.require(group_id, GROUP)
            group.display_name = name
            self._log(group)

    def delete_group(self, group_id: str) -> None:
        """Delete a group and every membership that mentions it."""
        with self.lock:
            group = self.require(group_id, GROUP)
            for member in list(self._members.get(group.id, {})):
                self.remove_member(group.id, member)
            for parent in list(self._parents.get(group.id, {})):
                self.remove_member(parent, group.id)
            del self.objects[group.id]
            self._by_tenant[(group.tenant_id, GROUP)].pop(group.id, None)
            self._closure.clear()
            self._log(group, present=False)

    # -- membership ----------------------------------------------------------------------

    def add_member(self, container_id: str, member_id: str) -> None:
        """Make member (user or group) a direct member of a group or directory role."""
        with self.lock:
            container = self.require(container_id, *_CONTAINERS)
            member = self.require(member_id, USER, GROUP)
            if container.tenant_id != member.tenant_id:
                raise ValueError("members must live in the container's tenant")
            self._members.setdefault(container.id, {})[member.id] = None
            self._parents.setdefault(member.id, {})[container.id] = None
            self._closure.clear()
            self._log(container, member)

    def remove_member(self, container_id: str, member_id: str) -> None:
        """Remove a direct membership; a missing one is ignored."""
        with self.lock:
            had = self._members.get(container_id.lower(), {}).pop(member_id.lower(), False)
            self._parents.get(member_id.lower(), {}).pop(container_id.lower(), None)
            self._closure.clear()
            container, member = self.get(container_id), self.get(member_id)
            if had is None and container and member:
                self._log(container, member, present=False)

    def transitive_members(self, group_id: str) -> list[DirObject]:
        """Return every user and group in a group, directly or through nested groups."""
        with self.lock:
            start = group_id.lower()
            seen: dict[str, None] = {}
            queue = deque(self._members.get(start, {}))
            while queue:
                member = queue.popleft()
                if member in seen or member == start:
                    continue
                seen[member] = None
                queue.extend(self._members.get(member, {}))
            return [self.objects[m] for m in seen]

    def direct_members(self, group_id: str) -> list[DirObject]:
        """Return the users and groups directly in a group."""
        with self.lock:
            return [self.objects[m] for m in self._members.get(group_id.lower(), {})]

    def direct_parents(self, member_id: str) -> list[DirObject]:
        """Return the groups and roles member_id belongs to directly."""
        with self.lock:
            return [self.objects[p] for p in self._parents.get(member_id.lower(), {})]

    def transitive_parents(self, member_id: str) -> list[DirObject]:
        """Return every group and role member_id belongs to, directly or through nesting."""
        with self.lock:
            key = member_id.lower()
            if key not in self._closure:
                self._closure[key] = self._walk_up(key)
            return [self.objects[p] for p in self._closure[key]]

    def _walk_up(self, start: str) -> tuple[str, ...]:
        # Breadth-first, so direct memberships come first; `seen` makes nesting cycles harmless.
        seen: dict[str, None] = {}
        queue = deque(self._parents.get(start, {}))
        while queue:
            parent = queue.popleft()
            if parent in seen or parent == start:
                continue
            seen[parent] = None
            queue.extend(self._parents.get(parent, {}))
        return tuple(seen)

    def transitive_group_ids(self, member_id: str) -> list[str]:
        """Return the ids of the groups (not roles) member_id belongs to transitively."""
        return [o.id for o in self.transitive_parents(member_id) if o.kind == GROUP]
