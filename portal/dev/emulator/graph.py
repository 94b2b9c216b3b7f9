"""Microsoft Graph v1.0 endpoints for users, groups and memberships, plus JSON $batch."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
from flask import Blueprint, Response, current_app, g, request

from .directory import GROUP, ROLE, USER, DirObject
from .faults import DEFAULT_429_RETRY_AFTER, Fault
from .pki import b64url
from .tokens import GRAPH_APP_ID, new_id

if TYPE_CHECKING:
    from .core import Emulator

bp = Blueprint("graph", __name__, url_prefix="/v1.0")

GROUP_READ = frozenset({"groupmember.read.all", "group.read.all", "directory.read.all"})
USER_READ_ALL = frozenset({"user.read.all", "user.readbasic.all", "directory.read.all"})
USER_READ_SELF = USER_READ_ALL | {"user.read"}
MAX_TOP = 999
DEFAULT_TOP = 100
BATCH_LIMIT = 20
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
UNSUPPORTED_OPTIONS = ("$filter", "$search", "$orderby", "$expand")
# RU costs per call from throttling-limits.md ("Identity and access service limits", 2025).
RU_BASE = {
    "graph.group_members": 3,
    "graph.group_transitiveMembers": 5,
    "graph.memberOf": 2,
    "graph.transitiveMemberOf": 2,
    "graph.getMemberGroups": 2,
    "graph.getMemberObjects": 2,
}
ODATA_TYPES = {
    USER: "#microsoft.graph.user",
    GROUP: "#microsoft.graph.group",
    ROLE: "#microsoft.graph.directoryRole",
}


def emu() -> Emulator:
    """Return the Emulator serving the current request."""
    return current_app.extensions["emulator"]


@dataclass(frozen=True)
class Principal:
    """Who is calling, from the verified access token."""

    tid: str
    oid: str
    appid: str
    app: bool
    permissions: frozenset[str]

    @property
    def caller_key(self) -> tuple[str, str, str]:
        """The key Retry-After compliance is tracked under."""
        return ("app", self.appid, self.tid) if self.app else ("user", self.oid, self.tid)

    def may(self, allowed: frozenset[str]) -> bool:
        """Return whether any of the token's permissions is in allowed."""
        return not self.permissions.isdisjoint(allowed)


# -- responses -------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=JSON_TYPE)


def graph_error(
    status: int, code: str, message: str, inner: dict[str, str] | None = None
) -> Response:
    """Return a Graph-shaped error (reference §5.1); inner adds innerError fields."""
    inner_error = {
        **(inner or {}),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": g.get("request_id", ""),
        "client-request-id": _client_request_id(),
    }
    return _json({"error": {"code": code, "message": message, "innerError": inner_error}}, status)


def _client_request_id() -> str:
    return request.headers.get("client-request-id") or g.get("request_id", "")


def _not_found(object_id: str) -> Response:
    return graph_error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def _denied() -> Response:
    return graph_error(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _bad_request(message: str, code: str = "Request_BadRequest") -> Response:
    return graph_error(400, code, message)


# -- the gate every Graph request passes -----------------------------------------------------


def _unauthenticated(message: str) -> Response:
    response = graph_error(401, "InvalidAuthenticationToken", message)
    response.headers["WWW-Authenticate"] = (
        f'Bearer realm="", authorization_uri="{emu().url}/common/oauth2/authorize", '
        f'client_id="{GRAPH_APP_ID}"'
    )
    return response


def _authenticate() -> Principal | Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthenticated("Access token is empty.")
    try:
        claims = emu().signer.verify_access_token(token.strip())
    except jwt.ExpiredSignatureError:
        return _unauthenticated("Lifetime validation failed, the token is expired.")
    except jwt.PyJWTError:
        return _unauthenticated("Access token validation failure.")
    app = claims.get("idtyp") == "app"
    granted = claims.get("roles", []) if app else str(claims.get("scp", "")).split()
    return Principal(
        tid=str(claims["tid"]),
        oid=str(claims.get("oid", "")),
        appid=str(claims.get("appid", "")),
        app=app,
        permissions=frozenset(p.lower() for p in granted),
    )


@bp.before_request
def gate() -> Response | None:
    """Authenticate, then apply Retry-After accounting, injected faults and the RU budget."""
    g.request_id = new_id()
    principal = _authenticate()
    if isinstance(principal, Response):
        return principal
    g.principal = principal
    if not request.environ.get("emulator.inner") and emu().retries.check(principal.caller_key):
        emu().count("graph.early_retry")
    fault = emu().graph_faults.pick(request.full_path)
    if fault is not None:
        emu().count(f"graph.fault.{fault.kind}")
        return _fault_response(fault)
    return _charge(principal)


def ru_cost(endpoint: str | None, args: dict[str, str]) -> int:
    """Return the resource units a Graph call costs, with the documented modifiers."""
    if endpoint == "graph.batch":
        return 0  # the inner requests are charged one by one
    if endpoint == "graph.getByIds":
        return 2 if "$select" in args else 5
    cost = RU_BASE.get(endpoint or "", 1)
    cost += ("$expand" in args) - ("$select" in args)
    top = args.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


def _charge(principal: Principal) -> Response | None:
    g.ru = ru_cost(request.endpoint, request.args.to_dict())
    budget = emu().ru_budget
    if budget is None or not g.ru:
        return None
    allowed, retry_after, used = budget.charge((principal.appid, principal.tid), g.ru)
    emu().count("graph.ru", g.ru)
    g.throttle_percentage = used
    if allowed:
        return None
    emu().count("graph.ru_throttled")
    response = _too_many(retry_after)
    response.headers["x-ms-throttle-scope"] = (
        f"Tenant_Application/ReadWrite/{principal.tid}/{principal.appid}"
    )
    response.headers["x-ms-throttle-information"] = "ResourceUnitLimitExceeded"
    return response


def _too_many(retry_after: int) -> Response:
    response = graph_error(
        429,
        "TooManyRequests",
        "Please retry again later.",
        {"code": "429", "message": "Please retry after", "status": "429"},
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "429":
        return _too_many(fault.retry_after or DEFAULT_429_RETRY_AFTER)
    if fault.kind == "hang":
        emu().sleep(emu().graph_faults.hang_seconds)
        return graph_error(504, "GatewayTimeout", "The request timed out.")
    if fault.kind == "malformed_text":
        return Response("<html><body>Bad gateway</body></html>", 200, content_type=JSON_TYPE)
    if fault.kind == "malformed_json":
        return _json({"@odata.context": f"{emu().url}/v1.0/$metadata#directoryObjects"})
    if fault.kind == "503":
        response = graph_error(503, "serviceNotAvailable", "Service Unavailable")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response
    return graph_error(500, "generalException", "General exception while processing.")


@bp.after_request
def stamp_headers(response: Response) -> Response:
    """Add Graph's response headers and remember Retry-After given to the caller."""
    response.headers["request-id"] = g.get("request_id", "")
    response.headers["client-request-id"] = _client_request_id()
    response.headers["x-ms-ags-diagnostic"] = json.dumps(
        {"ServerInfo": {"DataCenter": "Emulator", "Slice": "E", "Ring": "0"}}
    )
    response.headers["x-ms-resource-unit"] = str(g.get("ru", 1))
    used = g.get("throttle_percentage", 0.0)
    if used >= 0.8:
        response.headers["x-ms-throttle-limit-percentage"] = f"{used:.1f}"
    _remember_retry_after(response)
    return response


def _remember_retry_after(response: Response) -> None:
    principal: Principal | None = g.get("principal")
    retry_after = response.headers.get("Retry-After", "")
    if response.status_code == 429:
        emu().count("graph.throttled")
    if principal and response.status_code in (429, 503) and retry_after.isdigit():
        emu().retries.record(principal.caller_key, float(retry_after))


# -- query options ---------------------------------------------------------------------------


def _select() -> list[str] | None:
    raw = request.args.get("$select")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else None


def _project(body: dict[str, Any], select: list[str] | None, typed: bool) -> dict[str, Any]:
    if select is not None:
        wanted = {s.lower() for s in select}
        body = {k: v for k, v in body.items() if k.lower() in wanted or k == "@odata.type"}
    if not typed:
        body.pop("@odata.type", None)
    return body


def _context(entity_set: str, select: list[str] | None, suffix: str = "") -> str:
    projection = f"({','.join(select)})" if select else ""
    return f"{emu().url}/v1.0/$metadata#{entity_set}{projection}{suffix}"


def _advanced_query_problem(cast: bool) -> Response | None:
    """Refuse what Graph only answers as an advanced query (ConsistencyLevel + $count)."""
    for option in UNSUPPORTED_OPTIONS:
        if option in request.args:
            return _bad_request(
                f"{option} is not supported by the emulator.", "Request_UnsupportedQuery"
            )
    count = request.args.get("$count", "").lower() == "true"
    eventual = request.headers.get("ConsistencyLevel", "").lower() == "eventual"
    if (count or cast) and not eventual:
        return _bad_request(
            "Request with $count or an OData cast requires the header ConsistencyLevel: eventual.",
            "Request_UnsupportedQuery",
        )
    if cast and not count:
        return _bad_request(
            "An OData cast on this collection requires $count=true.", "Request_UnsupportedQuery"
        )
    return None


def _skiptoken(offset: int) -> str:
    raw = struct.pack(">I", offset)
    mac = hmac.new(emu().page_key, raw + request.path.encode(), hashlib.sha256).digest()[:12]
    return "RFNwdAIA" + b64url(raw + mac)


def _offset() -> int | None:
    token = request.args.get("$skiptoken")
    if token is None:
        return 0
    try:
        raw = _b64decode(token.removeprefix("RFNwdAIA"))
    except ValueError:
        return None
    offset_bytes, mac = raw[:4], raw[4:]
    expected = hmac.new(emu().page_key, offset_bytes + request.path.encode(), hashlib.sha256)
    if len(offset_bytes) != 4 or not hmac.compare_digest(mac, expected.digest()[:12]):
        return None
    return int(struct.unpack(">I", offset_bytes)[0])


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("bad base64") from exc


def _top() -> int | None:
    raw = request.args.get("$top")
    if raw is None:
        return DEFAULT_TOP
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= MAX_TOP else None


def _next_link(offset: int) -> str:
    query = {k: v for k, v in request.args.items() if k != "$skiptoken"}
    query["$skiptoken"] = _skiptoken(offset)
    return f"{emu().url}{request.path}?{urlencode(query, safe='$,')}"


def collection(
    objects: list[DirObject],
    context: str,
    render: Callable[[DirObject], dict[str, Any]],
) -> Response:
    """Answer a paged collection with @odata.context, @odata.count and @odata.nextLink."""
    top, offset = _top(), _offset()
    if top is None:
        return _bad_request(f"Invalid page size specified: must be between 1 and {MAX_TOP}.")
    if offset is None:
        return _bad_request("The $skiptoken is invalid or expired.", "Directory_ExpiredPageToken")
    select = _select()
    body: dict[str, Any] = {"@odata.context": context}
    if request.args.get("$count", "").lower() == "true":
        body["@odata.count"] = len(objects)
    if offset + top < len(objects):
        body["@odata.nextLink"] = _next_link(offset + top)
    body["value"] = [_project(render(o), select, True) for o in objects[offset : offset + top]]
    return _json(body)


# -- object shapes ---------------------------------------------------------------------------


def render_object(obj: DirObject) -> dict[str, Any]:
    """Return the Graph JSON of a directory object, @odata.type included."""
    if obj.kind == USER:
        return render_user(obj)
    if obj.kind == ROLE:
        return {
            "@odata.type": ODATA_TYPES[ROLE],
            "id": obj.id,
            "deletedDateTime": None,
            "description": f"Members of this role have the {obj.display_name} permissions.",
            "displayName": obj.display_name,
            "roleTemplateId": obj.role_template_id,
        }
    return render_group(obj)


def render_group(obj: DirObject) -> dict[str, Any]:
    """Return the Graph JSON of a group."""
    return {
        "@odata.type": ODATA_TYPES[GROUP],
        "id": obj.id,
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": obj.created,
        "description": None,
        "displayName": obj.display_name,
        "groupTypes": [],
        "mail": None,
        "mailEnabled": not obj.security_enabled,
        "mailNickname": re.sub(r"[^A-Za-z0-9]", "", obj.display_name) or obj.id[:8],
        "onPremisesSyncEnabled": None,
        "securityEnabled": obj.security_enabled,
        "visibility": None,
    }


def render_user(obj: DirObject) -> dict[str, Any]:
    """Return the Graph JSON of a user."""
    given, _, surname = obj.display_name.partition(" ")
    return {
        "@odata.type": ODATA_TYPES[USER],
        "businessPhones": [],
        "displayName": obj.display_name,
        "givenName": given or None,
        "jobTitle": None,
        "mail": obj.email,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": surname or None,
        "userPrincipalName": obj.upn,
        "userType": obj.user_type,
        "id": obj.id,
    }


# -- users and memberships -------------------------------------------------------------------


def _principal() -> Principal:
    return g.principal


def _lookup_user(user_id: str | None) -> DirObject | Response:
    principal = _principal()
    if user_id is None:
        if principal.app:
            return _bad_request(
                "/me request is only valid with delegated authentication flow.", "BadRequest"
            )
        user_id = principal.oid
    directory = emu().directory
    user = (
        directory.get(user_id)
        if _is_guid(user_id)
        else directory.user_by_upn(principal.tid, user_id)
    )
    if user is None or user.kind != USER or user.tenant_id != principal.tid:
        return _not_found(user_id)
    return user


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def get_user(user_id: str | None = None) -> Response:
    """GET /me and /users/{id}."""
    user = _lookup_user(user_id)
    if isinstance(user, Response):
        return user
    principal = _principal()
    is_self = not principal.app and user.id == principal.oid
    if not principal.may(USER_READ_SELF if is_self else USER_READ_ALL):
        return _denied()
    body = _project(render_user(user), _select(), False)
    return _json({"@odata.context": _context("users", _select(), "/$entity"), **body})


def memberships(relation: str, user_id: str | None = None, cast: bool = False) -> Response:
    """GET {me|users/{id}}/{memberOf|transitiveMemberOf}[/microsoft.graph.group]."""
    user = _lookup_user(user_id)
    if isinstance(user, Response):
        return user
    if not _principal().may(GROUP_READ):
        return _denied()
    problem = _advanced_query_problem(cast)
    if problem:
        return problem
    directory = emu().directory
    objects = (
        directory.direct_parents(user.id)
        if relation == "memberOf"
        else directory.transitive_parents(user.id)
    )
    if cast:
        objects = [o for o in objects if o.kind == GROUP]
    context = _context("groups" if cast else "directoryObjects", _select())
    return collection(objects, context, render_object)


def member_ids(kind: str, user_id: str | None = None) -> Response:
    """POST {me|users/{id}}/getMemberGroups and getMemberObjects."""
    user = _lookup_user(user_id)
    if isinstance(user, Response):
        return user
    if not _principal().may(GROUP_READ):
        return _denied()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("securityEnabledOnly"), bool):
        return _bad_request("Invalid request: the body must carry securityEnabledOnly (boolean).")
    objects = emu().directory.transitive_parents(user.id)
    if kind == "groups":
        objects = [o for o in objects if o.kind == GROUP]
    if body["securityEnabledOnly"]:
        objects = [o for o in objects if o.kind != GROUP or o.security_enabled]
    if len(objects) > emu().member_groups_limit:
        return _bad_request(
            "The result size limit was exceeded: use transitiveMemberOf instead.",
            "Directory_ResultSizeLimitExceeded",
        )
    context = f"{emu().url}/v1.0/$metadata#Collection(Edm.String)"
    return _json({"@odata.context": context, "value": [o.id for o in objects]})


# -- groups and directory objects ------------------------------------------------------------


def get_group(group_id: str) -> Response:
    """GET /groups/{id}."""
    if not _principal().may(GROUP_READ):
        return _denied()
    group = emu().directory.get(group_id) if _is_guid(group_id) else None
    if group is None or group.kind != GROUP or group.tenant_id != _principal().tid:
        return _not_found(group_id)
    body = _project(render_group(group), _select(), False)
    return _json({"@odata.context": _context("groups", _select(), "/$entity"), **body})


def list_groups() -> Response:
    """GET /groups (paged)."""
    if not _principal().may(GROUP_READ):
        return _denied()
    problem = _advanced_query_problem(cast=False)
    if problem:
        return problem
    groups = emu().directory.listing(_principal().tid, GROUP)
    return collection(groups, _context("groups", _select()), render_group)


def group_members(group_id: str, transitive: bool) -> Response:
    """GET /groups/{id}/members and /groups/{id}/transitiveMembers (paged)."""
    if not _principal().may(GROUP_READ):
        return _denied()
    group = emu().directory.get(group_id) if _is_guid(group_id) else None
    if group is None or group.kind != GROUP or group.tenant_id != _principal().tid:
        return _not_found(group_id)
    problem = _advanced_query_problem(cast=False)
    if problem:
        return problem
    directory = emu().directory
    members = (
        directory.transitive_members(group.id) if transitive else directory.direct_members(group.id)
    )
    return collection(members, _context("directoryObjects", _select()), render_object)


def list_users() -> Response:
    """GET /users (paged; application permission User.Read.All)."""
    if not _principal().may(USER_READ_ALL):
        return _denied()
    problem = _advanced_query_problem(cast=False)
    if problem:
        return problem
    users = emu().directory.listing(_principal().tid, USER)
    return collection(users, _context("users", _select()), render_user)


def _wanted_types(raw: Any) -> set[str] | None | Response:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        return _bad_request("Invalid value for 'types'.")
    names = {t.lower().removeprefix("microsoft.graph.") for t in raw}
    known = {USER.lower(), GROUP, ROLE.lower()}
    unknown = names - known - {"directoryobject"}
    if unknown:
        return _bad_request(f"Unsupported type(s): {', '.join(sorted(unknown))}.")
    return None if "directoryobject" in names else names


def get_by_ids() -> Response:
    """POST /directoryObjects/getByIds."""
    if not _principal().may(GROUP_READ):
        return _denied()
    body = request.get_json(silent=True)
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return _bad_request("Invalid request: the body must carry 'ids', a list of strings.")
    if len(ids) > emu().get_by_ids_limit:
        return _bad_request(f"Too many identifiers: at most {emu().get_by_ids_limit} are allowed.")
    types = _wanted_types(body.get("types"))
    if isinstance(types, Response):
        return types
    found = _resolve_ids(ids, types)
    emu().shuffle(found)  # Graph documents no order; callers must not rely on one
    select = _select()
    value = [_project(render_object(o), select, True) for o in found]
    return _json({"@odata.context": _context("directoryObjects", select), "value": value})


def _resolve_ids(ids: list[str], types: set[str] | None) -> list[DirObject]:
    directory, tid = emu().directory, _principal().tid
    found: dict[str, DirObject] = {}
    for object_id in ids:
        obj = directory.get(object_id) if _is_guid(object_id) else None
        if obj and obj.tenant_id == tid and (types is None or obj.kind.lower() in types):
            found[obj.id] = obj
    return list(found.values())


def _register_routes() -> None:
    for relation in ("memberOf", "transitiveMemberOf"):
        for cast, suffix in ((False, ""), (True, "/microsoft.graph.group")):
            defaults = {"relation": relation, "cast": cast}
            for prefix in ("/me", "/users/<user_id>"):
                bp.add_url_rule(
                    f"{prefix}/{relation}{suffix}",
                    endpoint=relation,
                    view_func=memberships,
                    defaults=defaults,
                )
    for action, kind in (("getMemberGroups", "groups"), ("getMemberObjects", "objects")):
        for prefix in ("/me", "/users/<user_id>"):
            bp.add_url_rule(
                f"{prefix}/{action}",
                endpoint=action,
                view_func=member_ids,
                defaults={"kind": kind},
                methods=["POST"],
            )
    bp.add_url_rule("/me", endpoint="me", view_func=get_user)
    bp.add_url_rule("/users/<user_id>", endpoint="user", view_func=get_user)
    bp.add_url_rule("/groups/<group_id>", endpoint="group", view_func=get_group)
    bp.add_url_rule("/groups", endpoint="groups", view_func=list_groups)
    bp.add_url_rule("/users", endpoint="users", view_func=list_users)
    for relation, transitive in (("members", False), ("transitiveMembers", True)):
        bp.add_url_rule(
            f"/groups/<group_id>/{relation}",
            endpoint=f"group_{relation}",
            view_func=group_members,
            defaults={"transitive": transitive},
        )
    bp.add_url_rule(
        "/directoryObjects/getByIds", endpoint="getByIds", view_func=get_by_ids, methods=["POST"]
    )


_register_routes()
