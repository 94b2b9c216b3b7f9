"""What every portal command shares: one-line errors, the audit actor, tables and JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from portal.config import ConfigError
from portal.models import User
from portal.services import users
from portal.services.groups import GroupError
from portal.services.users import UserError

log = logging.getLogger(__name__)
# Refusals whose message is written for the person at the terminal.
REFUSALS = (UserError, GroupError, ConfigError)


class UsageProblem(click.ClickException):
    """A mistyped command line, reported in one line like every other failure."""

    exit_code = 2


def database_problem(exc: SQLAlchemyError) -> str:
    """Describe a database failure in one line without SQL, parameters or credentials."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"database error ({type(cause).__name__}): {first[:200]}"


class PortalCommand(click.Command):
    """A command whose failures print one line on stderr and exit non-zero, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning refusals and outages into a one-line ClickException."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except REFUSALS as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(database_problem(exc)) from None
        except Exception as exc:
            # A bug still must not spill a traceback on an operator; DEBUG logging keeps it.
            log.debug("command failed", exc_info=True)
            raise click.ClickException(
                f"unexpected error ({type(exc).__name__}); PORTAL_LOG_LEVEL=DEBUG shows details"
            ) from None


class PortalGroup(AppGroup):
    """A command group whose commands are PortalCommands and whose usage errors are one line."""

    command_class = PortalCommand

    def invoke(self, ctx: click.Context) -> Any:
        """Run a subcommand, reporting a bad command line in one line with a pointer to --help."""
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            raise UsageProblem(f"{exc.format_message()} (see '{where} --help')") from None


def iso(value: datetime | None) -> str | None:
    """Format a timestamp as ISO 8601, or None."""
    return value.isoformat() if value is not None else None


def echo_json(data: Any) -> None:
    """Print data as indented JSON."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def cell(value: Any) -> str:
    """Render one table cell: blanks for None, yes/no for booleans, commas between list items."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a plain aligned table with a header line."""
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in text)]) for i, h in enumerate(headers)]
    for line in [list(headers), *text]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def echo_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """Print `label: value` lines with aligned values."""
    width = max(len(label) for label, _ in fields) + 1
    for label, value in fields:
        click.echo(f"{label + ':':<{width}} {cell(value)}")


def user_options(command: Any) -> Any:
    """Add the --user/--username/--tenant options that name one user."""
    for option in reversed(
        [
            click.option("--user", "object_id", metavar="OBJECT_ID", help="Entra object ID."),
            click.option("--username", metavar="NAME", help="A Local account's username."),
            click.option(
                "--tenant", metavar="TID", help="Tenant ID, when tenants share an object ID."
            ),
        ]
    ):
        command = option(command)
    return command


def pick_user(object_id: str | None, username: str | None, tenant: str | None) -> User:
    """Return the one user the --user/--username/--tenant options name."""
    if (object_id is None) == (username is None):
        raise click.UsageError("name the user with either --user OBJECT_ID or --username NAME")
    if tenant and username is not None:
        raise click.UsageError("--tenant narrows --user only")
    return users.find_user(object_id or username or "", tenant_id=tenant)
