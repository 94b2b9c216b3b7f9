"""`flask groups …`: list, show, create, and manual memberships."""

from __future__ import annotations

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
from portal.cli.users import JSON_HELP
from portal.extensions import db
from portal.services import groups, operations
from portal.services.audit import CLI

GROUP_ARG_HELP = "GROUP is a group's name or its Entra object ID."


@click.group("groups", cls=PortalGroup)
def groups_cli() -> None:
    """Manage local groups and manual memberships."""


@groups_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def list_groups(as_json: bool) -> None:
    """List every group with its source and member count."""
    rows = [
        {"name": g.name, "source": g.source, "object_id": oid, "member_count": count}
        for g, oid, count in groups.list_with_counts()
    ]
    if as_json:
        echo_json(rows)
        return
    echo_table(("NAME", "SOURCE", "OBJECT ID", "MEMBERS"), (tuple(r.values()) for r in rows))


@groups_cli.command("show", epilog=GROUP_ARG_HELP)
@click.argument("group")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def show_group(group: str, as_json: bool) -> None:
    """Show one group and its members."""
    found = groups.find_group(group)
    members = [
        {
            "tenant_id": user.tenant_id,
            "object_id": user.object_id,
            "username": user.username,
            "display_name": user.display_name,
            "source": source,
        }
        for user, source in groups.members(found)
    ]
    data = {
        "name": found.name,
        "source": found.source,
        "object_id": found.object_id,
        "description": found.description,
        "created_at": iso(found.created_at),
        "member_count": len(members),
        "members": members,
    }
    if as_json:
        echo_json(data)
        return
    echo_fields([(k.replace("_", " "), v) for k, v in data.items() if k != "members"])
    click.echo()
    echo_table(
        ("MEMBER", "NAME", "MEMBER THROUGH"),
        ((m["username"] or m["object_id"], m["display_name"], m["source"]) for m in members),
    )


@groups_cli.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the group is for.")
def create_group(name: str, description: str) -> None:
    """Create a local group named NAME."""
    group = operations.create_group(CLI, name, description)
    db.session.commit()
    click.echo(f"Created local group {group.name!r}.")


@groups_cli.command("add-member", epilog=GROUP_ARG_HELP)
@click.argument("group")
@user_options
def add_member(group: str, object_id: str | None, username: str | None, tenant: str | None) -> None:
    """Add a user to GROUP by hand; sync never removes such a membership."""
    found = groups.find_group(group)
    user = pick_user(object_id, username, tenant)
    if not operations.add_membership(CLI, found, user):
        click.echo(f"{user.label} is already a member of {found.name!r}.")
        return
    db.session.commit()
    click.echo(f"Added {user.label} to {found.name!r}.")


@groups_cli.command("remove-member", epilog=GROUP_ARG_HELP)
@click.argument("group")
@user_options
def remove_member(
    group: str, object_id: str | None, username: str | None, tenant: str | None
) -> None:
    """Remove a manual membership from GROUP."""
    found = groups.find_group(group)
    user = pick_user(object_id, username, tenant)
    if not operations.remove_membership(CLI, found, user):
        click.echo(f"{user.label} was not a member of {found.name!r}.")
        return
    db.session.commit()
    click.echo(f"Removed {user.label} from {found.name!r}.")
