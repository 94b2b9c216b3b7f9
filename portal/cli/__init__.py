"""Command-line interface: `flask --app app users|groups|sync|sessions|check-config|dev …`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from portal.cli.audit import audit_cli
from portal.cli.checks import check_config
from portal.cli.groups import groups_cli
from portal.cli.sessions import sessions_cli
from portal.cli.sync import sync_cli
from portal.cli.users import users_cli


def init_commands(app: Flask) -> None:
    """Register the portal's command groups on the app's CLI."""
    for command in (
        users_cli,
        groups_cli,
        sync_cli,
        audit_cli,
        sessions_cli,
        check_config,
        dev_cli(),
    ):
        app.cli.add_command(command)


def dev_cli() -> click.Group:
    """Build the `dev` group: helpers for a development database."""
    from portal.dev.seed import seed_command

    group = AppGroup("dev", help="Development helpers.")
    group.add_command(seed_command, "seed")
    return group
