"""The database going away and coming back: 503 without a traceback, no half-written sign-in."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.database import ping_when_idle
from portal.extensions import db
from portal.models import Base, SyncRecord, User, UserSession
from tests.helpers import (
    Clock,
    closed_database_url,
    count_rows,
    emulator_app,
    free_port,
    prepare_callback,
    session_cookie,
    sign_in,
)


def test_a_closed_database_port_answers_503_without_a_traceback(
    emulator: Any,
    make_app: Callable[..., Flask],
    database_url: str,
    tmp_path: Path,
    create_user: Callable[..., str],
) -> None:
    working = make_app()
    signed_in = working.test_client()
    assert sign_in(signed_in, emulator, create_user("Outage Person")).status_code == 302
    down = emulator_app(emulator, database_url, tmp_path, DATABASE_URL=closed_database_url())
    client = down.test_client()
    # Another app server with the same SECRET_KEY: the session cookie is valid there too.
    client.set_cookie("portal_session", session_cookie(signed_in), domain="localhost")

    health = client.get("/healthz")
    page = client.get("/")

    assert health.status_code == 503 and health.get_json() == {"status": "unavailable"}
    assert page.status_code == 503
    assert "cannot reach its database" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)


def test_a_sign_in_while_the_database_is_closed_fails_cleanly(
    emulator: Any,
    make_app: Callable[..., Flask],
    database_url: str,
    tmp_path: Path,
    create_user: Callable[..., str],
) -> None:
    down = emulator_app(emulator, database_url, tmp_path, DATABASE_URL=closed_database_url())
    client = down.test_client()
    # The flow was started while the database answered (on another app server).
    working = make_app().test_client()
    callback_path = prepare_callback(working, emulator, create_user("Unlucky Person"))
    sign_in_cookie = working.get_cookie("portal_signin", path="/auth")
    assert sign_in_cookie is not None
    client.set_cookie("portal_signin", sign_in_cookie.value, path="/auth")

    started = client.get("/auth/login")
    callback = client.get(callback_path)

    # The contract allows the callback no 5xx: the person lands on /login with a clear message.
    for response in (started, callback):
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/login")
    page = client.get("/login")
    assert page.status_code == 200
    assert "cannot complete sign-ins right now" in page.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "sid" not in session


def test_a_database_failure_mid_sign_in_leaves_nothing_half_written(
    make_app: Callable[..., Flask], emulator: Any, create_user: Callable[..., str]
) -> None:
    app = make_app()
    client = app.test_client()
    with app.app_context():
        engine = db.engine

    def fail_on_sync_record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The user row is already flushed when the sync record is written: the worst moment.
        if statement.lstrip().upper().startswith("INSERT INTO SYNC_RECORDS"):
            raise sa.exc.OperationalError(statement, {}, ConnectionError("server closed"))

    sa.event.listen(engine, "before_cursor_execute", fail_on_sync_record)
    try:
        callback = sign_in(client, emulator, create_user("Half Written"))
    finally:
        sa.event.remove(engine, "before_cursor_execute", fail_on_sync_record)

    assert callback.status_code == 302 and callback.headers["Location"].endswith("/login")
    assert count_rows(app, User) == 0 and count_rows(app, SyncRecord) == 0
    assert count_rows(app, UserSession) == 0
    with client.session_transaction() as session:
        assert "sid" not in session


class TcpProxy:
    """A TCP forwarder in front of PostgreSQL that the test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None

    def start(self) -> None:
        """Listen on the proxy's port and forward every connection to the target."""
        if self.listener is None:
            self.listener = socket.create_server(("127.0.0.1", self.port))
            threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        """Accept connections until the listener is shut down."""
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [downstream, upstream]
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        """Copy bytes one way until either side closes."""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Refuse new connections and break every open one, like a database going down."""
        if self.listener is not None:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
            self.listener.close()
            self.listener = None
        with self.lock:
            open_sockets, self.sockets = self.sockets, []
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self) -> None:
        """Accept and forward connections again, like the database coming back."""
        self.start()


@pytest.fixture
def proxied_app(
    emulator: Any, database_url: str, tmp_path: Path
) -> Iterator[tuple[Flask, TcpProxy]]:
    """A portal whose PostgreSQL connections pass through a TcpProxy."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("cutting a server connection needs PostgreSQL")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = emulator_app(emulator, database_url, tmp_path, DATABASE_URL=proxied)
    yield app, proxy
    proxy.restore()
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        db.engine.dispose()
    proxy.cut()


def test_the_portal_recovers_by_itself_when_the_database_returns(
    proxied_app: tuple[Flask, TcpProxy], emulator: Any, create_user: Callable[..., str]
) -> None:
    app, proxy = proxied_app
    client = app.test_client()
    assert sign_in(client, emulator, create_user("Patient Person")).status_code == 302
    assert client.get("/").status_code == 200

    proxy.cut()
    during = (client.get("/").status_code, client.get("/healthz").status_code)
    proxy.restore()
    after = (client.get("/healthz").status_code, client.get("/"))

    assert during == (503, 503)
    assert after[0] == 200
    assert after[1].status_code == 200 and "Patient Person" in after[1].get_data(as_text=True)


def _pinging_engine(tmp_path: Path) -> tuple[sa.Engine, list[str]]:
    """A SQLite engine with the portal's idle ping, whose pings are counted or made to fail."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ping.db'}")
    ping_when_idle(engine)
    pings: list[str] = []

    def ping(_connection: Any) -> bool:
        pings.append("ping")
        if "dead" in pings:
            raise sqlite3.OperationalError("the server closed the connection")
        return True

    engine.dialect.do_ping = ping  # type: ignore[method-assign]
    return engine, pings


def test_a_connection_used_moments_ago_is_not_pinged(tmp_path: Path, clock: Clock) -> None:
    engine, pings = _pinging_engine(tmp_path)
    for _ in range(3):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        clock.advance(5)
    assert pings == []


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(tmp_path: Path, clock: Clock) -> None:
    engine, pings = _pinging_engine(tmp_path)
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
    clock.advance(11)
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is first  # pinged, alive, kept
    assert pings == ["ping"]
    pings.append("dead")
    clock.advance(11)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert conn.connection.dbapi_connection is not first  # the dead one was replaced
