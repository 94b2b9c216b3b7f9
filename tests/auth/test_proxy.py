"""PORTAL_HTTPS_PROXY: sign-in and Graph through a real proxy process (Debian's tinyproxy)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.helpers import sign_in

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Run tinyproxy on a free port for this test; yield its URL and its log file."""
    if not Path(TINYPROXY).is_file():
        pytest.skip("tinyproxy is not installed (.ci/run installs Debian's tinyproxy)")
    port, log = free_port(), tmp_path / "tinyproxy.log"
    config = tmp_path / "tinyproxy.conf"
    # No ConnectPort line: CONNECT to any port (the emulator listens on an ephemeral one).
    config.write_text(
        f"Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nLogLevel Connect\n"
        f'LogFile "{log}"\n'
    )
    process = subprocess.Popen([TINYPROXY, "-d", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Poll until the proxy accepts connections; fail if it exits or never listens."""
    for _ in range(250):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        try:
            process.wait(timeout=0.02)  # doubles as the pause between polls
        except subprocess.TimeoutExpired:
            continue
        pytest.fail("tinyproxy exited at start")
    pytest.fail("tinyproxy did not start listening")


def test_sign_in_and_graph_go_through_the_proxy(
    make_app: Callable[..., Flask],
    emulator: Any,
    create_user: Callable[..., str],
    proxy: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, log = proxy
    monkeypatch.setattr(emulator, "group_claim_limit", 0)  # the overage path: Graph is called
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # ambient proxies stay ignored
    app = make_app(PORTAL_HTTPS_PROXY=url)
    oid = create_user("Proxied User")
    emulator.add_member(emulator.add_group(emulator.tenant_id, "Behind the proxy"), oid)

    response = sign_in(app.test_client(), emulator, oid)

    assert response.status_code == 302 and response.headers["Location"] == "/"
    host = emulator.url.removeprefix("https://")
    tunnels = [line for line in log.read_text().splitlines() if f"CONNECT {host}" in line]
    assert tunnels, "no CONNECT through the proxy"
    assert emulator.counters.get("graph.getMemberGroups", 0) + emulator.counters.get(
        "graph.transitiveMemberOf", 0
    )


def test_a_dead_proxy_fails_sign_in_on_the_login_page_and_logs_why(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PORTAL_HTTPS_PROXY=f"http://127.0.0.1:{free_port()}")
    client = app.test_client()

    with caplog.at_level(logging.WARNING, logger="portal"):
        response = client.get("/auth/login")

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "cannot be reached" in client.get("/login").text
    assert any("ProxyError" in r.getMessage() for r in caplog.records)
