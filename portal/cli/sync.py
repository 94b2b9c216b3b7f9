"""`flask sync status` (what group sync did at recent sign-ins) and `flask sync reconcile`."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click
import sqlalchemy as sa

from portal.auth import entra
from portal.cli.base import PortalGroup, echo_json, echo_table, iso
from portal.cli.users import JSON_HELP
from portal.extensions import db
from portal.models import SyncRecord
from portal.models.sync import FAILED
from portal.services import reconcile


@click.group("sync", cls=PortalGroup)
def sync_cli() -> None:
    """Inspect group sync."""


def record_json(record: SyncRecord) -> dict[str, Any]:
    """Return the contract's JSON object for one sync record."""
    return {
        "tenant_id": record.tenant_id,
        "object_id": record.object_id,
        "at": iso(record.synced_at),
        "status": record.status,
        "source": record.source,
        "added": sorted(record.added or []),
        "removed": sorted(record.removed or []),
        "reason": record.reason,
        "graph_calls": record.graph_calls,
    }


def recent_records(object_id: str | None, failed_only: bool, limit: int) -> list[SyncRecord]:
    """Return sync records newest first, optionally for one user or failures only."""
    query = sa.select(SyncRecord).order_by(SyncRecord.synced_at.desc(), SyncRecord.id.desc())
    if object_id:
        query = query.where(SyncRecord.object_id == object_id.strip().lower())
    if failed_only:
        query = query.where(SyncRecord.status == FAILED)
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


@sync_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--user", "object_id", metavar="OBJECT_ID", help="Only this user's sign-ins.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="How many records at most; 0 for all.",
)
@click.option("--failed", is_flag=True, help="Only syncs that failed.")
def sync_status(as_json: bool, object_id: str | None, limit: int, failed: bool) -> None:
    """Show recent sync records, newest first."""
    records = [record_json(r) for r in recent_records(object_id, failed, limit)]
    if as_json:
        echo_json(records)
        return
    echo_table(
        ("AT", "TENANT", "OBJECT ID", "STATUS", "SOURCE", "ADDED", "REMOVED", "CALLS", "REASON"),
        (
            (r["at"], r["tenant_id"], r["object_id"], r["status"], r["source"])
            + (r["added"], r["removed"], r["graph_calls"], r["reason"])
            for r in records
        ),
    )


@sync_cli.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--full", is_flag=True, help="Read everything again instead of the changes.")
@click.option("--force", is_flag=True, help="Apply even above RECONCILE_MAX_CHANGES.")
def sync_reconcile(as_json: bool, full: bool, force: bool) -> None:
    """Reconcile users and memberships with Entra once (Graph delta queries)."""
    # Logs go to stdout; during the run they go to stderr so stdout stays one JSON object.
    with contextlib.redirect_stdout(sys.stderr):
        outcome = reconcile.run(entra.graph_app_token, full=full, force=force)
    if as_json:
        echo_json(outcome.as_json())
    else:
        counts = outcome.as_json()
        click.echo(
            f"{outcome.status}: {counts['users_disabled']} disabled, "
            f"{counts['users_enabled']} enabled, {counts['memberships_added']} membership(s) "
            f"added, {counts['memberships_removed']} removed, {counts['graph_calls']} Graph "
            f"call(s){' (full read)' if outcome.full else ''}"
            + (f"; {outcome.reason}" if outcome.reason else "")
        )
    if outcome.status != "ok":
        click.echo(f"reconcile {outcome.status}: {outcome.reason}", err=True)
        raise click.exceptions.Exit(1)
