"""Command line: run the emulator with the demo data until killed (used by `make demo`).

    python -m portal.dev.emulator [--port 8443] [--state-dir instance/emulator] [--client-id ID]
        [--client-secret SECRET] [--redirect-uri URI ...] [--tenant-id GUID]
        [--post-logout-redirect-uri URI ...] [--latency SECONDS] [--env-file PATH]

Prints the portal's environment as KEY=VALUE lines (sourceable; the sample accounts follow as
comments) and, with --env-file, writes the same lines to that file once the server is ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from .core import Emulator
from .credentials import make_certificate
from .sample import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, SampleData

DEFAULT_REDIRECT_URI = "http://127.0.0.1:5000/auth/callback"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m portal.dev.emulator", description="Entra ID + Microsoft Graph emulator"
    )
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--state-dir", type=Path, default=Path("instance/emulator"))
    parser.add_argument("--tenant-id", default=DEMO_TENANT_ID)
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
    parser.add_argument("--redirect-uri", action="append", dest="redirect_uris")
    parser.add_argument("--post-logout-redirect-uri", action="append", dest="logout_uris")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--env-file", type=Path, help="write the KEY=VALUE lines here too")
    parser.add_argument(
        "--certificate",
        action="store_true",
        help="make the portal prove itself with a generated certificate instead of the secret",
    )
    return parser.parse_args(argv)


def default_logout_uris(redirect_uris: list[str]) -> list[str]:
    """Return the portal pages a sign-out may return to: each redirect URI's `/` and `/login`."""
    uris: list[str] = []
    for uri in redirect_uris:
        parts = urlsplit(uri)
        uris += [f"{parts.scheme}://{parts.netloc}/", f"{parts.scheme}://{parts.netloc}/login"]
    return list(dict.fromkeys(uris))


def env_lines(
    emu: Emulator, data: SampleData, secret: str, certificate: Path | None = None
) -> list[str]:
    """Return the portal's environment for this emulator as KEY=VALUE lines."""
    credential = (
        [f"ENTRA_CLIENT_CERTIFICATE={certificate.resolve()}", "ENTRA_CLIENT_SECRET="]
        if certificate
        else [f"ENTRA_CLIENT_SECRET={secret}"]
    )
    return [
        f"ENTRA_AUTHORITY_HOST={emu.url}",
        f"GRAPH_ENDPOINT={emu.url}",
        f"ENTRA_CA_BUNDLE={emu.ca_path.resolve()}",
        f"ENTRA_TENANT_ID={data.tenant_id}",
        f"ENTRA_CLIENT_ID={data.client_id}",
        *credential,
        f"PORTAL_ADMIN_GROUP_IDS={data.portal_admins_group_id}",
    ]


def client_certificate(emu: Emulator, client_id: str) -> Path:
    """Create (once) the demo app's certificate in the state dir and upload it to the app."""
    path = emu.state_dir / "client-certificate.pem"
    if not path.is_file():
        path.write_text(make_certificate("portal-demo"))
        path.chmod(0o600)
    emu.add_client_certificate(client_id, path.read_text())
    return path


def account_lines(emu: Emulator, data: SampleData) -> list[str]:
    """Return comment lines describing the sample accounts."""
    lines = ["# Sample accounts (pick one on the emulator's sign-in page):"]
    for oid in data.users.values():
        user = emu.user(oid)
        note = emu.account_notes.get(oid) or f"{len(emu.transitive_group_ids(oid))} groups"
        lines.append(f"#   {user.display_name:<22} {user.upn}")
        lines.append(f"#     {note}")
    return lines


def write_env_file(path: Path, lines: list[str]) -> None:
    """Write the lines atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    """Start the emulator with the demo data and serve until SIGINT or SIGTERM."""
    args = parse_args(argv)
    if args.env_file:
        args.env_file.unlink(missing_ok=True)  # a stale file must not look like a ready server
    redirect_uris = args.redirect_uris or [DEFAULT_REDIRECT_URI]
    emu = Emulator(state_dir=args.state_dir)
    data = emu.load_sample_data(
        args.client_id,
        args.client_secret,
        redirect_uris,
        tenant_id=args.tenant_id,
        post_logout_redirect_uris=args.logout_uris or default_logout_uris(redirect_uris),
    )
    emu.latency = args.latency
    emu.start(port=args.port)
    certificate = client_certificate(emu, args.client_id) if args.certificate else None
    lines = env_lines(emu, data, args.client_secret, certificate)
    print("\n".join(lines + account_lines(emu, data)), flush=True)
    if args.env_file:
        write_env_file(args.env_file, lines)
    _serve_until_signalled()
    emu.stop()
    return 0


def _serve_until_signalled() -> None:
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        """Let main() shut the server down cleanly."""
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()


if __name__ == "__main__":
    sys.exit(main())
