"""Admin views of users: the list, its CSV export, a user's page and the actions on it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from flask import Response, abort, redirect, render_template, request, stream_with_context, url_for

from portal.admin import activity, actor, back, bp, done, pagination, refused
from portal.admin.forms import MembershipAddForm
from portal.extensions import db
from portal.models import Group, User
from portal.services import audit, groups, operations, queries, user_groups, users

SORTS = ("name", "email", "last_login", "created")
# The direction a column header sorts in first: names A to Z, times newest first.
FIRST_DIRECTION = {"name": "asc", "email": "asc", "last_login": "desc", "created": "desc"}
USER_PAGE_GROUPS = 25
# Fields whose query-string argument has a shorter name.
QUERY_NAMES = {"user_type": "type", "direction": "dir"}
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
    user_type: str = ""
    status: str = ""
    group: str = ""
    sync: str = ""
    role: str = ""
    sort: str = "name"
    direction: str = "asc"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> UserFilters:
        """Read the filters, dropping values the list does not know."""
        sort = args.get("sort", "name")
        return cls(
            q=args.get("q", "").strip()[:200],
            user_type=args.get("type", "") if args.get("type") in {"External", "Local"} else "",
            status=args.get("status", "") if args.get("status") in {"active", "disabled"} else "",
            group=args.get("group", "").strip()[:256],
            sync=args.get("sync", "") if args.get("sync") == "failed" else "",
            role=args.get("role", "") if args.get("role") == "admin" else "",
            sort=sort if sort in SORTS else "name",
            direction="desc" if args.get("dir") == "desc" else "asc",
        )

    def args(self, **changes: str) -> dict[str, str]:
        """Return the non-empty filters as query arguments, with `changes` (by argument name)."""
        values = {QUERY_NAMES.get(k, k): v for k, v in asdict(self).items()}
        return {k: v for k, v in {**values, **changes}.items() if v}

    def sort_args(self, column: str) -> dict[str, str]:
        """Return the query arguments of a column header: toggle it, or sort by it."""
        if self.sort == column:
            return self.args(dir="asc" if self.direction == "desc" else "desc")
        return self.args(sort=column, dir=FIRST_DIRECTION[column])

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """Return the WHERE conditions of the filters."""
        conditions = []
        if self.q:
            conditions.append(queries.user_search(self.q))
        if self.user_type:
            conditions.append(User.user_type == self.user_type)
        if self.status:
            conditions.append(User.is_active.is_(self.status == "active"))
        if self.group:
            conditions.append(queries.in_group(self.group, resolve=len(self.order().segments) == 1))
        if self.sync:
            conditions.append(User.id.in_(queries.last_sync_failed()))
        if self.role:
            conditions.append(User.is_admin.is_(True))
        return conditions

    def order(self) -> pagination.Order:
        """Return the keyset order of the chosen sort."""
        descending = self.direction == "desc"
        if self.sort == "email":
            return pagination.nullable_order(User.email, User.id, descending)
        if self.sort == "last_login":
            return pagination.nullable_order(User.last_login_at, User.id, descending)
        if self.sort == "created":
            return pagination.simple_order(User.id, descending=descending)
        return pagination.simple_order(User.display_name, User.id, descending=descending)


def _list_query(filters: UserFilters) -> sa.Select[Any]:
    """Select users with their group count and last sync status, one statement per page."""
    return sa.select(User, *queries.user_row_columns()).where(*filters.conditions())


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


@bp.get("/users/<int:user_id>")
def user_detail(user_id: int) -> str:
    """Show a user's profile, groups, recent syncs and the actions an admin can take.

    Two statements: the user with a page of their groups, then the recent rows of every list.
    """
    args = request.args
    user, groups_page = user_groups.with_user(
        user_id,
        args.get("q", ""),
        user_groups.read_page(args.get("page")),
        user_groups.read_size(args.get("size"), default=USER_PAGE_GROUPS),
    )
    if user is None:
        abort(404)
    recent = activity.recent(user)
    pick = args.get("pick", "").strip()[:256]
    return render_template(
        "admin/users/detail.html",
        user=user,
        groups=groups_page,
        events=recent.events,
        records=recent.records,
        form=MembershipAddForm(group=pick),
        open_sessions=recent.open_sessions,
        choices=groups.named(pick) if pick else [],  # after a name several groups share
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
    except groups.AmbiguousName as exc:
        # No picker (JavaScript off) or no way to tell them apart: the page lists them to choose.
        refused(f"Nothing changed: several groups are named {exc.name!r}. Choose one below.")
        return redirect(
            url_for("admin.user_detail", user_id=user.id, pick=exc.name, _anchor="groups")
        )
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
