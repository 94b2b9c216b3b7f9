"""`python -m portal.dev.demo`: a person can sign in through it, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60


def free_port() -> int:
    """Return a port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Demo:
    """A running demo process and the lines it printed."""

    def __init__(self, instance_dir: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portal.dev.demo",
                f"--instance-dir={instance_dir}",
                f"--port={port}",
                "--emulator-port=0",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        self.output: list[str] = []

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Block until a printed line matches, failing if the demo exits first."""
        while (line := self.lines.get(timeout=STARTUP_TIMEOUT)) is not None:
            self.output.append(line)
            if match := re.search(pattern, line):
                return match
        pytest.fail("the demo exited early:\n" + "".join(self.output))

    def interrupt(self) -> int:
        """Press Ctrl-C: SIGINT to the whole process group; return the exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=15)


def signs_in_locally(url: str, username: str, password: str) -> bool:
    """Use the local sign-in form; tell whether it lands on the home page."""
    browser = requests.Session()
    browser.trust_env = False
    form = browser.get(f"{url}/login?local=1", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    assert token is not None, form
    data = {"csrf_token": token.group(1), "username": username, "password": password}
    response = browser.post(f"{url}/login", data=data, allow_redirects=False, timeout=10)
    return response.status_code == 302 and response.headers["Location"] == "/"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """Run the demo on free ports with its state under a temporary directory."""
    running = Demo(tmp_path / "instance", free_port())
    yield running
    if running.process.poll() is None:
        os.killpg(running.process.pid, signal.SIGKILL)
        running.process.wait()
    running.pump.join(timeout=10)
    assert running.process.stdout is not None
    running.process.stdout.close()


@pytest.mark.slow
def test_demo_serves_the_portal_and_a_sample_user_signs_in(demo: Demo, tmp_path: Path) -> None:
    emulator_url = demo.wait_for(r"Entra ID emulator at (https://\S+)").group(1)
    demo.wait_for(r"Adele Vance")
    demo.wait_for(r"Local admin \(break-glass\): admin")
    portal, idp = requests.Session(), requests.Session()
    portal.trust_env = idp.trust_env = False
    idp.verify = str(tmp_path / "instance" / "emulator" / "ca.pem")

    assert portal.get(f"{demo.url}/healthz", timeout=10).json() == {"status": "ok"}
    started = portal.get(f"{demo.url}/auth/login", allow_redirects=False, timeout=10)
    authorize = started.headers["Location"]
    assert authorize.startswith(emulator_url)
    picker = idp.get(authorize, timeout=10)
    accounts = dict(re.findall(r'value="([^"]+)">(.*?)</button>', picker.text, re.DOTALL))
    adele = next(oid for oid, label in accounts.items() if "Adele Vance" in label)
    answer = idp.post(authorize, data={"account": adele}, allow_redirects=False, timeout=10)
    callback = urlsplit(answer.headers["Location"])
    home = portal.get(f"{demo.url}{callback.path}?{callback.query}", timeout=10)

    assert home.url == f"{demo.url}/"
    assert "Adele Vance" in home.text and "AdeleV@contoso.com" in home.text
    # The picker and the banner say how many groups the portal will show; so does the portal.
    promised = re.search(r"(\d+) groups in the portal", accounts[adele]).group(1)
    assert re.search(
        r"Adele Vance.*\n.*" + promised + " groups in the portal", "".join(demo.output)
    )
    assert f'Your groups <span class="count">{promised}</span>' in home.text
    assert signs_in_locally(demo.url, "admin", "portal-demo-admin")
    assert demo.interrupt() == 0
    demo.wait_for(r"Demo stopped\.")
    with pytest.raises(requests.ConnectionError):
        idp.get(f"{emulator_url}/common/v2.0/.well-known/openid-configuration", timeout=5)
