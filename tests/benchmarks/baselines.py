"""Naive re-implementations of the common peer patterns, measured beside the portal.

They write the portal's own tables through its models, so candidate and baseline produce the
same rows and are checked against the same ground truth; only the way of getting there differs.
Nothing in `portal/` uses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, SyncRecord, User
from portal.models.base import utcnow
from portal.models.group import ENTRA, MEMBERSHIP_BUILTIN, MEMBERSHIP_ENTRA
from portal.models.sync import FROM_CLAIM, FROM_GRAPH, OK
from portal.models.user import EXTERNAL
from portal.services.groups import all_users_group


class NaiveGraph:
    """A Graph client as peers write it: one request per object, no batching, no paging tricks."""

    def __init__(self, access_token: str | None) -> None:
        self.base = current_app.config["GRAPH_ENDPOINT"] + "/v1.0"
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = current_app.config["ENTRA_CA_BUNDLE"] or True
        self.session.headers["Authorization"] = f"Bearer {access_token}"
        self.calls = 0

    def get(self, path: str) -> requests.Response:
        """Send one GET."""
        self.calls += 1
        return self.session.get(self.base + path, timeout=10)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        """Send one POST with a JSON body."""
        self.calls += 1
        return self.session.post(self.base + path, json=body, timeout=10)


def naive_sign_in(claims: dict[str, Any], access_token: str | None) -> User:
    """Sync as peers do: `GET /groups/{id}` per group, then get_or_create row by row."""
    user = _get_or_create_user(claims)
    graph = NaiveGraph(access_token)
    overage = "groups" not in claims
    kept: set[int] = set()
    for group_id in _group_ids(claims, graph):
        answer = graph.get(f"/groups/{group_id}")
        if answer.status_code != 200:
            continue  # deleted groups and directory roles
        group = _get_or_create_group(group_id, user.tenant_id or "", answer.json()["displayName"])
        _get_or_create_membership(group, user, MEMBERSHIP_ENTRA)
        kept.add(group.id)
    _drop_stale_memberships(user, kept)
    _get_or_create_membership(all_users_group(), user, MEMBERSHIP_BUILTIN)
    source = FROM_GRAPH if overage else FROM_CLAIM
    db.session.add(_record(user, source, graph.calls))
    db.session.flush()
    return user


def straightforward_sign_in(claims: dict[str, Any], access_token: str | None) -> User:
    """Sync as a plain portal does on overage: page transitiveMemberOf, then row by row.

    IDs and names come together, 999 a page, following `@odata.nextLink`; each group and
    membership is then looked up and created as `naive_sign_in` does.
    """
    user = _get_or_create_user(claims)
    graph = NaiveGraph(access_token)
    kept: set[int] = set()
    for group_id, name in _transitive_groups(graph).items():
        group = _get_or_create_group(group_id, user.tenant_id or "", name)
        _get_or_create_membership(group, user, MEMBERSHIP_ENTRA)
        kept.add(group.id)
    _drop_stale_memberships(user, kept)
    _get_or_create_membership(all_users_group(), user, MEMBERSHIP_BUILTIN)
    db.session.add(_record(user, FROM_GRAPH, graph.calls))
    db.session.flush()
    return user


def _transitive_groups(graph: NaiveGraph) -> dict[str, str]:
    """Page through the user's transitive groups, names included."""
    path = "/me/transitiveMemberOf?$select=id,displayName&$top=999"
    url: str | None = graph.base + path
    found: dict[str, str] = {}
    while url:
        graph.calls += 1
        answer = graph.session.get(url, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        groups = [g for g in body["value"] if g.get("@odata.type") == "#microsoft.graph.group"]
        found.update({g["id"]: g["displayName"] for g in groups})
        url = body.get("@odata.nextLink")
    return found


def _group_ids(claims: dict[str, Any], graph: NaiveGraph) -> list[str]:
    """Return the claim's IDs, or on overage the IDs from getMemberGroups (IDs only)."""
    if "groups" in claims:
        return list(claims["groups"])
    answer = graph.post("/me/getMemberGroups", {"securityEnabledOnly": False})
    answer.raise_for_status()
    return list(answer.json()["value"])


def _get_or_create_user(claims: dict[str, Any]) -> User:
    """Select the user, insert when missing, then copy the profile from the token."""
    tid, oid = claims["tid"].lower(), claims["oid"].lower()
    query = sa.select(User).where(User.tenant_id == tid, User.object_id == oid)
    user = db.session.scalars(query).first()
    if user is None:
        user = User(tenant_id=tid, object_id=oid, user_type=EXTERNAL)
        db.session.add(user)
    user.email = claims.get("email")
    user.display_name = claims.get("name") or ""
    user.upn = claims.get("preferred_username")
    user.last_login_at = utcnow()
    db.session.flush()
    return user


def _get_or_create_group(object_id: str, tenant_id: str, name: str) -> Group:
    """Select the Entra group's row, insert the cache row and local group when missing."""
    query = sa.select(EntraGroup).where(EntraGroup.object_id == object_id)
    entra_group = db.session.scalars(query).first()
    if entra_group is None:
        entra_group = EntraGroup(object_id=object_id, tenant_id=tenant_id, display_name=name)
        db.session.add(entra_group)
        db.session.flush()
    entra_group.display_name = name
    group = entra_group.group  # a lazy load per group
    if group is None:
        group = Group(name=name, source=ENTRA, entra_group=entra_group)
        db.session.add(group)
    group.name = name
    db.session.flush()
    return group


def _get_or_create_membership(group: Group, user: User, source: str) -> None:
    """Select the membership and insert it when missing."""
    query = sa.select(GroupMembership).where(
        GroupMembership.group_id == group.id, GroupMembership.user_id == user.id
    )
    if db.session.scalars(query).first() is None:
        db.session.add(GroupMembership(group_id=group.id, user_id=user.id, source=source))
        db.session.flush()


def _drop_stale_memberships(user: User, kept: set[int]) -> None:
    """Delete, one row at a time, the Entra memberships no longer listed."""
    query = sa.select(GroupMembership).where(
        GroupMembership.user_id == user.id, GroupMembership.source == MEMBERSHIP_ENTRA
    )
    for membership in db.session.scalars(query).all():
        if membership.group_id not in kept:
            db.session.delete(membership)
            db.session.flush()


def _record(user: User, source: str, graph_calls: int) -> SyncRecord:
    """Return the sync record the naive sync leaves (always `ok`: it has no failure policy)."""
    return SyncRecord(
        user_id=user.id,
        tenant_id=user.tenant_id,
        object_id=user.object_id,
        status=OK,
        source=source,
        graph_calls=graph_calls,
    )


@contextmanager
def naive_sign_in_installed(sync: Any = naive_sign_in) -> Iterator[None]:
    """Make the portal's callback use the naive sync (or `sync`) instead of its own."""
    import portal.auth.routes as routes

    original = routes.sign_in_external
    routes.sign_in_external = sync
    try:
        yield
    finally:
        routes.sign_in_external = original


@contextmanager
def paged_overage_installed() -> Iterator[None]:
    """Make the portal read overage groups by paging transitiveMemberOf (IDs and names).

    The straightforward overage sync, and the portal's own before getMemberGroups: the same
    code and writes otherwise, so the ratio isolates the Graph strategy.
    """
    from portal.services import graph

    original = graph.GraphCall.member_group_ids
    graph.GraphCall.member_group_ids = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        graph.GraphCall.member_group_ids = original  # type: ignore[method-assign]
