"""Views of the admin blueprint, all behind one admin guard."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.extensions import login_manager

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin() -> Response | None:
    """Guard the whole blueprint: anonymous to the sign-in page, non-admins get 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


NAV = [("admin.users_list", "Users"), ("admin.groups_list", "Groups")]


@bp.app_context_processor
def admin_navigation() -> dict[str, object]:
    """Offer the admin navigation to the shared layout."""
    return {"admin_nav_items": lambda: NAV}


@bp.get("/users")
def users_list() -> str:
    """List users."""
    return render_template("admin/users/list.html")


@bp.get("/groups")
def groups_list() -> str:
    """List groups."""
    return render_template("admin/groups/list.html")
