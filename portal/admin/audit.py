"""Admin view of the audit log: who did what to which target, and when."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import render_template, request

from portal.admin import pagination
from portal.admin.routes import bp
from portal.models import AuditEvent
from portal.services.audit import ACTIONS


def _query(actor: str, action: str, text: str) -> sa.Select[Any]:
    """Select audit events narrowed by actor, action and a piece of the target."""
    query = sa.select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if text:
        query = query.where(AuditEvent.target.icontains(text, autoescape=True))
    return query


@bp.get("/audit")
def audit_list() -> str:
    """List audit events, newest first, filterable by actor, action and target."""
    filters = {
        "actor": request.args.get("actor", "").strip()[:320],
        "action": request.args.get("action", "").strip()[:64],
        "q": request.args.get("q", "").strip()[:200],
    }
    page = pagination.paginate_request(
        _query(filters["actor"], filters["action"], filters["q"]),
        pagination.simple_order(AuditEvent.id, descending=True),
    )
    return render_template(
        "admin/audit/list.html",
        page=page,
        filters={k: v for k, v in filters.items() if v},
        actions=ACTIONS,
    )
