"""The admin console: its blueprint, the one guard for every view, the navigation and the helpers
the views share. The views (overview, users, groups, sync, audit, settings) are imported last."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.auth.redirects import safe_next
from portal.extensions import db, login_manager
from portal.services.audit import Actor

bp = Blueprint("admin", __name__, url_prefix="/admin")

# (endpoint, label, the endpoint nouns that highlight the entry)
NAV = [
    ("admin.overview", "Overview", {"overview"}),
    ("admin.users_list", "Users", {"users", "user"}),
    ("admin.groups_list", "Groups", {"groups", "group"}),
    ("admin.sync_list", "Sync activity", {"sync"}),
    ("admin.reconcile_list", "Reconciliation", {"reconcile"}),
    ("admin.audit_list", "Audit log", {"audit"}),
    ("admin.config_show", "Configuration", {"config"}),
]


@bp.before_request
def require_admin() -> Response | None:
    """Guard the whole blueprint: anonymous to the sign-in page, non-admins get 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


@bp.app_context_processor
def admin_navigation() -> dict[str, object]:
    """Offer the admin navigation to the shared layout."""
    return {"admin_nav_items": lambda: NAV}


def actor() -> Actor:
    """Name the signed-in admin for the audit trail."""
    return Actor.of(current_user)


def done(message: str) -> None:
    """Commit the request's one transaction and confirm the change to the admin."""
    db.session.commit()
    flash(message, "success")


def refused(message: str) -> None:
    """Undo the request's changes and tell the admin why nothing happened."""
    db.session.rollback()
    flash(message, "error")


def back(default: str, **values: Any) -> Response:
    """Redirect to the admin page the form came from (a local path only), else to `default`."""
    target = safe_next(request.form.get("back"), default="")
    if target.startswith(f"{bp.url_prefix}/"):
        return redirect(target)
    return redirect(url_for(default, **values))


# Importing each view module registers its views on `bp`; they import bp and the helpers above.
from portal.admin import (  # noqa: E402
    audit,
    groups,
    overview,
    reconcile,
    settings,
    sync,
    user_sessions,
    users,
)

__all__ = [
    "audit",
    "bp",
    "groups",
    "overview",
    "reconcile",
    "settings",
    "sync",
    "user_sessions",
    "users",
]
