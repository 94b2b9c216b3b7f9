"""Graph delta queries: /users/delta and /groups/delta over the directory's change log.

A first request (no token) lists every object; groups carry their direct members (users and
nested groups) in `members@delta`, a big group's members spread over several entries. Each
page links the next (`@odata.nextLink`, `$skiptoken`) until the last one carries
`@odata.deltaLink` (`$deltatoken`): a position in the change log. A later request with it
lists what changed since: users and groups in their current state, removed objects as
`@removed` with reason `changed` (soft delete), and members added or `@removed`. As in Graph,
the memberships of a deleted user are not reported by groups/delta. Both tokens are signed and
name the query options given on the first request; `expire_delta_links()` makes them answer
410 Gone with `syncStateNotFound`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Response, request

from .directory import GROUP, USER, Change, DirObject
from .graph import (
    GROUP_READ,
    MAX_TOP,
    ODATA_TYPES,
    USER_READ_ALL,
    _bad_request,
    _denied,
    _json,
    _principal,
    bp,
    emu,
    graph_error,
)
from .pki import b64url

USER_FIELDS = ("id", "displayName", "mail", "userPrincipalName", "accountEnabled", "userType")
ENTITY_SETS = {USER: "users", GROUP: "groups"}


@dataclass
class State:
    """What a delta or next link stands for."""

    tenant_id: str
    kind: str
    select: list[str] | None
    since: int | None  # change-log position of the previous round; None = everything
    upto: int  # change-log position this round ends at
    offset: int = 0
    epoch: int = 0


def _sign(state: State) -> str:
    raw = json.dumps(state.__dict__, separators=(",", ":")).encode()
    mac = hmac.new(emu().page_key, raw, hashlib.sha256).digest()[:12]
    return b64url(raw) + "." + b64url(mac)


def _unsign(token: str) -> State | None:
    raw_b64, _, mac_b64 = token.partition(".")
    try:
        raw = base64.urlsafe_b64decode(raw_b64 + "=" * (-len(raw_b64) % 4))
        mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
        expected = hmac.new(emu().page_key, raw, hashlib.sha256).digest()[:12]
        if not hmac.compare_digest(mac, expected):
            return None
        return State(**json.loads(raw))
    except (ValueError, TypeError):
        return None


def _link(state: State, name: str) -> str:
    return f"{emu().url}/v1.0/{ENTITY_SETS[state.kind]}/delta?{name}={quote(_sign(state))}"


def _page_size() -> int:
    # Graph ignores $top on directory deltas; the Prefer header is the documented knob.
    for part in request.headers.get("Prefer", "").split(","):
        key, _, value = part.strip().partition("=")
        if key.lower() == "odata.maxpagesize" and value.isdigit() and int(value) > 0:
            return min(int(value), MAX_TOP)
    return emu().delta_page_size


def _start(kind: str) -> State | Response:
    """Read the request's state: a token, `$deltatoken=latest`, or a first full round."""
    tid = _principal().tid
    position = len(emu().directory.changes)
    token = request.args.get("$skiptoken") or request.args.get("$deltatoken")
    if token is None:
        raw = request.args.get("$select")
        select = [s.strip() for s in raw.split(",") if s.strip()] if raw else None
        return State(tid, kind, select, None, position, epoch=emu().delta_epoch)
    if token == "latest":  # noqa: S105 - Graph's keyword for "from now on"
        return State(tid, kind, None, position, position, epoch=emu().delta_epoch)
    state = _unsign(token)
    if state is None or state.tenant_id != tid or state.kind != kind:
        return _bad_request("The delta token is invalid.", "Request_BadRequest")
    if state.epoch != emu().delta_epoch:
        return _gone(kind)
    if "$deltatoken" in request.args:
        state = State(tid, kind, state.select, state.upto, position, epoch=state.epoch)
    return state


def _gone(kind: str) -> Response:
    response = graph_error(
        410, "syncStateNotFound", "The sync state is no longer available: start a full sync."
    )
    response.headers["Location"] = f"{emu().url}/v1.0/{ENTITY_SETS[kind]}/delta"
    return response


def _render_user(obj: DirObject) -> dict[str, Any]:
    return {
        "id": obj.id,
        "displayName": obj.display_name,
        "mail": obj.email,
        "userPrincipalName": obj.upn,
        "accountEnabled": obj.account_enabled,
        "userType": obj.user_type,
    }


def _member(member_id: str, kind: str, present: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"@odata.type": ODATA_TYPES[kind], "id": member_id}
    if not present:
        entry["@removed"] = {"reason": "deleted"}
    return entry


def _project(entry: dict[str, Any], select: list[str] | None, kind: str) -> dict[str, Any]:
    if select is None or "@removed" in entry:
        wanted = None
    else:
        wanted = {s.lower() for s in select} | {"id"}
    if kind == GROUP and wanted is not None and "members" in wanted:
        wanted.add("members@delta")
    if wanted is None:
        return entry
    return {k: v for k, v in entry.items() if k.lower() in wanted}


def _group_entries(group: DirObject, members: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield a group's entries: its members spread over several when there are many."""
    size = max(1, emu().delta_members_per_entry)
    base = {"id": group.id, "displayName": group.display_name}
    if not members:
        yield {**base, "members@delta": []}
    for start in range(0, len(members), size):
        yield {**base, "members@delta": members[start : start + size]}


def _full(state: State) -> list[dict[str, Any]]:
    directory = emu().directory
    objects = directory.listing(state.tenant_id, state.kind)
    if state.kind == USER:
        return [_render_user(o) for o in objects]
    entries: list[dict[str, Any]] = []
    for group in objects:
        members = [_member(m.id, m.kind, True) for m in directory.direct_members(group.id)]
        entries.extend(_group_entries(group, members))
    return entries


def _changed(state: State) -> list[dict[str, Any]]:
    """Return what changed between the two log positions, latest state per object."""
    directory = emu().directory
    touched: dict[str, dict[str, Change]] = {}
    for change in directory.changes[state.since : state.upto]:
        if change.tenant_id == state.tenant_id and change.kind == state.kind:
            members = touched.setdefault(change.object_id, {})
            if change.member_id is not None:
                members[change.member_id] = change
    entries: list[dict[str, Any]] = []
    for object_id, members in touched.items():
        obj = directory.get(object_id)
        if obj is None or obj.kind != state.kind:
            entries.append({"id": object_id, "@removed": {"reason": "changed"}})
        elif state.kind == USER:
            entries.append(_render_user(obj))
        else:
            delta = [_member(m, c.member_kind or USER, c.present) for m, c in members.items()]
            entries.extend(_group_entries(obj, delta))
    return entries


def delta(kind: str) -> Response:
    """GET /users/delta and /groups/delta."""
    if not _principal().may(USER_READ_ALL if kind == USER else GROUP_READ):
        return _denied()
    state = _start(kind)
    if isinstance(state, Response):
        return state
    with emu().directory.lock:
        entries = _full(state) if state.since is None else _changed(state)
    size = _page_size()
    page = entries[state.offset : state.offset + size]
    body: dict[str, Any] = {
        "@odata.context": f"{emu().url}/v1.0/$metadata#{ENTITY_SETS[kind]}(*)",
    }
    if state.offset + size < len(entries):
        body["@odata.nextLink"] = _link(
            State(**{**state.__dict__, "offset": state.offset + size}), "$skiptoken"
        )
    else:
        done = State(state.tenant_id, kind, state.select, state.upto, state.upto, 0, state.epoch)
        body["@odata.deltaLink"] = _link(done, "$deltatoken")
    body["value"] = [_project(e, state.select, kind) for e in page]
    return _json(body)


bp.add_url_rule("/users/delta", endpoint="usersDelta", view_func=delta, defaults={"kind": USER})
bp.add_url_rule("/groups/delta", endpoint="groupsDelta", view_func=delta, defaults={"kind": GROUP})
