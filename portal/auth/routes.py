"""Views of the auth blueprint: start the Entra flow, take its callback, sign out."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.wrappers import Response

from portal.auth import entra
from portal.auth.redirects import safe_next
from portal.errors import rollback_database_session
from portal.extensions import db
from portal.services import audit, flows, policy
from portal.services.signin import (
    UserDisabled,
    refused_actor,
    refused_target,
    sign_in_external,
)
from portal.session import (
    SIGN_IN_COOKIE,
    end_session,
    remember_sign_in_key,
    sign_in_key,
    start_session,
)

bp = Blueprint("auth", __name__, url_prefix="/auth")
bp.record_once(lambda state: entra.init_entra(state.app))
log = logging.getLogger(__name__)
FAILED = "Sign-in with Microsoft did not complete. Please try again, or ask your administrator."
UNREACHABLE = "Microsoft sign-in cannot be reached right now. Please try again in a few minutes."
UNAVAILABLE = "The portal cannot complete sign-ins right now. Please try again in a few minutes."


def redirect_uri() -> str:
    """Return the redirect URI registered in Entra: PORTAL_BASE_URL + /auth/callback."""
    return current_app.config["PORTAL_BASE_URL"] + "/auth/callback"


def fail(reason: str, message: str = FAILED) -> Response:
    """Log why a sign-in failed and send the person to the sign-in page with a generic message."""
    log.warning("sign-in failed: %s", reason)
    flash(message, "error")
    return redirect(url_for("main.login"))


def record_outside(actor: audit.Actor | str, action: str, target: str, **details: str) -> None:
    """Commit one audit event after the sign-in's own writes were rolled back.

    A database that cannot take it must not turn the failure page into a 5xx.
    """
    db.session.rollback()
    try:
        audit.record(actor, action, target, **details)
        db.session.commit()
    except (OperationalError, InterfaceError) as exc:
        rollback_database_session()
        log.warning("audit event %s not stored: %s", action, type(exc).__name__)


def refuse(
    claims: dict[str, Any], reason: str, page: str = "auth/refused.html", undecided: bool = False
) -> tuple[str, int]:
    """Record a refused sign-in and show the 403 page; nothing of the sign-in itself is kept."""
    db.session.rollback()
    session.clear()
    log.warning("sign-in refused: %s", reason)
    tenant = str(claims.get("tid", "")).lower()
    record_outside(
        refused_actor(claims),
        audit.SIGNIN_REFUSED,
        refused_target(claims),
        reason=reason,
        tenant=tenant,
    )
    return render_template(page, undecided=undecided), 403


def commit_keeping_loaded() -> None:
    """Commit without expiring loaded objects, so signing the user in needs no reload.

    The user was just written and flushed, so what is loaded is what was committed; only this
    commit skips the expiry, the session's setting stays as it was.
    """
    session = db.session()
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def unexpected(exc: BaseException) -> str:
    """Describe an unexpected callback error by its type and where it was raised.

    Its message is left out: a database error's message carries the statement's parameters,
    which are claims from the token.
    """
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"unexpected {type(exc).__module__}.{type(exc).__name__} at {where}"


@bp.get("/login")
def login() -> Response:
    """Start the authorization-code flow, keep it on the server, and send the browser to Entra."""
    try:
        flow = entra.client().begin(redirect_uri())
    except entra.SignInError as exc:
        return fail(exc.reason, UNREACHABLE)
    key, new_key = sign_in_key()
    try:
        flows.save(key, flow, safe_next(request.args.get("next")), new_key=new_key)
        db.session.commit()
    except (OperationalError, InterfaceError) as exc:
        rollback_database_session()
        return fail(f"database unavailable: {type(exc).__name__}", UNAVAILABLE)
    response = redirect(flow["auth_uri"])
    remember_sign_in_key(response, key)
    return response


@bp.get("/callback")
def callback() -> Response | tuple[str, int]:
    """Redeem the code, verify the ID token, apply the access policy, sync groups, sign in."""
    claims: dict[str, Any] = {}
    try:
        pending = flows.find(request.cookies.get(SIGN_IN_COOKIE, ""), request.args.get("state", ""))
        if pending is None and current_user.is_authenticated:
            return redirect(url_for("main.index"))  # a reload of a used callback URL: nothing to do
        complete(pending, claims)
    except entra.SignInError as exc:
        record_outside(audit.ANONYMOUS, audit.SIGNIN_FAILED, "", reason=exc.reason)
        return fail(exc.reason)
    except policy.Refused as refusal:
        return refuse(claims, refusal.reason, undecided=refusal.undecided)
    except UserDisabled:
        return refuse(claims, "account disabled", page="auth/disabled.html")
    except (OperationalError, InterfaceError) as exc:
        # The contract allows no 5xx from the callback, a database outage included.
        rollback_database_session()
        session.clear()
        return fail(f"database unavailable: {type(exc).__name__}", UNAVAILABLE)
    except Exception as exc:  # noqa: BLE001 - the contract allows no 5xx from the callback
        rollback_database_session()
        session.clear()
        return fail(unexpected(exc))
    return redirect(safe_next(pending.next_url if pending else None))


def complete(pending: flows.PendingFlow | None, claims: dict[str, Any]) -> None:
    """Redeem the flow's code, apply the sign-in and start a session, in one transaction.

    The verified claims land in `claims`, for the refusal page's audit event.
    """
    result = entra.client().redeem(pending.flow if pending else {}, request.args.to_dict())
    claims.update(result.claims)
    user = sign_in_external(result.claims, result.access_token)
    if pending is None or not flows.consume(pending):
        raise entra.SignInError("this sign-in was already completed")
    start_session(user)
    commit_keeping_loaded()


@bp.post("/logout")
def logout() -> Response:
    """End the portal session (every one of the user's with everywhere=1), then the Entra session.

    CSRFProtect refuses posts without the page's token.
    """
    was_external = current_user.is_authenticated and current_user.is_external
    end_session(everywhere=request.form.get("everywhere") == "1")
    db.session.commit()
    logout_user()
    flash("You are signed out.", "success")
    login_page = current_app.config["PORTAL_BASE_URL"] + url_for("main.login")
    if was_external and current_app.extensions.get("portal.entra"):
        return redirect(entra.client().logout_url(login_page))
    return redirect(login_page)
