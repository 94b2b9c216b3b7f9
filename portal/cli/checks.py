"""`flask check-config`: the admin configuration page's checks, as a deploy gate."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from portal.cli.base import PortalCommand, echo_json


@click.command("check-config", cls=PortalCommand)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@with_appcontext
def check_config(as_json: bool) -> None:
    """Run the configuration checks (Entra discovery, Graph, database); exit 1 if any fails."""
    from portal.diagnostics import run_checks

    checks = run_checks()
    if as_json:
        echo_json([{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
    else:
        for check in checks:
            click.echo(f"{status(check):<4}  {check.name}: {check.detail}")
    failed = sum(not check.ok for check in checks)
    if failed:
        raise click.ClickException(f"{failed} of {len(checks)} checks did not pass")


def status(check: Any) -> str:
    """Return `ok`, `FAIL`, or `skip` for a step that could not run after an earlier failure."""
    if check.ok:
        return "ok"
    return "skip" if getattr(check, "skipped", False) else "FAIL"
