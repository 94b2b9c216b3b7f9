"""Admin views of users: the list, its CSV export, a user's page and the actions on it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa
from flask import Response, render_template, request, stream_with_context
from sqlalchemy import orm as so

from portal.admin import audit as audit_views
from portal.admin import pagination
from portal.admin.forms import MembershipAddForm
from portal.admin.routes import actor, back, bp, done, refused
from portal.extensions import db
from portal.models import EntraGroup, Group, GroupMembership, SyncRecord, User
from portal.models.sync import FAILED
from portal.services import audit, groups, operations, sessions, user_groups, user_search, users

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
SORTS = ("name", "email", "last_login", "created")
# The direction a column header sorts in first: names A to Z, times newest first.
FIRST_DIRECTION = {"name": "asc", "email": "asc", "last_login": "desc", "created": "desc"}
RECENT_SYNCS = 10
USER_PAGE_GROUPS = 25
CSV_COLUMNS = (
    "display_name",
    "email",
    "upn",
    "username",
    "user_type",
    "is_active",
    "is_admin",
    "tenant_id",
    "object_id",
    "created_at",
    "last_login_at",
)


@dataclass(frozen=True)
class UserFilters:
    """What the users list is narrowed and sorted by, read from the query string."""

    q: str = ""
    type: str = ""
    status: str = ""
    group: str = ""
    sync: str = ""
    role: str = ""
    sort: str = "name"
    dir: str = "asc"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> UserFilters:
        """Read the filters, dropping values the list does not know."""
        sort = args.get("sort", "name")
        return cls(
            q=args.get("q", "").strip()[:200],
            type=args.get("type", "") if args.get("type") in {"External", "Local"} else "",
            status=args.get("status", "") if args.get("status") in {"active", "disabled"} else "",
            group=args.get("group", "").strip()[:256],
            sync=args.get("sync", "") if args.get("sync") == "failed" else "",
            role=args.get("role", "") if args.get("role") == "admin" else "",
            sort=sort if sort in SORTS else "name",
            dir="desc" if args.get("dir") == "desc" else "asc",
        )

    def args(self, **changes: str) -> dict[str, str]:
        """Return the non-empty filters as query arguments, with `changes` applied."""
        return {k: v for k, v in asdict(replace(self, **changes)).items() if v}

    def sort_args(self, column: str) -> dict[str, str]:
        """Return the query arguments of a column header: toggle it, or sort by it."""
        if self.sort == column:
            return self.args(dir="asc" if self.dir == "desc" else "desc")
        return self.args(sort=column, dir=FIRST_DIRECTION[column])

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """Return the WHERE conditions of the filters."""
        conditions = []
        if self.q:
            conditions.append(_search(self.q))
        if self.type:
            conditions.append(User.user_type == self.type)
        if self.status:
            conditions.append(User.is_active.is_(self.status == "active"))
        if self.group:
            conditions.append(_in_group(self.group, resolve=len(self.order().segments) == 1))
        if self.sync:
            conditions.append(User.id.in_(_last_sync_failed()))
        if self.role:
            conditions.append(User.is_admin.is_(True))
        return conditions

    def order(self) -> pagination.Order:
        """Return the keyset order of the chosen sort."""
        descending = self.dir == "desc"
        if self.sort == "email":
            return pagination.nullable_order(User.email, User.id, descending)
        if self.sort == "last_login":
            return pagination.nullable_order(User.last_login_at, User.id, descending)
        if self.sort == "created":
            return pagination.simple_order(User.id, descending=descending)
        return pagination.simple_order(User.display_name, User.id, descending=descending)


def _search(text: str) -> sa.ColumnElement[bool]:
    """Match a piece of the name, email, UPN or username, or a whole object ID."""
    return user_search.matching_users(text)


def _in_group(name_or_object_id: str, resolve: bool) -> sa.ColumnElement[bool]:
    """Match members of the groups with this name or Entra object ID.

    With `resolve`, the group ids are looked up first and passed as values: PostgreSQL then
    plans with the group's real size (walk users by name for a huge group, its members for a
    small one), which a subquery hides from it. That lookup is one more statement, so an
    order that may read two segments (nullable sort columns) keeps the subquery instead.
    """
    if GUID.match(name_or_object_id):
        lookup = sa.select(Group.id).join(Group.entra_group)
        lookup = lookup.where(EntraGroup.object_id == name_or_object_id.lower())
    else:
        lookup = sa.select(Group.id).where(Group.name == name_or_object_id)
    group_ids = list(db.session.scalars(lookup.limit(100))) if resolve else lookup
    return (
        sa.select(GroupMembership.id)
        .where(GroupMembership.user_id == User.id, GroupMembership.group_id.in_(group_ids))
        .exists()
    )


def _last_sync_failed() -> sa.Select[tuple[int]]:
    """Select the users whose most recent sync record failed, starting from failed records."""
    newer = so.aliased(SyncRecord)
    no_newer = (
        sa.select(newer.id)
        .where(newer.user_id == SyncRecord.user_id, newer.synced_at > SyncRecord.synced_at)
        .exists()
    )
    return sa.select(SyncRecord.user_id).where(SyncRecord.status == FAILED, ~no_newer)


def row_columns() -> tuple[sa.ScalarSelect[Any], sa.ScalarSelect[Any]]:
    """Return the per-row group count and last sync status subqueries of the users list."""
    group_count = (
        sa.select(sa.func.count(GroupMembership.id))
        .where(GroupMembership.user_id == User.id)
        .scalar_subquery()
    )
    last_sync = (
        sa.select(SyncRecord.status)
        .where(SyncRecord.user_id == User.id)
        .order_by(SyncRecord.synced_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return group_count, last_sync


def _list_query(filters: UserFilters) -> sa.Select[Any]:
    """Select users with their group count and last sync status, one statement per page."""
    return sa.select(User, *row_columns()).where(*filters.conditions())


@bp.get("/users")
def users_list() -> str:
    """List users with search, filters, sorting and keyset pagination."""
    filters = UserFilters.from_args(request.args)
    page = pagination.paginate_request(
        _list_query(filters),
        filters.order(),
    )
    return render_template("admin/users/list.html", page=page, filters=filters)


@bp.get("/users/export.csv")
def users_export() -> Response:
    """Stream every user the filters match as CSV, in the list's order."""
    filters = UserFilters.from_args(request.args)
    audit.record(actor(), audit.USERS_EXPORTED, "users", filters=filters.args())
    db.session.commit()
    order = filters.order()
    columns = order.segments[0].columns
    # Plain rows, not ORM objects: building 100,000 User instances is most of an export's cost.
    query = (
        sa.select(*(getattr(User, column) for column in CSV_COLUMNS))
        .where(*filters.conditions())
        .order_by(*(c.desc() if order.descending else c for c in columns))
        .execution_options(yield_per=1000)
    )
    response = Response(stream_with_context(_csv_lines(query)), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=users.csv"
    return response


def _csv_lines(query: sa.Select[Any]) -> Iterator[str]:
    """Yield the CSV in chunks of about 64 KiB, never holding every row in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in db.session.execute(query):
        writer.writerow([_csv_cell(value) for value in row])
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_cell(value: Any) -> str:
    """Render one cell; a leading = + - @ is defused so spreadsheets do not run it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _groups_page(user: User) -> user_groups.GroupsPage:
    """Return the page of the user's groups the query string asks for (25 a page by default)."""
    args = request.args
    return user_groups.groups_page(
        user.id,
        args.get("q", ""),
        user_groups.read_page(args.get("page")),
        user_groups.read_size(args.get("size"), default=USER_PAGE_GROUPS),
    )


@bp.get("/users/<int:user_id>")
def user_detail(user_id: int) -> str:
    """Show a user's profile, groups, recent syncs and the actions an admin can take."""
    user = db.get_or_404(User, user_id)
    records = db.session.scalars(
        sa.select(SyncRecord)
        .where(SyncRecord.user_id == user.id)
        .order_by(SyncRecord.synced_at.desc(), SyncRecord.id.desc())
        .limit(RECENT_SYNCS)
    ).all()
    return render_template(
        "admin/users/detail.html",
        user=user,
        groups=_groups_page(user),
        events=audit_views.about_user(user),
        records=records,
        form=MembershipAddForm(),
        open_sessions=sessions.open_sessions(user.id),
    )


@bp.post("/users/<int:user_id>/disable")
def user_disable(user_id: int) -> Response:
    """Disable a user: they cannot sign in, and their open sessions end at the next request."""
    user = db.get_or_404(User, user_id)
    try:
        if operations.disable_user(actor(), user):
            done(f"{user.label} is disabled.")
    except users.UserError as exc:
        refused(f"Nothing changed: {exc}.")
    return back("admin.user_detail", user_id=user.id)


@bp.post("/users/<int:user_id>/enable")
def user_enable(user_id: int) -> Response:
    """Enable a disabled user again."""
    user = db.get_or_404(User, user_id)
    if operations.enable_user(actor(), user):
        done(f"{user.label} is enabled.")
    return back("admin.user_detail", user_id=user.id)


@bp.post("/users/<int:user_id>/memberships")
def user_membership_add(user_id: int) -> Response:
    """Add the user to a group by hand; sync never removes such a membership."""
    user = db.get_or_404(User, user_id)
    form = MembershipAddForm()
    if not form.validate_on_submit():
        refused("Name a group to add the user to.")
        return back("admin.user_detail", user_id=user.id)
    try:
        add_manual(_picked_group(form), user)
    except groups.GroupError as exc:
        refused(f"Nothing changed: {exc}.")
    return back("admin.user_detail", user_id=user.id)


def _picked_group(form: MembershipAddForm) -> Group:
    """Return the group the picker chose by id, or the one the typed name or object ID names."""
    picked = form.group_id.data or ""
    if picked.isdigit() and len(picked) < 18 and (group := db.session.get(Group, int(picked))):
        if group.name == (form.group.data or "").strip():
            return group
    return groups.find_group(form.group.data or "")


def add_manual(group: Group, user: User) -> None:
    """Add a manual membership and confirm it, or say why it is not needed."""
    if not operations.add_membership(actor(), group, user):
        raise groups.GroupError(f"{user.label} is already a member of {group.name!r} by hand")
    done(f"{user.label} is now a manual member of {group.name}.")


@bp.post("/users/<int:user_id>/memberships/<int:group_id>/remove")
def user_membership_remove(user_id: int, group_id: int) -> Response:
    """Remove a manual membership of the user."""
    user = db.get_or_404(User, user_id)
    group = db.get_or_404(Group, group_id)
    remove_manual(group, user)
    return back("admin.user_detail", user_id=user.id)


def remove_manual(group: Group, user: User) -> None:
    """Remove a manual membership and confirm it, or say why it cannot be removed."""
    try:
        removed = operations.remove_membership(actor(), group, user)
    except groups.GroupError as exc:
        refused(f"Nothing changed: {exc}.")
        return
    if not removed:
        refused(f"{user.label} is not a member of {group.name}.")
        return
    done(f"{user.label} is no longer a member of {group.name}.")
