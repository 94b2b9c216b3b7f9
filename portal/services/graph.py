"""Microsoft Graph for group sync: the only module that talks to Graph.

One `GraphClient` per app holds the HTTP session; each sign-in opens a `GraphCall`, which
carries that sign-in's delegated token, its overall time budget and its call count. Every
way Graph can fail (timeout, throttling past the budget, 5xx, malformed answer, 401, 403)
becomes a `GraphError` whose reason is safe to record: it never carries a token.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import current_app

from portal.http import http_session
from portal.services.text import clean_text

DEFAULT_TIMEOUT = (3.05, 10.0)  # connect, read; each also capped by what is left of the budget
DEFAULT_BUDGET_SECONDS = 10.0  # CONTRACT.md: Graph calls of one sign-in share 10 s
GET_BY_IDS_LIMIT = 1000  # directoryobject-getbyids.md (Graph v1.0 docs, 2025)
PAGE_SIZE = 999  # the largest $top transitiveMemberOf accepts
PARALLEL_BATCHES = 4  # getByIds batches in flight at once for one sign-in
MAX_ATTEMPTS = 5  # per request: bounds a run of Retry-After: 0 answers
BACKOFF = (0.1, 0.4)  # seconds, uniform: the jittered wait before the one retry of a 5xx
# A batch run (reconciliation) may wait longer than a sign-in: several jittered 5xx retries,
# backing off exponentially, inside a run-level budget of its own.
BATCH_BACKOFFS = 4
BATCH_BUDGET_SECONDS = 900.0
# Directory deltas ignore $top; this header asks for the largest pages (delta-query-users.md).
MAX_PAGE_PREFER = "odata.maxpagesize=999"
# How Graph says a delta link can no longer be used: read everything again.
DELTA_EXPIRED_CODES = frozenset({"syncStateNotFound", "resyncRequired", "syncStateInvalid"})
# getByIds is documented as needing Directory.Read.All, which the portal does not ask for; a
# tenant that refuses it gets names from transitiveMemberOf instead, for this long.
GET_BY_IDS_DENIED_SECONDS = 3600.0
GROUP_TYPE = "#microsoft.graph.group"
# getMemberGroups answers at most 11,000 IDs; past that it refuses with this code.
RESULT_SIZE_LIMIT = "Directory_ResultSizeLimitExceeded"
NAME_LENGTH = 256  # entra_groups.display_name and groups.name


class GraphError(Exception):
    """Graph could not be read; `reason` is for the sync record and the logs."""

    def __init__(self, reason: str, status: int | None = None, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code  # Graph's error code, e.g. Directory_ResultSizeLimitExceeded

    @property
    def delta_expired(self) -> bool:
        """Tell whether Graph refused a delta link as too old (410 Gone, syncStateNotFound)."""
        return self.status == 410 or self.code in DELTA_EXPIRED_CODES


@dataclass
class Lookup:
    """What Graph said about some object IDs: group names, and IDs that are no groups."""

    names: dict[str, str] = field(default_factory=dict)
    not_groups: set[str] = field(default_factory=set)


class GraphClient:
    """One per app: the Graph base URL, its TLS-pinned session and per-process knowledge."""

    # How the client waits out Retry-After and backoff; tests swap it to record the waits.
    sleep = staticmethod(time.sleep)

    def __init__(self, config: dict[str, Any]) -> None:
        self.base = config["GRAPH_ENDPOINT"].rstrip("/") + "/v1.0"
        # The resource an application token must name: the configured Graph host itself.
        self.resource = "{0.scheme}://{0.netloc}".format(urlsplit(config["GRAPH_ENDPOINT"]))
        self.session = http_session(config.get("ENTRA_CA_BUNDLE"), config.get("PORTAL_HTTPS_PROXY"))
        self.timeout: tuple[float, float] = tuple(config.get("GRAPH_TIMEOUT", DEFAULT_TIMEOUT))  # type: ignore[assignment]
        self.budget = float(config.get("GRAPH_BUDGET_SECONDS", DEFAULT_BUDGET_SECONDS))
        self.get_by_ids_denied_until = 0.0

    def call(self, access_token: str | None) -> GraphCall:
        """Open one sign-in's conversation with Graph; its budget starts now."""
        return GraphCall(self, access_token)

    def batch_call(self, access_token: str, budget: float | None = None) -> GraphCall:
        """Open a batch job's conversation with an app token: long budget, low priority."""
        call = GraphCall(self, access_token)
        call.deadline = time.monotonic() + (budget or BATCH_BUDGET_SECONDS)
        call.priority = "Low"
        call.max_backoffs = BATCH_BACKOFFS
        return call


_client_lock = threading.Lock()


def client() -> GraphClient:
    """Return the current app's GraphClient, building it on first use."""
    extensions = current_app.extensions
    with _client_lock:
        if "portal.graph" not in extensions:
            extensions["portal.graph"] = GraphClient(current_app.config)
        return extensions["portal.graph"]


class GraphCall:
    """The Graph requests of one sign-in: one token, one time budget, one call count."""

    def __init__(self, graph: GraphClient, access_token: str | None) -> None:
        self.graph = graph
        self._token = access_token
        self.deadline = time.monotonic() + graph.budget
        self.calls = 0
        self._count_lock = threading.Lock()  # batches may be sent from several threads
        # Sign-in is interactive: ask Graph to throttle it last (throttling.md).
        self.priority = "High"
        self.max_backoffs = 1
        self.delta_link: str | None = None

    # -- what group sync asks ----------------------------------------------------------

    def transitive_groups(self, user_id: str | None = None) -> dict[str, str | None]:
        """Return every group the user is in, nesting included, with its name when visible.

        Without user_id: the signed-in user (/me); with it: that user (app token).
        """
        # No OData cast: the cast is an advanced query served from an index that can lag,
        # and a group missing from a lagging answer would wrongly end a membership.
        who = f"users/{uuid.UUID(user_id)}" if user_id else "me"
        url = f"{self.graph.base}/{who}/transitiveMemberOf?$select=id,displayName&$top={PAGE_SIZE}"
        groups: dict[str, str | None] = {}
        for item in self._pages(url):
            if item.get("@odata.type", GROUP_TYPE) == GROUP_TYPE:
                groups[_object_id(item)] = _display_name(item)
        return groups

    def member_group_ids(self) -> list[str] | None:
        """Return every group ID the user is in, nesting included, in one unpaged call.

        None when the user is in more groups than getMemberGroups answers (11,000): the
        caller then pages through transitiveMemberOf instead.
        """
        url = f"{self.graph.base}/me/getMemberGroups"
        try:
            payload = self._request("POST", url, body={"securityEnabledOnly": False})
        except GraphError as exc:
            if exc.status == 400 and exc.code == RESULT_SIZE_LIMIT:
                return None
            raise
        value = payload.get("value")
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            raise GraphError(f"Graph's answer on {_path(url)} has no valid `value` list")
        return list(dict.fromkeys(i.lower() for i in value))

    def lookup(self, ids: Iterable[str]) -> Lookup:
        """Resolve object IDs to group names with the fewest calls."""
        wanted = list(dict.fromkeys(ids))
        if time.monotonic() >= self.graph.get_by_ids_denied_until:
            try:
                found = self._get_by_ids(wanted)
            except GraphError as exc:
                if exc.status != 403:
                    raise
                self.graph.get_by_ids_denied_until = time.monotonic() + GET_BY_IDS_DENIED_SECONDS
            else:
                if all(found.get(i) for i in found):
                    named = {i: n for i, n in found.items() if n}
                    return Lookup(named, {i for i in wanted if i not in found})
        return self._lookup_through_memberships(wanted)

    def _get_by_ids(self, ids: list[str]) -> dict[str, str | None]:
        """Return the groups among ids, in batches of GET_BY_IDS_LIMIT."""
        url = f"{self.graph.base}/directoryObjects/getByIds?$select=id,displayName"
        batches = [ids[i : i + GET_BY_IDS_LIMIT] for i in range(0, len(ids), GET_BY_IDS_LIMIT)]

        def send(batch: list[str]) -> dict[str, Any]:
            return self._request("POST", url, body={"ids": batch, "types": ["group"]})

        if len(batches) > 1:  # independent: one round trip for all, not one per batch
            with ThreadPoolExecutor(min(len(batches), PARALLEL_BATCHES)) as pool:
                answers = list(pool.map(send, batches))
        else:
            answers = [send(b) for b in batches]
        found: dict[str, str | None] = {}
        for payload in answers:
            for item in _values(payload, url):
                if item.get("@odata.type", GROUP_TYPE) == GROUP_TYPE:
                    found[_object_id(item)] = _display_name(item)
        return found

    def _lookup_through_memberships(self, ids: list[str]) -> Lookup:
        """Name ids from the user's own memberships; only GroupMember.Read.All is needed."""
        groups = self.transitive_groups()
        # An ID missing here may be a group the user just left: it is no proof of "no group",
        # so it is left out of this sign-in without being cached.
        return Lookup({i: n for i in ids if (n := groups.get(i))}, set())

    def delta(self, start: str) -> Iterator[dict[str, Any]]:
        """Yield the items of one delta round, from a path with options or a stored deltaLink.

        When the round is complete, `delta_link` holds the link of the next round. A link
        Graph refuses as too old raises GraphError whose `delta_expired` is true.
        """
        self.delta_link = None
        url = start if start.startswith("https://") else f"{self.graph.base}{start}"
        self._check_on_graph(url, url)
        while True:
            payload = self._request("GET", url, prefer=MAX_PAGE_PREFER)
            yield from _values(payload, url)
            next_link = payload.get("@odata.nextLink")
            delta_link = payload.get("@odata.deltaLink")
            if isinstance(delta_link, str) and next_link is None:
                self.delta_link = self._check_on_graph(delta_link, url)
                return
            if not isinstance(next_link, str):
                raise GraphError(
                    f"Graph's answer on {_path(url)} has neither a next nor a delta link"
                )
            url = self._check_on_graph(next_link, url)

    def _check_on_graph(self, link: str, url: str) -> str:
        """Return link when it points at the configured Graph: the token goes where it points."""
        if not link.startswith(self.graph.base + "/"):
            raise GraphError(f"Graph's next page on {_path(url)} points outside Graph")
        return link

    # -- HTTP --------------------------------------------------------------------------

    def _pages(self, url: str) -> Iterator[dict[str, Any]]:
        """Yield the items of a collection, following @odata.nextLink verbatim to the end."""
        next_url: str | None = url
        while next_url is not None:
            payload = self._request("GET", next_url)
            yield from _values(payload, next_url)
            link = payload.get("@odata.nextLink")
            if link is not None and not (
                isinstance(link, str) and link.startswith(self.graph.base)
            ):
                # The token goes wherever the link points: only ever to the configured Graph.
                raise GraphError(f"Graph's next page on {_path(url)} points outside Graph")
            next_url = link

    def _request(
        self, method: str, url: str, body: Any = None, prefer: str | None = None
    ) -> dict[str, Any]:
        """Send one Graph request, honouring Retry-After and retrying a 5xx with jitter."""
        backoffs = 0
        for _ in range(MAX_ATTEMPTS + self.max_backoffs - 1):
            response = self._send(method, url, body, prefer)
            if response.status_code == 200:
                return _json(response, url)
            wait, is_backoff = self._retry_wait(response, url, backoffs)
            backoffs += is_backoff
            self.graph.sleep(wait)
        raise GraphError(f"Graph kept throttling {_path(url)} after {MAX_ATTEMPTS} attempts")

    def _retry_wait(
        self, response: requests.Response, url: str, backoffs: int
    ) -> tuple[float, bool]:
        """Return how long to wait before retrying, and whether that is a 5xx backoff."""
        status, left = response.status_code, self.remaining()
        retry_after = _retry_after(response) if status in (429, 503) else None
        if retry_after is not None:
            if retry_after >= left:
                raise GraphError(
                    f"Graph throttled {_path(url)} ({status}, Retry-After {retry_after:g} s)"
                    f" past the time budget ({left:.1f} s left)",
                    status,
                )
            return retry_after, False
        if (status == 429 or status >= 500) and backoffs < self.max_backoffs:
            low, high = BACKOFF
            wait = random.uniform(low, high) * 2**backoffs  # noqa: S311 - jitter, not secrecy
            if wait < left:
                return wait, True
        raise GraphError(_failure(response, url), status, _error_code(response))

    def _send(
        self, method: str, url: str, body: Any, prefer: str | None = None
    ) -> requests.Response:
        """Send one HTTP request within what is left of the budget, and count it."""
        if not self._token:
            raise GraphError("the sign-in returned no Graph access token")
        left = self.remaining()
        if left <= 0.01:
            raise GraphError(f"the Graph time budget ran out before {_path(url)}")
        connect, read = self.graph.timeout
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "x-ms-throttle-priority": self.priority,
            "client-request-id": str(uuid.uuid4()),
        }
        if prefer:
            headers["Prefer"] = prefer
        with self._count_lock:
            self.calls += 1
        try:
            return self.graph.session.request(
                method,
                url,
                json=body,
                headers=headers,
                timeout=(min(connect, left), min(read, left)),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise GraphError(f"Graph did not answer {_path(url)} in time") from None
        except requests.RequestException as exc:
            raise GraphError(f"Graph could not be reached ({type(exc).__name__})") from None

    def remaining(self) -> float:
        """Return the seconds left of this sign-in's Graph budget."""
        return self.deadline - time.monotonic()


def _json(response: requests.Response, url: str) -> dict[str, Any]:
    """Return a 200 answer's JSON object, or raise GraphError for anything else."""
    try:
        payload = response.json()
    except ValueError:
        raise GraphError(f"Graph answered {_path(url)} with malformed JSON") from None
    if not isinstance(payload, dict):
        raise GraphError(f"Graph answered {_path(url)} with JSON that is not an object")
    return payload


def _values(payload: dict[str, Any], url: str) -> list[dict[str, Any]]:
    """Return the `value` list of a collection answer, checking its items' shape."""
    value = payload.get("value")
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) for item in value
    ):
        raise GraphError(f"Graph's answer on {_path(url)} has no valid `value` list")
    return value


def _object_id(item: dict[str, Any]) -> str:
    """Return an item's object ID, lowercased as the portal stores them."""
    return str(item["id"]).lower()


def _display_name(item: dict[str, Any]) -> str | None:
    """Return an item's display name, cleaned and clipped to the name column; None when Graph
    withheld it (limited information) or it holds nothing printable."""
    return clean_text(item.get("displayName"), NAME_LENGTH)


def _retry_after(response: requests.Response) -> float | None:
    """Read Retry-After as seconds (a number or an HTTP date); None when absent or unreadable."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _failure(response: requests.Response, url: str) -> str:
    """Describe a Graph error answer by status and Graph error code, never by its body."""
    code = _error_code(response)
    detail = f"{response.status_code}{' ' + code if code else ''}"
    hints = {
        401: "the access token was refused",
        403: "permission missing (GroupMember.Read.All, User.Read.All need admin consent)",
    }
    hint = hints.get(response.status_code, "error")
    return f"Graph answered {_path(url)} with {detail}: {hint}"


def _error_code(response: requests.Response) -> str:
    """Return Graph's error code (e.g. Authorization_RequestDenied), or an empty string."""
    try:
        error = response.json().get("error", {})
        code = error.get("code", "") if isinstance(error, dict) else ""
    except (ValueError, AttributeError):
        return ""
    return code[:80] if isinstance(code, str) and code.replace("_", "").isalnum() else ""


def _path(url: str) -> str:
    """Return the Graph path of a URL, without host, version or query (paging tokens)."""
    return urlsplit(url).path.removeprefix("/v1.0") or "/"


def check_groups_readable(access_token: str, collection: str = "groups") -> None:
    """List one group (or user) with an application token; raise GraphError unless allowed.

    The configuration check's Graph step (portal.diagnostics): it proves Graph answers
    and that the app's own permissions cover reading groups and users (reconciliation).
    """
    graph = client()
    url = f"{graph.base}/{collection}"
    try:
        response = graph.session.get(
            url,
            params={"$top": "1", "$select": "id"},
            headers={"Authorization": f"Bearer {access_token}"},
        )
    except requests.RequestException as exc:
        raise GraphError(f"Graph could not be reached: {type(exc).__name__}") from None
    if response.status_code != 200:
        code = _error_code(response)
        reason = f"Graph answered {_path(url)} with HTTP {response.status_code} {code}".rstrip()
        raise GraphError(reason, response.status_code)
