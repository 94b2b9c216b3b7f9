"""Views of the main blueprint: home, sign-in page, health check."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from portal.auth.redirects import safe_next
from portal.extensions import db
from portal.main.forms import LocalLoginForm
from portal.models import User
from portal.services import audit, login_limits, user_groups, users
from portal.session import start_session

bp = Blueprint("main", __name__)
SIGN_IN_FAILED = "Sign-in failed: the username or password is wrong, or the account is disabled."
TOO_MANY_FAILURES = "Too many failed sign-ins. Please wait a few minutes and try again."


@bp.get("/")
@login_required
def index() -> str:
    """Show the signed-in user's name, email and groups, a searchable page at a time."""
    args = request.args
    page = user_groups.groups_page(
        current_user.id,
        args.get("q", ""),
        user_groups.read_page(args.get("page")),
        user_groups.read_size(args.get("size")),
    )
    return render_template("main/index.html", user=current_user, groups=page)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Show the sign-in page; a POST signs a Local account in."""
    next_url = safe_next(request.args.get("next"))
    show_local = current_app.config["PORTAL_LOCAL_LOGIN"] or request.args.get("local") == "1"
    form = LocalLoginForm()
    if request.method == "POST":
        username, address = form.username.data or "", request.remote_addr or "-"
        verdict = login_limits.check(username, address)
        if not verdict.allowed:
            login_limits.record_refusal(username, address, verdict.reason or "limited")
            db.session.commit()
            flash(TOO_MANY_FAILURES, "error")
            page = render_template("main/login.html", form=form, next_url=next_url, show_local=True)
            return page, 429
        if _local_sign_in(form):
            return redirect(next_url)
        flash(SIGN_IN_FAILED, "error")
        show_local = True
    return render_template("main/login.html", form=form, next_url=next_url, show_local=show_local)


def _local_sign_in(form: LocalLoginForm) -> User | None:
    """Check the local sign-in form; start and commit the session, or count the failure."""
    username = form.username.data or ""
    user = form.validate_on_submit() and users.authenticate_local(
        username, form.password.data or ""
    )
    address = request.remote_addr or "-"
    if user:
        login_limits.clear_failures(username, address)
        audit.record(audit.Actor.of(user), audit.SIGNIN_OK, user.label, user_id=user.id)
        start_session(user)
        db.session.commit()
        return user
    db.session.rollback()
    reason = "wrong username or password, or disabled" if form.errors == {} else "invalid form"
    login_limits.record_failure(username, address, reason)
    db.session.commit()
    return None


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Answer 200 when the database answers, 503 otherwise."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok"), 200
