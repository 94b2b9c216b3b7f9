"""A page to change the emulated directory by hand (`make demo`): disable users, drop memberships.

The demo's way to show reconciliation: change something here, then run `flask --app app sync
reconcile` (or "Run now" on the portal's Reconciliation page) and see the portal follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, redirect, render_template, url_for

from .directory import GROUP, USER

if TYPE_CHECKING:
    from .core import Emulator

bp = Blueprint("control", __name__, url_prefix="/_emulator")


def _emu() -> Emulator:
    return current_app.extensions["emulator"]


@bp.get("/directory")
def directory() -> str:
    """Show each tenant's users, whether they are enabled, and their direct groups."""
    found = []
    for tenant in _emu().directory.all_tenants():
        users = _emu().directory.listing(tenant.id, USER)
        rows = [
            (u, [g for g in _emu().directory.direct_parents(u.id) if g.kind == GROUP])
            for u in users
        ]
        found.append((tenant, rows))
    return render_template("directory.html", tenants=found)


@bp.post("/users/<object_id>/toggle")
def toggle_user(object_id: str) -> Response:
    """Disable an enabled user, or enable a disabled one."""
    user = _emu().user(object_id)
    _emu().set_user(object_id, account_enabled=not user.account_enabled)
    return redirect(url_for("control.directory"))


@bp.post("/groups/<group_id>/members/<member_id>/remove")
def remove_member(group_id: str, member_id: str) -> Response:
    """Remove a direct membership."""
    _emu().remove_member(group_id, member_id)
    return redirect(url_for("control.directory"))
