"""Session cookies and Flask-Login: who the current user is, and when a session ends.

The `portal_session` cookie (Flask's signed cookie) carries a session token, the CSRF token and
flashes; the token means something only while its record on the server is open.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from urllib.parse import quote

from flask import (
    Flask,
    Request,
    Response,
    current_app,
    flash,
    g,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user, user_logged_in
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db, login_manager
from portal.models import User
from portal.models.session import EVERYWHERE, LOGOUT
from portal.services import flows, sessions

log = logging.getLogger(__name__)
TOKEN_KEY = "sid"  # noqa: S105  (the session key that holds the token, not a secret)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
SIGN_IN_COOKIE = "portal_signin"
SIGN_IN_KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{22}$")


def configure_session(app: Flask) -> None:
    """Harden the session cookie and teach Flask-Login to load users from session records."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="portal_session",
    )
    app.config.setdefault("SESSION_COOKIE_SECURE", False)
    app.config.setdefault("PORTAL_SESSION_IDLE_SECONDS", 3600)
    app.config.setdefault("PORTAL_SESSION_MAX_SECONDS", 43200)
    # Flask refuses a signed cookie older than this, whatever the record says.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        seconds=app.config["PORTAL_SESSION_MAX_SECONDS"]
    )
    login_manager.login_view = "main.login"
    login_manager.login_message = "Please sign in to see this page."
    login_manager.login_message_category = "info"
    # The session record is the protection; Flask-Login's would rewrite the cookie per request.
    login_manager.session_protection = None
    app.after_request(settle_sighting)


@login_manager.request_loader
def load_user(_request: Request) -> User | None:
    """Return the user of the request's open session record, or None for anonymous."""
    token = session.get(TOKEN_KEY)
    if not isinstance(token, str) or not TOKEN_SHAPE.match(token):
        return None
    sighting = sessions.check(token)
    g.portal_sighting = sighting
    return sighting.user


def settle_sighting(response: Response) -> Response:
    """Write what the request's session owes (last seen, or its end) after the view is done."""
    sighting = g.pop("portal_sighting", None)
    if sighting is None or sighting.write is None:
        return response
    try:
        db.session.execute(sighting.write)
        db.session.commit()
    except SQLAlchemyError as exc:
        # Last seen is bookkeeping: a database hiccup must not fail a page that already worked.
        log.warning("session record not updated: %s", type(exc).__name__)
        db.session.rollback()
    return response


def current_session_id() -> int | None:
    """Return the record ID of the request's open session, or None."""
    sighting = g.get("portal_sighting")
    return sighting.session_id if sighting is not None and sighting.user else None


def start_session(user: User) -> None:
    """Start a session record for the user on a fresh cookie; the caller commits."""
    token = sessions.start(user, request.remote_addr or "", request.user_agent.string)
    sessions.purge_now_and_then()
    # Nothing from the cookie before sign-in carries over (fixation): only the new token.
    session.clear()
    session[TOKEN_KEY] = token
    g._login_user = user
    user_logged_in.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]


def end_session(*, everywhere: bool) -> int:
    """End the request's session (or all its user's) and forget the cookie; the caller commits."""
    user_id = current_user.id if current_user.is_authenticated else None
    session_id = current_session_id()
    # The session ends here: the last-seen write it may owe is moot.
    g.pop("portal_sighting", None)
    session.clear()
    if session_id is None or user_id is None:
        return 0
    if everywhere:
        return sessions.end_all(user_id, EVERYWHERE)
    return int(sessions.end(session_id, LOGOUT))


def sign_in_key() -> tuple[str, bool]:
    """Return this browser's sign-in key from its cookie, or a new one; and whether it is new."""
    key = request.cookies.get(SIGN_IN_COOKIE, "")
    if SIGN_IN_KEY_SHAPE.match(key):
        return key, False
    return secrets.token_urlsafe(16), True


def remember_sign_in_key(response: Response, key: str) -> None:
    """Keep the sign-in key in its own short-lived cookie, sent only to /auth."""
    config = current_app.config
    response.set_cookie(
        SIGN_IN_COOKIE,
        key,
        max_age=int(flows.LIFETIME.total_seconds()),
        path="/auth",
        secure=bool(config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """Send anonymous visitors to the sign-in page, remembering where they were going."""
    target = request.full_path.rstrip("?") if request.query_string else request.path
    if target != "/":  # the home page is where everyone starts: no reproach on a first visit
        flash(login_manager.login_message, login_manager.login_message_category)
    return redirect(f"{url_for('main.login')}?next={quote(target, safe='/')}")
