"""Graph v1.0 half: auth, permissions, memberships, paging, casts, getByIds, $batch, headers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from portal.dev.emulator import Emulator, SampleData

from .conftest import Driver, Graph

EVENTUAL = {"ConsistencyLevel": "eventual"}
GraphFor = Callable[..., Graph]


@pytest.fixture(scope="module")
def big(emu: Emulator, sample: SampleData) -> dict[str, Any]:
    """A user in 1,500 groups (plus a directory role) in the demo tenant."""
    user = emu.add_user(sample.tenant_id, "Many Groups", "many@contoso.onmicrosoft.com")
    groups = [emu.add_group(sample.tenant_id, f"Bulk {n:04d}") for n in range(1500)]
    for group in groups:
        emu.add_member(group, user)
    return {"user": user, "groups": groups}


@pytest.fixture
def adele(graph_for: GraphFor, sample: SampleData) -> Graph:
    """Graph as Adele with User.Read and GroupMember.Read.All."""
    return graph_for(sample.users["adele"])


# -- authentication and permissions ----------------------------------------------------------


def test_me(adele: Graph, sample: SampleData) -> None:
    answer = adele.get("/me")
    body = answer.json()
    assert answer.status_code == 200
    assert body["id"] == sample.users["adele"] and body["displayName"] == "Adele Vance"
    assert body["userPrincipalName"] == "AdeleV@contoso.onmicrosoft.com"
    assert body["mail"] == "AdeleV@contoso.com" and body["userType"] == "Member"
    assert body["@odata.context"].endswith("$metadata#users/$entity")
    selected = adele.get("/me", params={"$select": "id,displayName"}).json()
    assert selected.keys() == {"@odata.context", "id", "displayName"}


@pytest.mark.parametrize("token", [None, "garbage", "a.b.c"])
def test_missing_or_bad_token_is_401(emu: Emulator, token: str | None) -> None:
    answer = Graph(emu, token).get("/me")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_expired_token_is_401(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    emu.token_lifetime = 1
    try:
        token = driver.graph_token(sample.users["adele"])
    finally:
        emu.token_lifetime = 3600
    time.sleep(1.1)
    answer = Graph(emu, token).get("/me")
    assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]


def test_foreign_token_is_401(emu: Emulator) -> None:
    forged = jwt.encode({"tid": "x", "aud": "https://graph.microsoft.com", "exp": 2**31}, "k" * 32)
    assert Graph(emu, forged).get("/me").status_code == 401


def test_without_group_scope_memberships_are_403(graph_for: GraphFor, sample: SampleData) -> None:
    graph = graph_for(sample.users["adele"], scopes=("User.Read",))
    assert graph.get("/me").status_code == 200
    for answer in (
        graph.get("/me/memberOf"),
        graph.post("/me/getMemberGroups", {"securityEnabledOnly": False}),
        graph.post("/directoryObjects/getByIds", {"ids": []}),
        graph.get(f"/groups/{sample.groups['Sales']}"),
    ):
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "Authorization_RequestDenied"


def test_revoked_consent_drops_the_scope(
    emu: Emulator, graph_for: GraphFor, driver: Driver
) -> None:
    tenant = emu.add_tenant(name="Revoked Corp")
    user = emu.add_user(tenant, "Rita Revoked", "rita@revokedcorp.onmicrosoft.com")
    emu.revoke_scope(tenant, "GroupMember.Read.All")
    result = driver.sign_in(user, tenant=tenant)
    assert "GroupMember.Read.All" not in result["scope"]
    assert Graph(emu, result["access_token"]).get("/me/memberOf").status_code == 403
    emu.grant_consent(tenant, ["GroupMember.Read.All", "User.Read"])
    token = driver.graph_token(user, tenant=tenant)
    assert Graph(emu, token).get("/me/memberOf").status_code == 200


def test_app_token(emu: Emulator, sample: SampleData, driver: Driver) -> None:
    result = driver.app().acquire_token_for_client(["https://graph.microsoft.com/.default"])
    graph = Graph(emu, result["access_token"])
    me = graph.get("/me")
    assert me.status_code == 400
    member_of = graph.get(f"/users/{sample.users['adele']}/transitiveMemberOf")
    assert member_of.status_code == 200 and len(member_of.json()["value"]) == 6


def test_users_by_id_and_upn(adele: Graph, sample: SampleData) -> None:
    assert adele.get(f"/users/{sample.users['adele']}").status_code == 200
    assert adele.get("/users/AdeleV@contoso.onmicrosoft.com").status_code == 200
    assert adele.get(f"/users/{sample.users['lee']}").status_code == 403  # needs User.Read.All
    missing = adele.get("/users/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


# -- memberships -----------------------------------------------------------------------------


def test_member_of_includes_directory_roles(adele: Graph, sample: SampleData) -> None:
    body = adele.get("/me/memberOf").json()
    types = {item["@odata.type"] for item in body["value"]}
    assert types == {"#microsoft.graph.group", "#microsoft.graph.directoryRole"}
    direct = {item["id"] for item in body["value"]}
    assert sample.groups["Platform Team"] in direct and sample.groups["Engineering"] not in direct
    transitive = {i["id"] for i in adele.get("/me/transitiveMemberOf").json()["value"]}
    assert (
        sample.groups["Engineering"] in transitive and sample.roles["Global Reader"] in transitive
    )


def test_cast_needs_consistency_level_and_count(adele: Graph, sample: SampleData) -> None:
    path = "/me/transitiveMemberOf/microsoft.graph.group"
    assert adele.get(path).status_code == 400
    assert adele.get(path, headers=EVENTUAL).status_code == 400
    no_header = adele.get(path, params={"$count": "true"})
    assert no_header.json()["error"]["code"] == "Request_UnsupportedQuery"
    body = adele.get(path, params={"$count": "true"}, headers=EVENTUAL).json()
    assert body["@odata.count"] == 5 == len(body["value"])
    assert {i["@odata.type"] for i in body["value"]} == {"#microsoft.graph.group"}


def test_paging_1500_groups_default_page(emu: Emulator, driver: Driver, big: dict) -> None:
    graph = Graph(emu, driver.graph_token(big["user"]))
    items, pages = graph.all_pages("/me/transitiveMemberOf")
    assert pages == 15 and [i["id"] for i in items] == big["groups"]


def test_paging_1500_groups_top_999(emu: Emulator, driver: Driver, big: dict) -> None:
    graph = Graph(emu, driver.graph_token(big["user"]))
    first = graph.get("/me/transitiveMemberOf", params={"$select": "id,displayName", "$top": "999"})
    link = first.json()["@odata.nextLink"]
    assert link.startswith(f"{emu.url}/v1.0/me/transitiveMemberOf?")
    assert "$select=id,displayName" in link and "$top=999" in link and "$skiptoken=" in link
    assert first.json()["value"][0].keys() == {"@odata.type", "id", "displayName"}
    items, pages = graph.all_pages(
        f"/users/{big['user']}/transitiveMemberOf?$select=id,displayName&$top=999"
    )
    assert pages == 2 and len({i["id"] for i in items}) == 1500


def test_top_limits_and_forged_skiptoken(emu: Emulator, driver: Driver, big: dict) -> None:
    graph = Graph(emu, driver.graph_token(big["user"]))
    assert graph.get("/me/memberOf", params={"$top": "1000"}).status_code == 400
    assert graph.get("/me/memberOf", params={"$top": "0"}).status_code == 400
    assert graph.get("/me/memberOf", params={"$skiptoken": "RFNwdAIAAAAAAA"}).status_code == 400


def test_get_member_groups_and_objects(adele: Graph, sample: SampleData) -> None:
    assert adele.post("/me/getMemberGroups", {}).status_code == 400
    groups = adele.post("/me/getMemberGroups", {"securityEnabledOnly": True}).json()
    assert groups["@odata.context"].endswith("$metadata#Collection(Edm.String)")
    assert sample.groups["All Staff"] in groups["value"] and len(groups["value"]) == 5
    objects = adele.post("/me/getMemberObjects", {"securityEnabledOnly": False}).json()["value"]
    assert set(objects) == set(groups["value"]) | {sample.roles["Global Reader"]}


def test_get_member_groups_size_limit(emu: Emulator, driver: Driver, big: dict) -> None:
    graph = Graph(emu, driver.graph_token(big["user"]))
    emu.member_groups_limit = 1499
    try:
        answer = graph.post("/me/getMemberGroups", {"securityEnabledOnly": True})
    finally:
        emu.member_groups_limit = 11000
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "Directory_ResultSizeLimitExceeded"


# -- groups and directory objects ------------------------------------------------------------


def test_get_by_ids(adele: Graph, sample: SampleData, big: dict) -> None:
    ids = big["groups"][:50] + [
        "00000000-0000-0000-0000-000000000001",
        sample.roles["Global Reader"],
    ]
    answer = adele.post(
        "/directoryObjects/getByIds?$select=id,displayName", {"ids": ids, "types": ["Group"]}
    )
    value = answer.json()["value"]
    assert {i["id"] for i in value} == set(big["groups"][:50])
    assert [i["id"] for i in value] != big["groups"][:50]  # shuffled
    assert value[0].keys() == {"@odata.type", "id", "displayName"}
    assert answer.headers["x-ms-resource-unit"] == "2"


def test_get_by_ids_limit(adele: Graph, big: dict) -> None:
    assert adele.post("/directoryObjects/getByIds", {"ids": big["groups"][:1000]}).ok
    too_many = adele.post("/directoryObjects/getByIds", {"ids": big["groups"][:1001]})
    assert too_many.status_code == 400
    assert adele.post("/directoryObjects/getByIds", {"types": ["group"]}).status_code == 400


def test_group_rename_and_delete(emu: Emulator, adele: Graph) -> None:
    group = emu.add_group(None, "Short Lived")
    assert adele.get(f"/groups/{group}").json()["displayName"] == "Short Lived"
    emu.rename_group(group, "Renamed")
    assert adele.get(f"/groups/{group}", params={"$select": "displayName"}).json() == {
        "@odata.context": f"{emu.url}/v1.0/$metadata#groups(displayName)/$entity",
        "displayName": "Renamed",
    }
    emu.delete_group(group)
    gone = adele.get(f"/groups/{group}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "Request_ResourceNotFound"


def test_list_groups_pages(adele: Graph, big: dict) -> None:
    items, pages = adele.all_pages("/groups?$top=999&$select=id")
    assert pages >= 2 and set(big["groups"]) <= {i["id"] for i in items}


# -- $batch ----------------------------------------------------------------------------------


def _batch(graph: Graph, requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    answer = graph.post("/$batch", {"requests": requests})
    assert answer.status_code == 200, answer.text
    return {r["id"]: r for r in answer.json()["responses"]}


def test_batch_runs_inner_requests(emu: Emulator, adele: Graph, sample: SampleData) -> None:
    emu.reset_counters()
    responses = _batch(
        adele,
        [
            {"id": "1", "method": "GET", "url": "/me?$select=id"},
            {
                "id": "2",
                "method": "POST",
                "url": "/me/getMemberGroups",
                "body": {"securityEnabledOnly": True},
                "headers": {"Content-Type": "application/json"},
            },
            {"id": "3", "method": "GET", "url": "groups/" + sample.groups["Sales"]},
        ],
    )
    assert responses["1"]["body"]["id"] == sample.users["adele"]
    assert len(responses["2"]["body"]["value"]) == 5
    assert responses["3"]["body"]["displayName"] == "Sales"
    counters = emu.counters
    assert counters["graph.batch"] == 1 and counters["graph.me"] == 1
    assert counters["graph.getMemberGroups"] == 1 and counters["graph.group"] == 1


def test_batch_depends_on_failed_gives_424(adele: Graph) -> None:
    responses = _batch(
        adele,
        [
            {"id": "a", "method": "GET", "url": "/groups/00000000-0000-0000-0000-000000000009"},
            {"id": "b", "method": "GET", "url": "/me", "dependsOn": ["a"]},
        ],
    )
    assert responses["a"]["status"] == 404 and responses["b"]["status"] == 424


def test_batch_inner_requests_are_throttled_one_by_one(emu: Emulator, adele: Graph) -> None:
    emu.graph_faults.add("429", path_contains="memberOf", retry_after=3)
    responses = _batch(
        adele,
        [
            {"id": "1", "method": "GET", "url": "/me/memberOf"},
            {"id": "2", "method": "GET", "url": "/me"},
        ],
    )
    assert responses["1"]["status"] == 429 and responses["1"]["headers"]["Retry-After"] == "3"
    assert responses["2"]["status"] == 200


@pytest.mark.parametrize(
    "requests",
    [
        [],
        [{"id": str(n), "method": "GET", "url": "/me"} for n in range(21)],
        [{"id": "1", "method": "GET", "url": "/me"}, {"id": "1", "method": "GET", "url": "/me"}],
        [{"id": "1", "method": "POST", "url": "/me/getMemberGroups", "body": {"x": 1}}],
        [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"}],
        [{"id": "1", "method": "GET", "url": "/me", "dependsOn": ["9"]}],
    ],
)
def test_malformed_batch_is_400(adele: Graph, requests: list[dict[str, Any]]) -> None:
    assert adele.post("/$batch", {"requests": requests}).status_code == 400


# -- headers ---------------------------------------------------------------------------------


def test_graph_headers(adele: Graph) -> None:
    answer = adele.get("/me/memberOf", headers={"client-request-id": "abc-123"})
    assert answer.headers["client-request-id"] == "abc-123"
    assert answer.headers["request-id"] and answer.headers["x-ms-resource-unit"] == "2"
    assert answer.json()["@odata.context"].endswith("$metadata#directoryObjects")
    cheap = adele.get("/me/memberOf", params={"$select": "id", "$top": "5"})
    assert cheap.headers["x-ms-resource-unit"] == "1"


def test_unknown_segment_is_graph_shaped(adele: Graph) -> None:
    answer = adele.get("/me/nonsense")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadRequest"
