"""The command line used by `make demo`: prints and writes the portal's environment, serves."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from portal.auth.entra import EntraClient
from portal.config import load_config
from portal.dev.emulator import DEMO_CLIENT_ID, DEMO_TENANT_ID
from portal.dev.emulator.__main__ import default_logout_uris
from portal.dev.emulator.tokens import GRAPH_RESOURCE

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 15
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the emulator did not write its env file"
        time.sleep(0.05)
    return path.read_text()


def test_cli_serves_demo_and_writes_env_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    state = tmp_path_factory.mktemp("cli")
    env_file = state / "emulator.env"
    command = [
        sys.executable,
        "-m",
        "portal.dev.emulator",
        "--port",
        "0",
        "--state-dir",
        str(state),
    ]
    process = subprocess.Popen(
        [*command, "--env-file", str(env_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        values = dict(line.split("=", 1) for line in _wait_for(env_file, process).splitlines())
        assert values["ENTRA_TENANT_ID"] == DEMO_TENANT_ID
        assert values["ENTRA_CLIENT_ID"] == DEMO_CLIENT_ID
        assert values["ENTRA_AUTHORITY_HOST"] == values["GRAPH_ENDPOINT"]
        assert values["ENTRA_CA_BUNDLE"] == str(state / "ca.pem")
        assert values["PORTAL_ADMIN_GROUP_IDS"] and values["ENTRA_CLIENT_SECRET"]
        session = requests.Session()
        session.trust_env = False
        session.verify = values["ENTRA_CA_BUNDLE"]
        host = values["ENTRA_AUTHORITY_HOST"]
        discovery = f"{host}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration"
        assert session.get(discovery, timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "ENTRA_AUTHORITY_HOST=https://127.0.0.1:" in stdout and "Megan Bowen" in stdout


def test_default_logout_uris() -> None:
    assert default_logout_uris(["http://127.0.0.1:5000/auth/callback"]) == [
        "http://127.0.0.1:5000/",
        "http://127.0.0.1:5000/login",
    ]


def test_cli_with_certificate_gives_the_portal_a_certificate_entra_accepts(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    state = tmp_path_factory.mktemp("cli-cert")
    env_file = state / "emulator.env"
    command = [
        sys.executable,
        "-m",
        "portal.dev.emulator",
        "--port",
        "0",
        "--state-dir",
        str(state),
    ]
    process = subprocess.Popen(
        [*command, "--certificate", "--env-file", str(env_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        values = dict(line.split("=", 1) for line in _wait_for(env_file, process).splitlines())
        config = load_config({**values, "PORTAL_ENV": "development"}, str(state))
        token = EntraClient(config).acquire_app_token(GRAPH_RESOURCE)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert values["ENTRA_CLIENT_SECRET"] == ""
    assert "PRIVATE KEY" in Path(values["ENTRA_CLIENT_CERTIFICATE"]).read_text()
    assert config["ENTRA_CLIENT_CERTIFICATE"] and token
