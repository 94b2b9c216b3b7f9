"""`flask sessions …`: housekeeping of the server-side session records."""

from __future__ import annotations

import click

from portal.cli.base import PortalGroup
from portal.extensions import db
from portal.services import sessions

BATCH = 10_000


@click.group("sessions", cls=PortalGroup)
def sessions_cli() -> None:
    """Manage the server-side session records."""


@sessions_cli.command("purge")
def purge_sessions() -> None:
    """Delete ended and expired session records (kept a day) and expired sign-in flows."""
    total = 0
    # Batches of their own transactions: a purge of millions never holds one huge lock.
    while count := sessions.purge(BATCH):
        db.session.commit()
        total += count
    db.session.commit()
    click.echo(f"Purged {total} session record{'s' if total != 1 else ''}.")
