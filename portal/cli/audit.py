"""`flask audit …`: read the audit trail and purge what is past its retention."""

from __future__ import annotations

import click
from flask import current_app

from portal.cli.base import PortalGroup, echo_json, echo_table
from portal.extensions import db
from portal.services import audit_query

DEFAULT_LIMIT = 1000


@click.group("audit", cls=PortalGroup)
def audit_cli() -> None:
    """Read and purge the audit trail."""


@audit_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--action", default=None, help="Only events of this action, e.g. signin.refused.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="At most this many events, newest first.",
)
def list_events(as_json: bool, action: str | None, limit: int) -> None:
    """List audit events, newest first."""
    rows = [audit_query.as_dict(e) for e in audit_query.newest(action, limit)]
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("AT", "ACTOR", "ACTION", "TARGET"),
        ((r["at"], r["actor"], r["action"], r["target"]) for r in rows),
    )


@audit_cli.command("purge")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days instead of AUDIT_RETENTION_DAYS.",
)
def purge_events(days: int | None) -> None:
    """Delete audit events older than AUDIT_RETENTION_DAYS (default 365); print how many."""
    keep = days or current_app.config["AUDIT_RETENTION_DAYS"]
    removed = audit_query.purge(keep)
    db.session.commit()
    click.echo(f"{removed} audit event(s) older than {keep} days deleted")
