"""Production serving: gunicorn with the repo's config signs people in with threaded workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.helpers import (
    CLIENT_SECRET,
    base_env,
    free_port,
    pick_account,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


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
