"""Sessions kept on the server: every ending sticks, idle and absolute lifetimes, bad cookies.

Time moves through the `clock` fixture (the portal's one time seam), never by sleeping.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_login import login_required

from portal.extensions import db
from portal.models import AuditEvent, SignInFlow, User, UserSession
from portal.services import flows, sessions
from portal.services.sessions import KEEP_ENDED
from tests.helpers import Clock, count_statements, prepare_callback, sign_in

COOKIE = "portal_session"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
WRITES = ("INSERT", "UPDATE", "DELETE")


def probed(app: Flask) -> Flask:
    """Add `/_probe`, a page that only checks the session, like the benchmark's."""
    app.add_url_rule("/_probe", "probe", login_required(lambda: "ok"))
    return app


@pytest.fixture
def portal(make_app: Callable[..., Flask]) -> Flask:
    """A portal with the default lifetimes and the probe page."""
    return probed(make_app())


@pytest.fixture
def short(make_app: Callable[..., Flask]) -> Flask:
    """A portal whose sessions idle out after 300 s and end 900 s after sign-in."""
    return probed(make_app(PORTAL_SESSION_IDLE_SECONDS="300", PORTAL_SESSION_MAX_SECONDS="900"))


def signed_in(app: Flask, emulator: Any, object_id: str) -> FlaskClient:
    """Return a new client signed in as the user through the whole Entra flow."""
    client = app.test_client()
    response = sign_in(client, emulator, object_id)
    assert response.status_code == 302 and response.headers["Location"] == "/", response.headers
    return client


def cookie_of(client: FlaskClient) -> str:
    """Return the client's session cookie."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def with_cookie(app: Flask, value: str) -> FlaskClient:
    """Return a new client (another machine) holding a copy of a session cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    return client


def is_signed_in(client: FlaskClient) -> bool:
    """Tell whether the client's next click is signed in; anything but 200 or 302 fails."""
    response = client.get("/_probe")
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login")
    return response.status_code == 200


def log_out(client: FlaskClient, **form: str) -> None:
    """Press a sign-out button of the home page."""
    match = TOKEN.search(client.get("/").text)
    assert match is not None
    response = client.post("/auth/logout", data={"csrf_token": match.group(1), **form})
    assert response.status_code == 302


def end_reasons(app: Flask, object_id: str) -> list[str | None]:
    """Return the end reasons of the user's session records, oldest first."""
    with app.app_context():
        query = (
            sa.select(UserSession.end_reason)
            .join(User, User.id == UserSession.user_id)
            .where(User.object_id == object_id)
            .order_by(UserSession.id)
        )
        return list(db.session.scalars(query))


def run_cli(app: Flask, *args: str) -> str:
    """Run a portal command and return its output, failing on a non-zero exit."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


@contextmanager
def writes(app: Flask) -> Iterator[list[str]]:
    """Collect the writing SQL statements the app runs inside the block."""
    with count_statements(app) as seen:
        found: list[str] = []
        yield found
    found.extend(s for s in seen if s.lstrip().upper().startswith(WRITES))


# -- one statement per request, last seen once a minute ---------------------------------------


def test_a_signed_in_request_loads_user_and_session_in_one_statement(
    portal: Flask, emulator: Any, create_user: Callable[..., str], clock: Clock
) -> None:
    client = signed_in(portal, emulator, create_user())

    with count_statements(portal) as seen:
        assert client.get("/_probe").status_code == 200

    assert len(seen) == 1, seen
    assert "FROM user_sessions JOIN users" in " ".join(seen[0].split())


def test_last_seen_is_written_at_most_once_a_minute(
    portal: Flask, emulator: Any, create_user: Callable[..., str], clock: Clock
) -> None:
    oid = create_user()
    client = signed_in(portal, emulator, oid)

    with writes(portal) as within_a_minute:
        for _ in range(6):
            clock.advance(9)
            assert is_signed_in(client)
    clock.advance(10)
    with writes(portal) as after_a_minute:
        assert is_signed_in(client) and is_signed_in(client)

    assert within_a_minute == []
    assert [" ".join(s.split()[:2]) for s in after_a_minute] == ["UPDATE user_sessions"]
    with portal.app_context():
        record = db.session.scalars(sa.select(UserSession)).one()
        assert record.last_seen_at == clock.now


def test_the_cookie_carries_only_a_token_whose_hash_is_stored(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    client = signed_in(portal, emulator, create_user())

    with client.session_transaction() as session:
        assert set(session) <= {"sid", "csrf_token", "_flashes"}
        token = session["sid"]
    assert len(token) >= 22  # at least 128 bits, URL-safe base64
    with portal.app_context():
        stored = db.session.scalars(sa.select(UserSession.token_hash)).one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored


# -- every ending sticks --------------------------------------------------------------------


def test_a_copied_cookie_is_anonymous_after_logout(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    client = signed_in(portal, emulator, oid)
    copy = cookie_of(client)

    log_out(client)

    assert not is_signed_in(with_cookie(portal, copy))
    assert end_reasons(portal, oid) == ["logout"]


def test_sign_out_everywhere_ends_every_session_of_that_user_only(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    laptop, phone = signed_in(portal, emulator, oid), signed_in(portal, emulator, oid)
    laptop_copy = cookie_of(laptop)
    someone_else = signed_in(portal, emulator, create_user())

    log_out(laptop, everywhere="1")

    assert not is_signed_in(phone)
    assert not is_signed_in(with_cookie(portal, laptop_copy))
    assert is_signed_in(someone_else)
    assert end_reasons(portal, oid) == ["everywhere", "everywhere"]


def test_disabling_ends_every_session_and_enabling_revives_none(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    copy = cookie_of(signed_in(portal, emulator, oid))

    run_cli(portal, "users", "disable", "--user", oid)
    assert not is_signed_in(with_cookie(portal, copy))
    run_cli(portal, "users", "enable", "--user", oid)

    assert not is_signed_in(with_cookie(portal, copy))
    assert end_reasons(portal, oid) == ["disabled"]
    assert is_signed_in(signed_in(portal, emulator, oid))  # a new sign-in works again


def test_cli_sign_out_ends_every_session_and_says_how_many(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    first, second = signed_in(portal, emulator, oid), signed_in(portal, emulator, oid)

    output = run_cli(portal, "users", "sign-out", "--user", oid)
    again = run_cli(portal, "users", "sign-out", "--user", oid)

    assert "Ended 2 sessions" in output and "Ended 0 sessions" in again
    assert not is_signed_in(first) and not is_signed_in(second)
    assert end_reasons(portal, oid) == ["admin", "admin"]
    with portal.app_context():
        events = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "user.signed_out")
        ).all()
        assert [(e.actor, e.details["sessions"]) for e in events] == [("cli", 2)]
        assert events[0].target.endswith(f"<{oid}>")


# -- idle and absolute lifetimes --------------------------------------------------------------


def test_a_session_idle_past_the_limit_ends(
    short: Flask, emulator: Any, create_user: Callable[..., str], clock: Clock
) -> None:
    oid = create_user()
    client = signed_in(short, emulator, oid)
    copy = cookie_of(client)

    clock.advance(299)
    assert is_signed_in(client)
    clock.advance(299)
    assert is_signed_in(client)
    clock.advance(300)
    assert not is_signed_in(client)
    assert end_reasons(short, oid) == ["idle"]
    with writes(short) as replayed:
        assert not is_signed_in(with_cookie(short, copy))
    assert replayed == []


def test_an_active_session_ends_at_the_maximum_age(
    short: Flask, emulator: Any, create_user: Callable[..., str], clock: Clock
) -> None:
    oid = create_user()
    client = signed_in(short, emulator, oid)

    for _ in range(3):
        clock.advance(250)
        assert is_signed_in(client)
    clock.advance(150)  # 900 s after sign-in, seen 150 s ago

    assert not is_signed_in(client)
    assert end_reasons(short, oid) == ["max_age"]


# -- bad input ------------------------------------------------------------------------------


def _garble(value: str) -> str:
    """Flip one character in the middle of a cookie."""
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


COOKIE_DAMAGE: dict[str, Callable[[str], str]] = {
    "forged": lambda _value: "eyJzaWQiOiJmb3JnZWQifQ.Z1xyzw.bm90LWEtcmVhbC1zaWduYXR1cmU",
    "truncated": lambda value: value[: len(value) // 2],
    "garbled": _garble,
    "empty": lambda _value: "",
}


@pytest.mark.parametrize("damage", COOKIE_DAMAGE)
def test_a_damaged_cookie_is_anonymous_and_changes_nothing(
    portal: Flask, emulator: Any, create_user: Callable[..., str], damage: str
) -> None:
    good = cookie_of(signed_in(portal, emulator, create_user()))
    client = with_cookie(portal, COOKIE_DAMAGE[damage](good))

    with writes(portal) as written:
        assert not is_signed_in(client)
        assert client.get("/").status_code == 302
        assert client.get("/admin/users").status_code == 302

    assert written == []


# A well-formed token no session has, then tokens of the wrong shape or type.
NO_SUCH_TOKEN = "Q" * 43


@pytest.mark.parametrize("sid", [NO_SUCH_TOKEN, "short", 12345, None, ["a"]])
def test_a_signed_cookie_naming_no_session_is_anonymous(
    portal: Flask, emulator: Any, create_user: Callable[..., str], sid: Any
) -> None:
    signed_in(portal, emulator, create_user())
    client = portal.test_client()
    with client.session_transaction() as session:
        session["sid"] = sid

    with writes(portal) as written:
        assert not is_signed_in(client)

    assert written == []


def test_a_session_of_a_deleted_user_is_anonymous(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    client = signed_in(portal, emulator, oid)
    with portal.app_context():
        db.session.execute(sa.delete(User).where(User.object_id == oid))
        db.session.commit()

    with writes(portal) as written:
        assert not is_signed_in(client)

    assert written == []


# -- sign-in flows --------------------------------------------------------------------------


def test_two_tabs_signing_in_at_once_both_complete(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user()
    client = portal.test_client()
    first = prepare_callback(client, emulator, oid, next_url="/?tab=1")
    second = prepare_callback(client, emulator, oid, next_url="/?tab=2")

    answers = [client.get(second), client.get(first)]

    assert [a.headers["Location"] for a in answers] == ["/?tab=2", "/?tab=1"]
    assert is_signed_in(client)
    assert end_reasons(portal, oid) == [None, None]


def test_a_browser_keeps_at_most_a_few_sign_in_flows(
    portal: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    client = portal.test_client()
    for _ in range(flows.PER_BROWSER + 3):
        assert client.get("/auth/login").status_code == 302

    with portal.app_context():
        kept = db.session.scalar(sa.select(sa.func.count()).select_from(SignInFlow))
    assert kept == flows.PER_BROWSER


def test_an_expired_sign_in_flow_is_refused(
    portal: Flask, emulator: Any, create_user: Callable[..., str], clock: Clock
) -> None:
    client = portal.test_client()
    callback = prepare_callback(client, emulator, create_user())

    clock.advance(flows.LIFETIME.total_seconds() + 1)
    response = client.get(callback)

    assert response.headers["Location"] == "/login"
    assert not is_signed_in(client)


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_requests_on_one_session_all_pass_and_write_last_seen_once(
    portal: Flask, emulator: Any, create_user: Callable[..., str], clock: Clock
) -> None:
    copy = cookie_of(signed_in(portal, emulator, create_user()))
    clock.advance(61)
    clients = [with_cookie(portal, copy) for _ in range(12)]
    start = threading.Barrier(len(clients))
    rows: list[int] = []
    with portal.app_context():
        engine = db.engine

    def count_rows(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("UPDATE user_sessions"):
            rows.append(cursor.rowcount)

    def click(client: FlaskClient) -> int:
        start.wait(timeout=10)
        return client.get("/_probe").status_code

    sa.event.listen(engine, "after_cursor_execute", count_rows)
    try:
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            statuses = list(pool.map(click, clients))
    finally:
        sa.event.remove(engine, "after_cursor_execute", count_rows)

    assert statuses == [200] * len(clients)
    assert sum(rows) == 1


# -- housekeeping ---------------------------------------------------------------------------


def test_purge_deletes_records_ended_or_expired_more_than_a_day_ago(
    portal: Flask,
    emulator: Any,
    create_user: Callable[..., str],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sessions, "PURGE_EVERY", timedelta(days=365))  # only the command purges
    idle_oid, gone_oid, fresh_oid, just_ended_oid = (create_user() for _ in range(4))
    signed_in(portal, emulator, idle_oid)
    log_out(signed_in(portal, emulator, gone_oid))
    clock.advance(3600 + KEEP_ENDED.total_seconds() + 1)
    fresh = signed_in(portal, emulator, fresh_oid)
    log_out(signed_in(portal, emulator, just_ended_oid))

    output = run_cli(portal, "sessions", "purge")

    assert "Purged 2 session records" in output
    assert end_reasons(portal, idle_oid) == [] and end_reasons(portal, gone_oid) == []
    assert end_reasons(portal, just_ended_oid) == ["logout"]
    assert is_signed_in(fresh)


def test_sign_ins_purge_old_records_as_they_go(
    portal: Flask, emulator: Any, create_user: Callable[..., str], clock: Clock
) -> None:
    old = create_user()
    log_out(signed_in(portal, emulator, old))
    clock.advance(KEEP_ENDED.total_seconds() + 61)

    signed_in(portal, emulator, create_user())

    assert end_reasons(portal, old) == []
