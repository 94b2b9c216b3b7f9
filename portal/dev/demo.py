"""`make demo`: the portal beside the bundled Entra ID + Graph emulator, with sample users.

    python -m portal.dev.demo [--port 5000] [--emulator-port 8443] [--instance-dir instance]

The emulator runs as a child process and hands over the portal's ENTRA_* variables in an env
file; the portal reads them from the environment like any other deployment, so nothing here
special-cases the emulator. Ctrl-C (or SIGTERM) stops both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from portal.config import ROOT

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "portal-demo-admin"  # noqa: S105 - printed in the banner; a local demo only
READY_TIMEOUT = 60.0


class DemoError(Exception):
    """The demo could not start; the message says why in one line."""


class RequestHandler(WSGIRequestHandler):
    """The dev server's request handler, logging paths without their query strings."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log one request; the callback's query carries an authorization code, never logged."""
        self.log("info", '"%s %s" %s', self.command, self.path.split("?", 1)[0], code)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m portal.dev.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=5000, help="the portal's port")
    parser.add_argument(
        "--emulator-port", type=int, default=8443, help="the emulator's port (0: any free one)"
    )
    parser.add_argument(
        "--instance-dir", type=Path, default=ROOT / "instance", help="database and emulator state"
    )
    parser.add_argument(
        "--certificate",
        action="store_true",
        help="the portal proves itself to the emulator with a generated certificate, no secret",
    )
    return parser.parse_args(argv)


def start_emulator(args: argparse.Namespace, base_url: str) -> subprocess.Popen[bytes]:
    """Start `python -m portal.dev.emulator` with the sample users, logging to the instance dir."""
    state = args.instance_dir / "emulator"
    state.mkdir(parents=True, exist_ok=True)
    # A file left by an earlier run must not pass for this emulator being ready.
    (args.instance_dir / "emulator.env").unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "portal.dev.emulator",
        f"--port={args.emulator_port}",
        f"--state-dir={state}",
        f"--redirect-uri={base_url}/auth/callback",
        f"--env-file={args.instance_dir / 'emulator.env'}",
        *(["--certificate"] if args.certificate else []),
    ]
    with (args.instance_dir / "emulator.log").open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: S603


def wait_for_env_file(path: Path, emulator: subprocess.Popen[bytes]) -> dict[str, str]:
    """Wait until the emulator writes its env file (it does so once it serves), and read it."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not path.is_file():
        if emulator.poll() is not None:
            raise DemoError(f"the emulator exited early; see {path.with_name('emulator.log')}")
        if time.monotonic() > deadline:
            raise DemoError("the emulator did not start within a minute")
        time.sleep(0.05)
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def sample_accounts(instance_dir: Path) -> list[str]:
    """Return the emulator's description of its sample accounts (its comment lines)."""
    log = (instance_dir / "emulator.log").read_text(errors="replace").splitlines()
    return [line.removeprefix("#").rstrip() for line in log if line.startswith("#   ")]


def portal_environment(args: argparse.Namespace, entra: dict[str, str]) -> dict[str, str]:
    """Return the contract's variables for a development portal pointed at the emulator."""
    return {
        "PORTAL_ENV": "development",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{args.port}",
        # Always the demo's own SQLite file: a DATABASE_URL in .env must not get demo users.
        "DATABASE_URL": f"sqlite:///{(args.instance_dir / 'portal.db').resolve()}",
        **entra,
    }


def prepare_database(app: Flask) -> None:
    """Apply the migrations and create the break-glass local admin once."""
    from flask_migrate import upgrade

    from portal.extensions import db
    from portal.services import users

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        try:
            users.create_local(ADMIN_USERNAME, ADMIN_PASSWORD, is_admin=True)
        except users.UserError:
            db.session.rollback()  # created by an earlier run
        else:
            db.session.commit()


def banner(url: str, entra: dict[str, str], accounts: list[str]) -> str:
    """Return what a person needs to try the demo."""
    return "\n".join(
        [
            "",
            f"  Portal running at {url}  (open it in a browser; Ctrl-C stops the demo)",
            f"  Entra ID emulator at {entra['ENTRA_AUTHORITY_HOST']}",
            "  Your browser will warn about the emulator's certificate: it comes from a local CA",
            f"  ({entra['ENTRA_CA_BUNDLE']}); proceed, or trust that CA.",
            "",
            '  Click "Sign in with Microsoft" and pick a sample account:',
            *accounts,
            "",
            f"  Local admin (break-glass): {ADMIN_USERNAME} / {ADMIN_PASSWORD}",
            f"  at {url}/login?local=1",
            "",
            "  Reconciliation: disable a sample user or drop a membership at",
            f"  {entra['ENTRA_AUTHORITY_HOST']}/_emulator/directory, then press Run now at",
            f"  {url}/admin/reconcile (or: flask --app app sync reconcile) and see the result.",
            "",
        ]
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM (and SIGINT, even when a parent shell ignored it) into a clean shutdown."""
    raise KeyboardInterrupt


def stop(emulator: subprocess.Popen[bytes]) -> None:
    """Stop the emulator child, forcefully if it does not exit within a few seconds."""
    if emulator.poll() is None:
        emulator.terminate()
        try:
            emulator.wait(timeout=5)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()


def run(args: argparse.Namespace) -> None:
    """Start the emulator, then serve the portal until interrupted."""
    args.instance_dir = args.instance_dir.resolve()
    args.instance_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{args.port}"
    emulator = start_emulator(args, url)
    try:
        entra = wait_for_env_file(args.instance_dir / "emulator.env", emulator)
        os.environ.update(portal_environment(args, entra))
        from portal import create_app

        app = create_app()
        prepare_database(app)
        # A taken port ends here: werkzeug prints one line and exits 1 (the emulator stops below).
        server = make_server(
            "127.0.0.1", args.port, app, threaded=True, request_handler=RequestHandler
        )
        print(banner(url, entra, sample_accounts(args.instance_dir)), flush=True)
        server.serve_forever()  # returns on Ctrl-C: werkzeug catches the KeyboardInterrupt
    finally:
        stop(emulator)
    print("\n  Demo stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit 0 on Ctrl-C, 1 with one line on stderr when it cannot start."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        run(parse_args(argv))
    except KeyboardInterrupt:
        print("\n  Demo stopped before it was ready.", flush=True)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
