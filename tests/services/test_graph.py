"""The Graph client's own rules, against a scripted session: paging, batching, retries, budget."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from portal.services import graph

BASE = "https://graph.test"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token"


def answer(status: int = 200, body: Any = None, **headers: str) -> requests.Response:
    """Build a canned HTTP response."""
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
    response.headers = CaseInsensitiveDict(headers)
    return response


def groups(*names: str) -> list[dict[str, str]]:
    """Return Graph group objects with fresh IDs."""
    return [
        {"@odata.type": "#microsoft.graph.group", "id": str(uuid.uuid4()), "displayName": n}
        for n in names
    ]


class ScriptedSession:
    """Answers requests from a script and records what was sent."""

    def __init__(self, *answers: requests.Response) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Record the request and return the next scripted answer."""
        self.sent.append({"method": method, "url": url, **kwargs})
        return self.answers.pop(0)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's waits instead of sleeping them."""
    recorded: list[float] = []
    monkeypatch.setattr(graph.GraphClient, "sleep", staticmethod(recorded.append))
    return recorded


def call_with(*answers: requests.Response, budget: float = 10.0) -> tuple[graph.GraphCall, Any]:
    """Open a GraphCall whose session answers from the script."""
    client = graph.GraphClient({"GRAPH_ENDPOINT": BASE, "GRAPH_BUDGET_SECONDS": budget})
    session = ScriptedSession(*answers)
    client.session = session  # type: ignore[assignment]
    return client.call(TOKEN), session


def test_transitive_groups_follows_every_next_link_verbatim_and_drops_roles() -> None:
    first, second = groups("A", "B"), groups("C")
    role = {"@odata.type": "#microsoft.graph.directoryRole", "id": str(uuid.uuid4())}
    next_link = f"{BASE}/v1.0/me/transitiveMemberOf?$select=id,displayName&$skiptoken=X%2Fy"
    call, session = call_with(
        answer(body={"value": [*first, role], "@odata.nextLink": next_link}),
        answer(body={"value": second}),
    )

    found = call.transitive_groups()

    assert found == {g["id"]: g["displayName"] for g in first + second}
    assert session.sent[1]["url"] == next_link
    assert call.calls == 2
    headers = session.sent[0]["headers"]
    assert headers["x-ms-throttle-priority"] == "High"
    assert headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_next_link_outside_graph_is_refused_before_the_token_is_sent_there() -> None:
    call, session = call_with(
        answer(body={"value": [], "@odata.nextLink": "https://evil.test/v1.0/me?$skiptoken=1"})
    )

    with pytest.raises(graph.GraphError, match="outside Graph"):
        call.transitive_groups()
    assert len(session.sent) == 1


def test_lookup_sends_get_by_ids_in_batches_of_1000_and_marks_the_rest_as_no_group() -> None:
    known = groups(*(f"G{i}" for i in range(1500)))
    ids = [g["id"] for g in known] + [str(uuid.uuid4()) for _ in range(1000)]
    call, session = call_with(
        answer(body={"value": known[:1000]}),
        answer(body={"value": known[1000:]}),
        answer(body={"value": []}),
    )

    lookup = call.lookup(ids)

    assert sorted(len(s["json"]["ids"]) for s in session.sent) == [500, 1000, 1000]  # in parallel
    assert call.calls == 3
    assert all(s["json"]["types"] == ["group"] for s in session.sent)
    assert "$select=id,displayName" in session.sent[0]["url"]
    assert lookup.names == {g["id"]: g["displayName"] for g in known}
    assert lookup.not_groups == set(ids[1500:])


def test_get_by_ids_refused_falls_back_to_memberships_and_is_not_asked_again() -> None:
    mine = groups("Mine")
    denied = answer(403, {"error": {"code": "Authorization_RequestDenied"}})
    members = answer(body={"value": mine})
    client = graph.GraphClient({"GRAPH_ENDPOINT": BASE})
    client.session = ScriptedSession(denied, members, answer(body={"value": mine}))  # type: ignore[assignment]
    other = str(uuid.uuid4())

    first = client.call(TOKEN).lookup([mine[0]["id"], other])
    second = client.call(TOKEN).lookup([mine[0]["id"]])

    assert first.names == second.names == {mine[0]["id"]: "Mine"}
    assert first.not_groups == set()  # absent from my memberships proves nothing about the ID
    urls = [s["url"] for s in client.session.sent]  # type: ignore[attr-defined]
    assert ["getByIds" in u for u in urls] == [True, False, False]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_that_fits_is_waited_exactly(status: int, waits: list[float]) -> None:
    call, _ = call_with(answer(status, **{"Retry-After": "2"}), answer(body={"value": []}))

    assert call.transitive_groups() == {}
    assert waits == [2.0]
    assert call.calls == 2


def test_retry_after_as_an_http_date_is_honoured(waits: list[float]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    call, _ = call_with(answer(429, **{"Retry-After": when}), answer(body={"value": []}))

    call.transitive_groups()

    assert 2.0 < waits[0] <= 4.0


def test_retry_after_past_the_budget_fails_at_once(waits: list[float]) -> None:
    call, session = call_with(answer(429, **{"Retry-After": "5"}), budget=4.0)

    with pytest.raises(graph.GraphError, match="past the time budget"):
        call.transitive_groups()
    assert waits == []
    assert len(session.sent) == 1


def test_a_5xx_is_retried_once_after_a_jittered_backoff(waits: list[float]) -> None:
    call, session = call_with(answer(502), answer(500))

    with pytest.raises(graph.GraphError, match="500"):
        call.transitive_groups()
    assert len(waits) == 1 and graph.BACKOFF[0] <= waits[0] <= graph.BACKOFF[1]
    assert len(session.sent) == 2


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, "access token was refused"), (403, "GroupMember.Read.All"), (404, "404")],
)
def test_client_errors_fail_without_retry_and_never_name_the_token(
    status: int, reason: str, waits: list[float]
) -> None:
    call, session = call_with(answer(status, {"error": {"code": "Some_Code", "message": TOKEN}}))

    with pytest.raises(graph.GraphError) as failure:
        call.transitive_groups()
    assert reason in failure.value.reason
    assert "Some_Code" in failure.value.reason
    assert TOKEN not in failure.value.reason and "eyJ" not in failure.value.reason
    assert len(session.sent) == 1 and waits == []


@pytest.mark.parametrize(
    "body", [b"<html>bad gateway</html>", b"[]", b'{"value": "x"}', b'{"value": [{"x": 1}]}']
)
def test_malformed_answers_fail_with_a_clear_reason(body: bytes) -> None:
    call, _ = call_with(answer(200, body))

    with pytest.raises(graph.GraphError, match="malformed|not an object|`value`"):
        call.transitive_groups()


def test_no_access_token_fails_without_a_request() -> None:
    client = graph.GraphClient({"GRAPH_ENDPOINT": BASE})
    client.session = ScriptedSession()  # type: ignore[assignment]

    with pytest.raises(graph.GraphError, match="no Graph access token"):
        client.call(None).lookup([str(uuid.uuid4())])
    assert client.session.sent == []  # type: ignore[attr-defined]


def test_each_request_timeout_is_capped_by_the_remaining_budget() -> None:
    call, session = call_with(answer(body={"value": []}), budget=2.0)

    call.transitive_groups()

    connect, read = session.sent[0]["timeout"]
    assert connect <= 2.0 and read <= 2.0


def test_member_group_ids_posts_security_enabled_only_false_and_lowercases() -> None:
    ids = [str(uuid.uuid4()).upper() for _ in range(3)]
    call, session = call_with(answer(body={"value": [*ids, ids[0]]}))

    found = call.member_group_ids()

    assert found == [i.lower() for i in ids]
    assert session.sent[0]["method"] == "POST"
    assert session.sent[0]["url"] == f"{BASE}/v1.0/me/getMemberGroups"
    assert session.sent[0]["json"] == {"securityEnabledOnly": False}
    assert call.calls == 1


def test_member_group_ids_past_the_size_limit_returns_none_for_paging() -> None:
    refused = answer(400, {"error": {"code": "Directory_ResultSizeLimitExceeded"}})
    call, _ = call_with(refused)

    assert call.member_group_ids() is None


@pytest.mark.parametrize(
    "response",
    [
        answer(400, {"error": {"code": "Request_BadRequest"}}),
        answer(403, {"error": {"code": "Authorization_RequestDenied"}}),
        answer(body={"value": [{"id": "not a string id"}]}),
    ],
)
def test_member_group_ids_other_failures_raise(response: requests.Response) -> None:
    call, _ = call_with(response)

    with pytest.raises(graph.GraphError):
        call.member_group_ids()


# -- delta rounds (reconciliation) -----------------------------------------------------------


def batch_with(*answers: requests.Response, budget: float = 60.0) -> tuple[graph.GraphCall, Any]:
    """Open a batch GraphCall (app token, run budget) whose session answers from the script."""
    client = graph.GraphClient({"GRAPH_ENDPOINT": BASE})
    session = ScriptedSession(*answers)
    client.session = session  # type: ignore[assignment]
    return client.batch_call(TOKEN, budget), session


def test_delta_follows_next_links_and_keeps_the_delta_link() -> None:
    next_link = f"{BASE}/v1.0/users/delta?$skiptoken=A"
    delta_link = f"{BASE}/v1.0/users/delta?$deltatoken=B"
    call, session = batch_with(
        answer(body={"value": [{"id": "1"}], "@odata.nextLink": next_link}),
        answer(body={"value": [{"id": "2"}], "@odata.deltaLink": delta_link}),
    )

    items = list(call.delta("/users/delta?$select=id,accountEnabled"))

    assert [i["id"] for i in items] == ["1", "2"]
    assert call.delta_link == delta_link
    assert session.sent[0]["url"] == f"{BASE}/v1.0/users/delta?$select=id,accountEnabled"
    assert session.sent[1]["url"] == next_link
    assert all(s["headers"]["Prefer"] == "odata.maxpagesize=999" for s in session.sent)
    assert all(s["headers"]["x-ms-throttle-priority"] == "Low" for s in session.sent)


@pytest.mark.parametrize(
    "refusal",
    [
        answer(410, {"error": {"code": "syncStateNotFound"}}),
        answer(400, {"error": {"code": "syncStateNotFound"}}),
    ],
)
def test_a_refused_delta_link_is_reported_as_expired(refusal: requests.Response) -> None:
    call, _ = batch_with(refusal)
    with pytest.raises(graph.GraphError) as caught:
        list(call.delta(f"{BASE}/v1.0/users/delta?$deltatoken=old"))
    assert caught.value.delta_expired
    assert call.delta_link is None


def test_delta_page_without_any_link_is_malformed() -> None:
    call, _ = batch_with(answer(body={"value": [{"id": "1"}]}))
    with pytest.raises(graph.GraphError, match="neither a next nor a delta link"):
        list(call.delta("/groups/delta"))


def test_delta_link_pointing_elsewhere_is_refused() -> None:
    call, _ = batch_with(answer(body={"value": [], "@odata.deltaLink": "https://evil.test/x"}))
    with pytest.raises(graph.GraphError, match="outside Graph"):
        list(call.delta("/groups/delta"))


def test_batch_call_retries_5xx_several_times_with_growing_jitter(waits: list[float]) -> None:
    done = {"value": [], "@odata.deltaLink": f"{BASE}/v1.0/groups/delta?$deltatoken=C"}
    call, _ = batch_with(answer(500), answer(502), answer(504), answer(body=done))

    list(call.delta("/groups/delta"))

    assert len(waits) == 3
    assert waits[2] >= graph.BACKOFF[0] * 4
    assert call.calls == 4


def test_batch_call_fails_when_retry_after_passes_the_run_budget(waits: list[float]) -> None:
    call, _ = batch_with(answer(429, {}, **{"Retry-After": "120"}), budget=60.0)
    with pytest.raises(graph.GraphError, match="past the time budget"):
        list(call.delta("/groups/delta"))
    assert waits == []
