"""Admin view of reconciliation: the runs, a held run's proposals, and one user's re-sync."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, render_template
from werkzeug.wrappers import Response

from portal.admin import actor, back, bp, refused
from portal.auth import entra
from portal.extensions import db
from portal.models import ReconcileRun, User
from portal.services import audit, graph, operations, reconcile

RECENT_RUNS = 50


@bp.get("/reconcile")
def reconcile_list() -> str:
    """List reconciliation runs newest first; a held newest run can be applied anyway."""
    runs = db.session.scalars(
        sa.select(ReconcileRun)
        .order_by(ReconcileRun.started_at.desc(), ReconcileRun.id.desc())
        .limit(RECENT_RUNS)
    ).all()
    return render_template("admin/reconcile/list.html", runs=runs)


@bp.post("/reconcile/run")
def reconcile_run() -> Response:
    """Run a reconciliation now, as the scheduled command would (held above the limit)."""
    return _run(force=False)


@bp.post("/reconcile/apply")
def reconcile_apply() -> Response:
    """Run a reconciliation that applies even above RECONCILE_MAX_CHANGES (confirmed)."""
    return _run(force=True)


def _run(*, force: bool) -> Response:
    """Run once with the admin as the actor and say what happened."""
    outcome = reconcile.run(entra.graph_app_token, force=force, actor=actor())
    if outcome.status == "ok":
        flash(
            f"Reconciliation done: {outcome.users_disabled} user(s) disabled, "
            f"{outcome.memberships_removed} membership(s) removed, "
            f"{outcome.memberships_added} added.",
            "success",
        )
    else:
        flash(f"Reconciliation {outcome.status}: {outcome.reason}", "error")
    return back("admin.reconcile_list")


def _preview(user: User) -> tuple[reconcile.UserChange | None, str | None]:
    """Read the user's transitive groups with the app token; return the change or the error."""
    if not user.is_external:
        return None, "Only users from Entra ID can be re-synced."
    try:
        call = graph.client().call(entra.graph_app_token(user.tenant_id or ""))
        groups = call.transitive_groups(user.object_id)
    except graph.GraphError as exc:
        return None, f"Graph could not be read: {exc.reason}"
    return reconcile.preview_user(user, groups), None


@bp.get("/users/<int:user_id>/resync")
def user_resync_preview(user_id: int) -> str:
    """Preview what a re-sync from Entra would change for this user (nothing is written)."""
    user = db.get_or_404(User, user_id)
    change, error = _preview(user)
    db.session.rollback()
    return render_template("admin/reconcile/resync.html", user=user, change=change, error=error)


@bp.post("/users/<int:user_id>/resync")
def user_resync_apply(user_id: int) -> Response:
    """Apply a re-sync from Entra, read afresh, to this user's memberships and admin status."""
    user = db.get_or_404(User, user_id)
    change, error = _preview(user)
    if change is None:
        refused(error or "Nothing to re-sync.")
        return back("admin.user_detail", user_id=user.id)
    reconcile.apply_user(user, change)
    for action, names in (
        (audit.MEMBERSHIP_ADDED, [n for _, n in change.add]),
        (audit.MEMBERSHIP_REMOVED, [n for _, _, n in change.remove]),
    ):
        for name in sorted(names):
            target = f"{operations.describe(user)} in {name}"
            audit.record(actor(), action, target, user_id=user.id, source="re-sync from Entra")
    db.session.commit()
    flash(
        f"{user.label} re-synced: {len(change.add)} group(s) joined, {len(change.remove)} left.",
        "success",
    )
    return back("admin.user_detail", user_id=user.id)
