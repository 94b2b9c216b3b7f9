"""The outside review's probes of the admin console: forged cursors, posts without CSRF."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask

from tests.admin.conftest import Admin, add_external
from tests.admin.test_access import admin_endpoints, url_of

LISTS = [
    "/admin/users",
    "/admin/users?sort=email",
    "/admin/users?sort=last_login",
    "/admin/users?sort=created",
    "/admin/users?sort=name&dir=desc",
    "/admin/users?type=External&group=x",
    "/admin/groups",
    "/admin/groups?dir=desc",
    "/admin/audit",
    "/admin/sync",
    "/admin/sync?status=failed",
]
FORGED_VALUES: list[Any] = [
    ["text"],
    [2**70],
    [-(2**70)],
    ["text", "text"],
    ["text", 2**70],
    [{"dt": "not a date"}, 1],
    [{"dt": "9999-12-31T23:59:59-23:59"}, 1],
    [{"dt": 5}, 1],
    [{"no": "dt"}, 1],
    [{"dt": "2026-01-01T00:00:00"}, "1"],
    [True, 1],
    [1.5, 1],
    [None, 1],
    [None],
    [[1], 1],
    [1e308, 1],
]


def token(segment: Any, values: Any) -> str:
    """Encode a cursor as the lists do, with whatever values a forger chooses."""
    raw = json.dumps([segment, values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("url", LISTS)
def test_forged_cursors_answer_400_or_the_first_page_never_a_5xx(
    app: Flask, admin: Admin, url: str
) -> None:
    add_external(app, 3)
    cursors = [token(segment, values) for segment in (0, 1) for values in FORGED_VALUES]
    cursors += [token("0", [1]), token(0, "x"), "%%%", "W10", token(0, [1] * 40)]
    joiner = "&" if "?" in url else "?"

    for cursor in cursors:
        for direction in ("after", "before"):
            page = admin.client.get(f"{url}{joiner}{direction}={cursor}")
            assert page.status_code in (200, 400), (cursor, direction, page.status_code)


def test_forged_cursors_on_a_group_s_members_never_give_a_5xx(app: Flask, admin: Admin) -> None:
    url = url_of(app, "admin.group_detail")
    for values in FORGED_VALUES:
        page = admin.client.get(f"{url}?after={token(0, values)}")
        assert page.status_code in (200, 400), values


def test_every_admin_post_without_a_csrf_token_is_refused_and_changes_nothing(
    app: Flask, admin: Admin
) -> None:
    posts = [endpoint for endpoint, method, _ in admin_endpoints(app) if method == "POST"]
    assert len(posts) >= 8

    for endpoint in posts:
        url = url_of(app, endpoint)
        answer = admin.client.post(url, data={"name": "Renamed", "group": "Sweep", "user": "x"})
        assert answer.status_code == 400, endpoint
        forged = admin.client.post(url, data={"csrf_token": "forged", "name": "Renamed"})
        assert forged.status_code == 400, endpoint
    assert admin.client.get("/admin/audit").text.count("Renamed") == 0
