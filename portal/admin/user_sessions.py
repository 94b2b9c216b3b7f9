"""Admin actions on a user's sessions: end one, or end them all."""

from __future__ import annotations

from werkzeug.wrappers import Response

from portal.admin import actor, back, bp, done, refused
from portal.extensions import db
from portal.models import User
from portal.services import operations


@bp.post("/users/<int:user_id>/sessions/<int:session_id>/end")
def user_session_end(user_id: int, session_id: int) -> Response:
    """End one open session of the user; its cookie is anonymous from its next request."""
    user = db.get_or_404(User, user_id)
    if operations.end_session(actor(), user, session_id):
        done(f"Ended one session of {user.label}.")
    else:
        refused("That session had already ended.")
    return back("admin.user_detail", user_id=user.id)


@bp.post("/users/<int:user_id>/sessions/end")
def user_sessions_end(user_id: int) -> Response:
    """End every open session of the user."""
    user = db.get_or_404(User, user_id)
    if count := operations.sign_out_user(actor(), user):
        done(f"Ended {count} session{'s' if count != 1 else ''} of {user.label}.")
    else:
        refused(f"{user.label} has no open session.")
    return back("admin.user_detail", user_id=user.id)
