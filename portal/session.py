"""Session cookies and Flask-Login: who the current user is, and when a session ends."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from flask import Flask, flash, redirect, request, session, url_for
from flask_login import login_user
from werkzeug.wrappers import Response

from portal.extensions import db, login_manager
from portal.models import User


def configure_session(app: Flask) -> None:
    """Harden the session cookie and teach Flask-Login to load users."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="portal_session",
    )
    app.config.setdefault("SESSION_COOKIE_SECURE", False)
    login_manager.login_view = "main.login"
    login_manager.login_message = "Please sign in to see this page."
    login_manager.login_message_category = "info"
    # "strong" would end sessions when a phone switches networks; rotation at sign-in suffices.
    login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Return the signed-in user, or None to end the session of a disabled or deleted one."""
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.is_active else None


def start_session(user: User) -> None:
    """Sign the user in on a fresh session, dropping everything the old one held."""
    session.clear()
    # A new random value makes the new cookie share nothing with any cookie issued before it.
    session["sid"] = secrets.token_urlsafe(16)
    login_user(user)


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """Send anonymous visitors to the sign-in page, remembering where they were going."""
    target = request.full_path.rstrip("?") if request.query_string else request.path
    if target != "/":  # the home page is where everyone starts: no reproach on a first visit
        flash(login_manager.login_message, login_manager.login_message_category)
    return redirect(f"{url_for('main.login')}?next={quote(target, safe='/')}")
