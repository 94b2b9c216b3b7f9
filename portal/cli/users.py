"""`flask users …`: list, show, create admins, disable and enable."""

from __future__ import annotations

import sys
from typing import Any

import click

from portal.cli.base import (
    PortalGroup,
    echo_fields,
    echo_json,
    echo_table,
    iso,
    pick_user,
    user_options,
)
from portal.extensions import db
from portal.models import User
from portal.services import groups, operations, users
from portal.services.audit import CLI

JSON_HELP = "Print JSON instead of a table."


@click.group("users", cls=PortalGroup)
def users_cli() -> None:
    """Manage portal users."""


def user_json(user: User, group_names: list[str]) -> dict[str, Any]:
    """Return the contract's JSON object for one user."""
    return {
        "tenant_id": user.tenant_id,
        "object_id": user.object_id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "user_type": user.user_type,
        "is_active": user.is_active,
        "is_admin": user.is_admin,
        "groups": group_names,
        "last_login_at": iso(user.last_login_at),
    }


def user_key(user: User) -> str | None:
    """Return what names the user on the command line: the username or the object ID."""
    return user.username or user.object_id


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def list_users(as_json: bool) -> None:
    """List every user with their groups."""
    everyone = users.list_all()
    names = groups.names_by_user()  # one query for every membership, not one per user
    if as_json:
        echo_json([user_json(u, names.get(u.id, [])) for u in everyone])
        return
    echo_table(
        ("USER", "NAME", "EMAIL", "TYPE", "ACTIVE", "ADMIN", "LAST SIGN-IN", "GROUPS"),
        (
            (user_key(u), u.display_name, u.email, u.user_type, u.is_active, u.is_admin)
            + (iso(u.last_login_at), names.get(u.id, []))
            for u in everyone
        ),
    )


@users_cli.command("show")
@user_options
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def show_user(
    object_id: str | None, username: str | None, tenant: str | None, as_json: bool
) -> None:
    """Show one user and how they joined each of their groups."""
    user = pick_user(object_id, username, tenant)
    memberships = [(g.name, source) for g, source in groups.memberships_of(user)]
    data = user_json(user, sorted(name for name, _ in memberships))
    data.update(upn=user.upn, created_at=iso(user.created_at))
    data["memberships"] = [{"group": name, "source": source} for name, source in memberships]
    if as_json:
        echo_json(data)
        return
    echo_fields([(k.replace("_", " "), v) for k, v in data.items() if k != "memberships"])
    click.echo()
    echo_table(("GROUP", "MEMBER THROUGH"), memberships)


def read_password(from_stdin: bool) -> str:
    """Read the new password from stdin's first line, or from a confirmed hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("create-admin")
@click.option("--username", required=True, metavar="NAME", help="The new account's username.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)
def create_admin(username: str, password_stdin: bool) -> None:
    """Create a Local admin account."""
    user = operations.create_local_admin(CLI, username, read_password(password_stdin))
    db.session.commit()
    click.echo(f"Created admin account {user.username!r}.")


def set_active(
    object_id: str | None, username: str | None, tenant: str | None, active: bool
) -> None:
    """Enable or disable the named user through the same operation as the admin console."""
    user = pick_user(object_id, username, tenant)
    state = "enabled" if active else "disabled"
    change = operations.enable_user if active else operations.disable_user
    if not change(CLI, user):
        click.echo(f"{user.label} ({user_key(user)}) was already {state}.")
        return
    db.session.commit()
    click.echo(f"{state.capitalize()} {user.label} ({user_key(user)}).")


@users_cli.command("disable")
@user_options
def disable_user(object_id: str | None, username: str | None, tenant: str | None) -> None:
    """Disable a user: they cannot sign in, and open sessions end at their next request."""
    set_active(object_id, username, tenant, active=False)


@users_cli.command("enable")
@user_options
def enable_user(object_id: str | None, username: str | None, tenant: str | None) -> None:
    """Enable a disabled user again."""
    set_active(object_id, username, tenant, active=True)


@users_cli.command("sign-out")
@user_options
def sign_out_user(object_id: str | None, username: str | None, tenant: str | None) -> None:
    """End every open session of a user; print how many."""
    user = pick_user(object_id, username, tenant)
    count = operations.sign_out_user(CLI, user)
    db.session.commit()
    click.echo(
        f"Ended {count} session{'s' if count != 1 else ''} of {user.label} ({user_key(user)})."
    )
