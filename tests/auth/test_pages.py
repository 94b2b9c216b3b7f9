"""What people read around sign-in: sign-in page, home page, sign-out, a reloaded callback."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from tests.helpers import prepare_callback, sign_in


def test_first_visit_gets_the_sign_in_page_without_a_reproach(client: FlaskClient) -> None:
    client.get("/")

    page = client.get("/login?next=/").text

    assert "Please sign in to see this page" not in page
    assert "This portal shows who you are" in page


def test_a_deep_link_still_says_why_the_sign_in_page_appeared(client: FlaskClient) -> None:
    client.get("/admin/users")

    assert "Please sign in to see this page" in client.get("/login?next=/admin/users").text


def test_after_sign_out_the_sign_in_page_says_you_are_signed_out(
    client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    sign_in(client, emulator, create_user())
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)

    client.post("/auth/logout", data={"csrf_token": token})

    assert "You are signed out." in client.get("/login").text


def test_reloading_a_used_callback_url_while_signed_in_goes_home(
    client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    callback = prepare_callback(client, emulator, create_user())
    assert client.get(callback).status_code == 302

    again = client.get(callback)

    assert again.status_code == 302
    assert again.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_home_page_describes_the_account_and_marks_guests(
    client: FlaskClient, emulator: Any, create_user: Callable[..., str]
) -> None:
    guest = create_user("Alex Guest", upn="alex_fabrikam.com#EXT#@contoso.example")
    sign_in(client, emulator, guest)

    page = client.get("/").text

    assert '<span class="badge badge-guest">Guest</span>' in page
    assert "You are a guest" in page
    assert "badge-external" not in page
