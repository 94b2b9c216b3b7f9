"""Friendly error pages: HTTP errors, CSRF failures and database outages never show a traceback."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from jinja2 import TemplateNotFound
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.extensions import db, login_manager

log = logging.getLogger(__name__)
CODES = (400, 401, 403, 404, 405, 429, 500, 503)
FALLBACK_503 = (
    "<!doctype html><title>Temporarily unavailable</title><h1>Temporarily unavailable</h1>"
    "<p>The portal cannot reach its database right now. Please try again in a moment.</p>"
)


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
    try:
        return render_template(f"errors/{code}.html", error=error), code
    except TemplateNotFound:
        return render_template("errors/generic.html", error=error), code


def render_csrf_error(error: CSRFError) -> tuple[str, int]:
    """Explain an expired or missing form token without naming internals."""
    return render_template("errors/400.html", error=error, csrf=True), 400


def discard_session() -> None:
    """Roll back the request's transaction, also when the connection behind it is gone."""
    try:
        db.session.rollback()
    except (OperationalError, InterfaceError):
        db.session.close()  # the connection is gone; close drops it from the session


def render_database_error(error: Exception) -> tuple[str, int]:
    """Roll back and answer 503 when the database cannot be reached."""
    log.error("database unavailable: %s", type(error).__name__)
    discard_session()
    # Flask-Login's template context loads the user from the database that just failed;
    # an anonymous user keeps the error page from failing the same way.
    g._login_user = login_manager.anonymous_user()
    try:
        return render_template("errors/503.html", error=InternalServerError()), 503
    except (OperationalError, InterfaceError):
        return FALLBACK_503, 503
