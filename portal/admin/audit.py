"""Admin view of the audit log: who did what to which target, and when."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, render_template, request, stream_with_context

from portal.admin import bp, pagination
from portal.extensions import db
from portal.models import AuditEvent, User
from portal.services import audit_query
from portal.services.audit import ACTIONS


@dataclass(frozen=True)
class AuditFilters:
    """What the audit log is narrowed by, read from the query string."""

    actor: str = ""
    action: str = ""
    q: str = ""
    since: str = ""
    until: str = ""
    user: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> AuditFilters:
        """Read the filters, dropping malformed dates and ids."""
        return cls(
            actor=args.get("actor", "").strip()[:320],
            action=args.get("action", "").strip()[:64],
            q=args.get("q", "").strip()[:200],
            since=_date(args.get("since")),
            until=_date(args.get("until")),
            user=args.get("user", "") if args.get("user", "").isdigit() else "",
        )

    def args(self) -> dict[str, str]:
        """Return the non-empty filters as query arguments."""
        return {k: v for k, v in asdict(self).items() if v}

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """Return the WHERE conditions: parts of actor and target, a date range, a user."""
        found = []
        if self.actor:
            found.append(AuditEvent.actor.icontains(self.actor, autoescape=True))
        if self.action:
            found.append(AuditEvent.action == self.action)
        if self.q:
            found.append(AuditEvent.target.icontains(self.q, autoescape=True))
        if self.since:
            found.append(AuditEvent.created_at >= _midnight(self.since))
        if self.until:
            end = _midnight(self.until) + timedelta(days=1)
            found.append(AuditEvent.created_at < end)
        if self.user and len(self.user) < 18:
            found.append(_about_user(int(self.user)))
        return found


def _midnight(day: str) -> datetime:
    """Return the start of a YYYY-MM-DD day in UTC."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _date(raw: str | None) -> str:
    """Return a YYYY-MM-DD date as given, or "" for anything else."""
    try:
        return date.fromisoformat(raw or "").isoformat()
    except ValueError:
        return ""


def _about_user(
    user_id: int, object_id: str | None = None, username: str | None = None
) -> sa.ColumnElement[bool]:
    """Match events whose details name the user, and sign-in events whose target is the user."""
    found = [AuditEvent.details["user_id"].as_integer() == user_id]
    if object_id:
        found.append(AuditEvent.target == f"user:{object_id}")
    if username:
        signing_in = sa.or_(
            AuditEvent.action.startswith("signin."), AuditEvent.action.startswith("local.")
        )
        found.append(sa.and_(AuditEvent.target == username, signing_in))
    return sa.or_(*found)


def about_user(user: User, limit: int = 10) -> sa.Select[tuple[int]]:
    """Select the ids of the newest audit events about this user: admin actions and sign-ins."""
    return (
        sa.select(AuditEvent.id)
        .where(_about_user(user.id, user.object_id, user.username))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )


@bp.get("/audit")
def audit_list() -> str:
    """List audit events, newest first, filterable by actor, action, target, dates and user."""
    filters = AuditFilters.from_args(request.args)
    page = pagination.paginate_request(
        sa.select(AuditEvent).where(*filters.conditions()),
        pagination.simple_order(AuditEvent.id, descending=True),
    )
    return render_template(
        "admin/audit/list.html", page=page, filters=filters.args(), actions=ACTIONS
    )


@bp.get("/audit.csv")
def audit_export() -> Response:
    """Stream the audit events the filters match as formula-safe CSV, newest first."""
    filters = AuditFilters.from_args(request.args)
    query = (
        sa.select(AuditEvent)
        .where(*filters.conditions())
        .order_by(AuditEvent.id.desc())
        .execution_options(yield_per=1000)
    )
    response = Response(stream_with_context(_csv_lines(query)), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=audit.csv"
    return response


def _csv_lines(query: sa.Select[Any]) -> Iterator[str]:
    """Yield the CSV in chunks, never holding every event in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in audit_query.csv_rows(db.session.scalars(query)):
        writer.writerow(row)
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
