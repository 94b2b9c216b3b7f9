"""Production serving and outages: gunicorn with the repo's config, the database going away and
coming back, proxies, request IDs and logs that never carry a secret."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.config import load_config
from portal.extensions import db
from portal.models import Base, SyncRecord, User
from tests.conftest import CLIENT_SECRET, base_env, pick_account, prepare_callback, sign_in

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_app(emulator: Any, database_url: str, tmp_path: Path, **env: str) -> Flask:
    """Build a portal from environment variables, without make_app's cleanup (it needs the DB)."""
    config = load_config({**base_env(emulator, database_url), **env}, str(tmp_path))
    return create_app({**config, "TESTING": True})


def closed_database_url() -> str:
    """Return a PostgreSQL URL whose port refuses connections."""
    return f"postgresql+psycopg://portal@127.0.0.1:{free_port()}/portal"


def count_rows(app: Flask, model: type[Base]) -> int:
    """Count a table's rows through the app's database."""
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def session_cookie(client: FlaskClient) -> str:
    """Return the value of the portal's session cookie."""
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    return cookie.value


# -- gunicorn -----------------------------------------------------------------------------


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Poll /healthz until it answers 200, failing fast if the server process exits."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)  # a readiness poll with a deadline, not a guess at timing
    raise AssertionError("gunicorn did not become healthy in time")


class Server:
    """A portal running under gunicorn in a child process."""

    def __init__(self, url: str, log_path: Path, process: subprocess.Popen[bytes]) -> None:
        self.url, self.log_path, self.process = url, log_path, process

    def stop(self) -> list[dict[str, Any]]:
        """Stop gunicorn gracefully and return its log, one JSON object per line."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=40)
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def gunicorn_portal(
    emulator: Any, make_app: Callable[..., Flask], database_url: str, tmp_path: Path
) -> Iterator[Server]:
    """Run the portal under gunicorn with the repo's gunicorn.conf.py and JSON logs."""
    make_app()  # only so the rows the sign-in writes are deleted after the test
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client_id = str(uuid.uuid4())
    redirect_uris = [f"{url}/auth/callback"]
    emulator.register_client(client_id, CLIENT_SECRET, redirect_uris, emulator.tenant_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "ENTRA_"))}
    env.update(base_env(emulator, database_url))
    env.update(
        PORTAL_BASE_URL=url,
        ENTRA_CLIENT_ID=client_id,
        PORT=str(port),
        WEB_CONCURRENCY="2",
        PORTAL_LOG_FORMAT="json",
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "app:app"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    server = Server(url, log_path, process)
    try:
        wait_until_healthy(url, process, time.monotonic() + 30)
        yield server
    finally:
        server.stop()


def test_sign_in_through_gunicorn_with_the_repo_config(
    gunicorn_portal: Server, emulator: Any, create_user: Callable[..., str]
) -> None:
    url = gunicorn_portal.url
    object_id = create_user("Gunicorn Person")
    browser = requests.Session()
    browser.trust_env = False

    started = browser.get(f"{url}/auth/login", allow_redirects=False, timeout=10)
    answer = pick_account(emulator, started.headers["Location"], object_id)
    callback = browser.get(answer.headers["Location"], allow_redirects=False, timeout=30)
    home = browser.get(f"{url}/", allow_redirects=False, timeout=10)
    browser.close()  # no idle keep-alive connection for the graceful stop to wait out
    log = gunicorn_portal.stop()

    assert callback.status_code == 302 and callback.headers["Location"] in ("/", f"{url}/")
    assert home.status_code == 200 and "Gunicorn Person" in home.text
    access = {e["request_id"]: e for e in log if e["logger"] == "gunicorn.access"}
    assert access[callback.headers["X-Request-ID"]]["path"] == "/auth/callback"
    assert access[home.headers["X-Request-ID"]]["status"] == 200
    audit = [e for e in log if e["logger"] == "portal.audit" and "sign-in" in e["message"]]
    assert [e["request_id"] for e in audit] == [callback.headers["X-Request-ID"]]
    code = answer.headers["Location"].split("code=")[1].split("&")[0]
    assert all(code not in json.dumps(entry) for entry in log)


def test_gunicorn_config_uses_threaded_workers_with_safe_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS"):
        monkeypatch.delenv(name, raising=False)
    settings: dict[str, Any] = {}
    source = (ROOT / "gunicorn.conf.py").read_text()
    exec(compile(source, "gunicorn.conf.py", "exec"), settings)  # noqa: S102

    assert (settings["worker_class"], settings["threads"]) == ("gthread", 8)
    assert settings["timeout"] > 10 + 10  # the Graph budget plus the token redemption
    assert 1 <= settings["workers"] <= 8 and settings["bind"] == ["127.0.0.1:8000"]
    assert settings["logger_class"] == "portal.log.GunicornLogger"
    assert (
        "%(q)s" not in settings["access_log_format"]
        and "%(r)s" not in settings["access_log_format"]
    )


# -- the database going away --------------------------------------------------------------


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
    down = build_app(emulator, database_url, tmp_path, DATABASE_URL=closed_database_url())
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
    emulator: Any, database_url: str, tmp_path: Path, create_user: Callable[..., str]
) -> None:
    down = build_app(emulator, database_url, tmp_path, DATABASE_URL=closed_database_url())
    client = down.test_client()

    callback = sign_in(client, emulator, create_user("Unlucky Person"))

    # The contract allows the callback no 5xx: the person lands on /login with a clear message.
    assert callback.status_code == 302
    assert callback.headers["Location"].endswith("/login")
    page = client.get("/login")
    assert page.status_code == 200
    assert "cannot complete sign-ins right now" in page.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "_user_id" not in session


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
    with client.session_transaction() as session:
        assert "_user_id" not in session


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
    app = build_app(emulator, database_url, tmp_path, DATABASE_URL=proxied)
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


# -- proxies, request IDs and logs ---------------------------------------------------------


@pytest.mark.parametrize(("hops", "seen"), [("0", "127.0.0.1"), ("1", "203.0.113.9")])
def test_trusted_proxy_hops_decide_the_client_address_and_scheme(
    make_app: Callable[..., Flask], hops: str, seen: str
) -> None:
    app = make_app(PORTAL_TRUSTED_PROXIES=hops)
    app.add_url_rule("/_whoami", "whoami", lambda: f"{_remote()} {_scheme()}")
    headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https"}

    answer = app.test_client().get(
        "/_whoami", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )

    assert answer.get_data(as_text=True) == f"{seen} {'https' if hops == '1' else 'http'}"


def _remote() -> str:
    """Return the client address Flask sees."""
    from flask import request

    return request.remote_addr or ""


def _scheme() -> str:
    """Return the scheme Flask sees."""
    from flask import request

    return request.scheme


def test_request_ids_are_echoed_or_made(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-1234"})
    hostile = client.get("/healthz", headers={"X-Request-ID": "<script>" + "x" * 100})
    made = client.get("/healthz")

    assert given.headers["X-Request-ID"] == "lb-1234"
    assert "<" not in hostile.headers["X-Request-ID"] and len(hostile.headers["X-Request-ID"]) == 16
    assert made.headers["X-Request-ID"] != hostile.headers["X-Request-ID"]


def test_json_logs_are_one_object_per_line_with_the_request_id(
    monkeypatch: pytest.MonkeyPatch,
    make_app: Callable[..., Flask],
    capsys: pytest.CaptureFixture[str],
    emulator: Any,
    create_user: Callable[..., str],
) -> None:
    monkeypatch.setenv("PORTAL_LOG_FORMAT", "json")
    client = make_app().test_client()
    capsys.readouterr()

    callback = sign_in(client, emulator, create_user("Json Person"))
    out = capsys.readouterr().out

    entries = [json.loads(line) for line in out.splitlines()]
    sign_ins = [e for e in entries if e["logger"] == "portal.audit" and "sign-in" in e["message"]]
    assert callback.status_code == 302 and len(sign_ins) == 1
    assert sign_ins[0]["request_id"] == callback.headers["X-Request-ID"]
    assert {"time", "level", "logger", "request_id", "message"} <= set(sign_ins[0])


def test_no_log_line_of_a_sign_in_carries_a_token_or_secret(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_app().test_client()
    issued: list[str] = []
    from portal.auth import entra

    original = entra.EntraClient._acquire

    def capture(self: Any, flow: dict[str, Any], auth_response: dict[str, str]) -> dict[str, Any]:
        result = original(self, flow, auth_response)
        issued.extend(result.get(k, "") for k in ("id_token", "access_token", "refresh_token"))
        return result

    monkeypatch.setattr(entra.EntraClient, "_acquire", capture)
    caplog.set_level(logging.INFO)  # more than production's WARNING for other libraries
    caplog.set_level(logging.DEBUG, logger="portal")
    path = prepare_callback(client, emulator, create_user("Secret Keeper"))
    code = path.split("code=")[1].split("&")[0]

    assert client.get(path).status_code == 302
    secrets = [s for s in issued if s] + [CLIENT_SECRET, code]
    assert len(secrets) >= 3
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert any(r.name == "portal.audit" and "sign-in" in r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in text
        assert secret.split(".")[-1] not in text  # not even a JWT's signature alone
