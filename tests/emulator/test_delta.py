"""Graph delta queries in the emulator: full rounds, changes, removals, expiry, permissions."""

from __future__ import annotations

from typing import Any

import pytest

from portal.dev.emulator import Emulator

from .conftest import Driver, Graph

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


@pytest.fixture
def tenant(emu: Emulator) -> dict[str, str]:
    """A fresh tenant of its own: two users, a group nested in another."""
    tid = emu.add_tenant(None, "Delta Co")
    ids = {"tid": tid}
    ids["ann"] = emu.add_user(tid, "Ann", "ann@delta.example", email="ann@delta.example")
    ids["bob"] = emu.add_user(tid, "Bob", "bob@delta.example")
    ids["outer"] = emu.add_group(tid, "Outer")
    ids["inner"] = emu.add_group(tid, "Inner")
    emu.add_member(ids["outer"], ids["inner"])
    emu.add_members(ids["inner"], [ids["ann"], ids["bob"]])
    return ids


@pytest.fixture
def app_graph(emu: Emulator, driver: Driver, tenant: dict[str, str]) -> Graph:
    """Graph with an application token for the fresh tenant."""
    result = driver.app(tenant["tid"]).acquire_token_for_client(GRAPH_DEFAULT)
    return Graph(emu, result["access_token"])


def read_round(graph: Graph, url: str, **kwargs: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink; return items, the deltaLink and the page count."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        answer = graph.get(url, **kwargs)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def members_by_group(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Merge a group's entries (its members can be spread over several)."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        merged.setdefault(item["id"], []).extend(item.get("members@delta", []))
    return merged


def test_users_delta_lists_everyone_with_account_enabled(
    app_graph: Graph, tenant: dict[str, str]
) -> None:
    select = "$select=id,displayName,mail,userPrincipalName,accountEnabled"
    items, link, _ = read_round(app_graph, f"/users/delta?{select}")
    assert {i["id"] for i in items} == {tenant["ann"], tenant["bob"]}
    assert all(i["accountEnabled"] is True for i in items)
    assert "userType" not in items[0]  # $select is honoured
    assert "$deltatoken=" in link


def test_users_delta_reports_changes_and_removals(
    emu: Emulator, app_graph: Graph, tenant: dict[str, str]
) -> None:
    _, link, _ = read_round(app_graph, "/users/delta?$select=id,accountEnabled")
    emu.set_user(tenant["ann"], account_enabled=False)
    emu.delete_user(tenant["bob"])
    items, link, _ = read_round(app_graph, link)
    by_id = {i["id"]: i for i in items}
    assert by_id[tenant["ann"]] == {"id": tenant["ann"], "accountEnabled": False}
    assert by_id[tenant["bob"]] == {"id": tenant["bob"], "@removed": {"reason": "changed"}}
    assert read_round(app_graph, link)[0] == []


def test_groups_delta_full_round_lists_nested_groups_as_members(
    emu: Emulator, app_graph: Graph, tenant: dict[str, str]
) -> None:
    emu.delta_members_per_entry = 1
    try:
        items, _, pages = read_round(
            app_graph,
            "/groups/delta?$select=displayName,members",
            headers={"Prefer": "odata.maxpagesize=2"},
        )
    finally:
        emu.delta_members_per_entry = 20
    members = members_by_group(items)
    assert {m["id"] for m in members[tenant["inner"]]} == {tenant["ann"], tenant["bob"]}
    assert members[tenant["outer"]] == [
        {"@odata.type": "#microsoft.graph.group", "id": tenant["inner"]}
    ]
    assert pages == 2  # three entries (Inner's two members spread over two) in pages of two


def test_groups_delta_reports_member_changes_renames_and_deleted_groups(
    emu: Emulator, app_graph: Graph, tenant: dict[str, str]
) -> None:
    _, link, _ = read_round(app_graph, "/groups/delta?$select=displayName,members")
    emu.remove_member(tenant["inner"], tenant["ann"])
    emu.rename_group(tenant["outer"], "Outer Renamed")
    emu.delete_group(tenant["inner"])
    items, _, _ = read_round(app_graph, link)
    by_id = {i["id"]: i for i in items}
    assert by_id[tenant["inner"]] == {"id": tenant["inner"], "@removed": {"reason": "changed"}}
    outer = by_id[tenant["outer"]]
    assert outer["displayName"] == "Outer Renamed"
    assert outer["members@delta"] == [
        {
            "@odata.type": "#microsoft.graph.group",
            "id": tenant["inner"],
            "@removed": {"reason": "deleted"},
        }
    ]


def test_groups_delta_leaves_out_a_deleted_users_memberships(
    emu: Emulator, app_graph: Graph, tenant: dict[str, str]
) -> None:
    _, link, _ = read_round(app_graph, "/groups/delta?$select=displayName,members")
    emu.delete_user(tenant["bob"])
    assert read_round(app_graph, link)[0] == []


def test_expired_delta_link_is_410_sync_state_not_found(
    emu: Emulator, app_graph: Graph, tenant: dict[str, str]
) -> None:
    _, link, _ = read_round(app_graph, "/users/delta")
    emu.expire_delta_links()
    answer = app_graph.get(link)
    assert answer.status_code == 410
    assert answer.json()["error"]["code"] == "syncStateNotFound"
    assert answer.headers["Location"].endswith("/v1.0/users/delta")


def test_forged_or_foreign_delta_token_is_400(app_graph: Graph) -> None:
    assert app_graph.get("/users/delta?$deltatoken=abc.def").status_code == 400


def test_delta_latest_starts_from_now(
    emu: Emulator, app_graph: Graph, tenant: dict[str, str]
) -> None:
    items, link, _ = read_round(app_graph, "/users/delta?$deltatoken=latest")
    assert items == []
    emu.set_user(tenant["ann"], display_name="Ann B")
    assert [i["id"] for i in read_round(app_graph, link)[0]] == [tenant["ann"]]


def test_delta_needs_application_permissions(
    emu: Emulator, driver: Driver, tenant: dict[str, str]
) -> None:
    emu.revoke_scope(tenant["tid"], "GroupMember.Read.All")
    emu.revoke_scope(tenant["tid"], "User.Read.All")
    result = driver.app(tenant["tid"]).acquire_token_for_client(GRAPH_DEFAULT)
    graph = Graph(emu, result["access_token"])
    assert graph.get("/groups/delta").status_code == 403
    assert graph.get("/users/delta").status_code == 403


def test_delta_shares_the_fault_injection(emu: Emulator, app_graph: Graph) -> None:
    emu.graph_faults.add("503", path_contains="/groups/delta")
    assert app_graph.get("/groups/delta").status_code == 503
    assert app_graph.get("/groups/delta").status_code == 200


def test_users_list_needs_user_read_all(
    emu: Emulator, driver: Driver, app_graph: Graph, tenant: dict[str, str]
) -> None:
    assert len(app_graph.get("/users?$top=1&$select=id").json()["value"]) == 1
    emu.revoke_scope(tenant["tid"], "User.Read.All")
    result = driver.app(tenant["tid"]).acquire_token_for_client(GRAPH_DEFAULT)
    assert Graph(emu, result["access_token"]).get("/users").status_code == 403


def test_group_transitive_members_include_nested_groups_members(
    app_graph: Graph, tenant: dict[str, str]
) -> None:
    answer = app_graph.get(f"/groups/{tenant['outer']}/transitiveMembers?$select=id&$top=999")
    assert answer.status_code == 200
    ids = {m["id"] for m in answer.json()["value"]}
    assert ids == {tenant["inner"], tenant["ann"], tenant["bob"]}
    direct = app_graph.get(f"/groups/{tenant['outer']}/members").json()["value"]
    assert [m["id"] for m in direct] == [tenant["inner"]]
