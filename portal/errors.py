"""Friendly error pages: HTTP errors, CSRF failures and database outages never show a traceback."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app, g, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from jinja2 import TemplateNotFound
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter

from portal.extensions import db, login_manager
from portal.models import EntraGroup

log = logging.getLogger(__name__)
CODES = (400, 401, 403, 404, 405, 429, 500, 503)
FALLBACK_503 = (
    "<!doctype html><title>Temporarily unavailable</title><h1>Temporarily unavailable</h1>"
    "<p>The portal cannot reach its database right now. Please try again in a moment.</p>"
)


class DatabaseInteger(IntegerConverter):
    """An `<int:…>` URL part that fits a 64-bit database integer; a larger one is a 404.

    Without the bound, /admin/users/99999999999999999999999 reached the database driver,
    which cannot bind the number, and answered 500.
    """

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def init_error_handlers(app: Flask) -> None:
    """Register one handler for the listed codes, CSRF errors and database errors."""
    for code in CODES:
        app.register_error_handler(code, render_error)
    app.register_error_handler(CSRFError, render_csrf_error)
    app.register_error_handler(OperationalError, render_database_error)
    app.register_error_handler(InterfaceError, render_database_error)


def render_error(error: HTTPException) -> tuple[str, int]:
    """Render `errors/<code>.html`, falling back to the generic page."""
    code = error.code or 500
    if code >= 500:
        db.session.rollback()
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=error.name), code  # type: ignore[return-value]
    extra = {"admin_groups": admin_group_names()} if code == 403 else {}
    try:
        return render_template(f"errors/{code}.html", error=error, **extra), code
    except TemplateNotFound:
        return render_template("errors/generic.html", error=error), code


def admin_group_names() -> list[str]:
    """Name the configured admin groups the portal knows, for the 403 page to say whom to ask."""
    object_ids = current_app.config.get("PORTAL_ADMIN_GROUP_IDS") or []
    if not request.path.startswith("/admin") or not object_ids:
        return []
    query = (
        sa.select(EntraGroup.display_name)
        .where(EntraGroup.object_id.in_(object_ids), EntraGroup.display_name.is_not(None))
        .order_by(EntraGroup.display_name)
    )
    return [name for name in db.session.scalars(query) if name]


def render_csrf_error(error: CSRFError) -> tuple[str, int]:
    """Explain an expired or missing form token: after a session ended, ask to sign in again."""
    signed_out = not current_user.is_authenticated
    referrer = urlsplit(request.referrer or "")
    back_to = referrer.path if referrer.netloc == request.host and referrer.path else "/"
    page = render_template(
        "errors/400.html", error=error, csrf=True, signed_out=signed_out, back_to=back_to
    )
    return page, 400


def rollback_database_session() -> None:
    """Roll back the request's transaction, also when the connection behind it is gone."""
    try:
        db.session.rollback()
    except (OperationalError, InterfaceError):
        db.session.close()  # the connection is gone; close drops it from the session


def render_database_error(error: Exception) -> tuple[str, int]:
    """Roll back and answer 503 when the database cannot be reached."""
    log.error("database unavailable: %s", type(error).__name__)
    rollback_database_session()
    # Flask-Login's template context loads the user from the database that just failed;
    # an anonymous user keeps the error page from failing the same way.
    g._login_user = login_manager.anonymous_user()
    try:
        return render_template("errors/503.html", error=InternalServerError()), 503
    except (OperationalError, InterfaceError):
        return FALLBACK_503, 503
