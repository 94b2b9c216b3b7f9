"""Admin views of groups: the list, a group's members, and creating, renaming and deleting."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from portal.admin import actor, back, bp, done, pagination, refused
from portal.admin.forms import GroupCreateForm, GroupLinkForm, GroupRenameForm, MemberAddForm
from portal.admin.users import add_manual
from portal.extensions import db
from portal.models import EntraGroup, Group, User
from portal.models.group import BUILTIN, LOCAL
from portal.services import groups, operations, queries, users

SOURCES = ("entra", "local", "builtin")
LOOKUP_LIMIT = 20


def _list_query(text: str, source: str) -> sa.Select[Any]:
    """Select groups with their Entra object ID and member count (up to the lists' cap),
    narrowed by search and source."""
    query = queries.group_rows(pagination.COUNT_CAP)
    if text:
        query = query.where(queries.group_search(text))
    if source:
        query = query.where(Group.source == source)
    return query


@bp.get("/groups")
def groups_list() -> str:
    """List groups with search, a source filter and keyset pagination by name."""
    text = request.args.get("q", "").strip()[:200]
    source = request.args.get("source", "") if request.args.get("source") in SOURCES else ""
    descending = request.args.get("dir") == "desc"
    page = pagination.paginate_request(
        _list_query(text, source),
        pagination.simple_order(Group.name, Group.id, descending=descending),
    )
    filters = {k: v for k, v in (("q", text), ("source", source)) if v}
    toggle = filters if descending else {**filters, "dir": "desc"}
    if descending:
        filters = {**filters, "dir": "desc"}
    return render_template(
        "admin/groups/list.html",
        page=page,
        filters=filters,
        toggle=toggle,
        ambiguous=_ambiguous_on(page),
    )


def _ambiguous_on(page: pagination.Page) -> set[str]:
    """Match mode: the names of the page's unlinked local groups that several Entra groups carry."""
    if current_app.config["GROUP_SYNC_MODE"] != "match":
        return set()
    names = [g.name for g, object_id, _ in page.rows if g.source == LOCAL and object_id is None]
    return {name for name, count in groups.entra_name_counts(names).items() if count > 1}


@bp.get("/groups/lookup")
def groups_lookup() -> Response:
    """Answer the group picker: up to 20 groups that people can be added to, as JSON."""
    text = request.args.get("q", "").strip()[:200]
    query = (
        sa.select(Group.id, Group.name, Group.source, EntraGroup.object_id)
        .outerjoin(EntraGroup, Group.entra_group_id == EntraGroup.id)
        .where(Group.source != BUILTIN)
        .order_by(sa.func.lower(Group.name), Group.id)
        .limit(LOOKUP_LIMIT)
    )
    if text:
        query = query.where(queries.group_search(text))
    found = [dict(row._mapping) for row in db.session.execute(query)]
    return jsonify(groups=found)


@bp.route("/groups/new", methods=["GET", "POST"])
def group_create() -> str | Response:
    """Create a local group."""
    form = GroupCreateForm()
    if form.validate_on_submit():
        try:
            name, description = form.name.data or "", form.description.data or ""
            group = operations.create_group(actor(), name, description)
        except groups.GroupError as exc:
            refused(f"The group was not created: {exc}.")
        else:
            done(f"Group {group.name} created.")
            return redirect(url_for("admin.group_detail", group_id=group.id))
    return render_template("admin/groups/new.html", form=form)


def group_with_count(group_id: int) -> tuple[Group, str | None, int]:
    """Load a group, its Entra object ID and its member count (capped) in one statement, or 404."""
    count = queries.capped_member_count(group_id, pagination.COUNT_CAP)
    query = (
        sa.select(Group, EntraGroup.object_id, count)
        .outerjoin(EntraGroup, Group.entra_group_id == EntraGroup.id)
        .where(Group.id == group_id)
    )
    row = db.session.execute(query).one_or_none()
    if row is None:
        abort(404)
    return row[0], row[1], row[2]


def members_page(group: Group, text: str, member_count: int) -> pagination.Page:
    """Return the requested page of members by name; unsearched, the group's count is theirs."""
    return pagination.paginate_request(
        queries.members(group, text),
        pagination.simple_order(User.display_name, User.id),
        total=None if text else member_count,
    )


@bp.get("/groups/<int:group_id>")
def group_detail(group_id: int) -> str:
    """Show a group, its members page by page, and the actions its source allows."""
    group, object_id, member_count = group_with_count(group_id)
    text = request.args.get("q", "").strip()[:200]
    page = members_page(group, text, member_count)
    return render_template(
        "admin/groups/detail.html",
        group=group,
        object_id=object_id,
        member_count=member_count,
        page=page,
        filters={"q": text} if text else {},
        rename_form=GroupRenameForm(name=group.name),
        member_form=MemberAddForm(),
        link_form=GroupLinkForm(),
        candidates=(
            groups.ambiguous_candidates(group)
            if current_app.config["GROUP_SYNC_MODE"] == "match"
            else []
        ),
    )


@bp.post("/groups/<int:group_id>/link")
def group_link(group_id: int) -> Response:
    """Pin a local group's link to one Entra group by object ID (an ambiguous name, say)."""
    group = db.get_or_404(Group, group_id)
    form = GroupLinkForm()
    try:
        if not form.validate_on_submit():
            raise groups.GroupError("name the Entra group by its object ID")
        tenants = current_app.config["ENTRA_ALLOWED_TENANTS"]
        operations.pin_group_link(actor(), group, form.object_id.data or "", tenants)
    except groups.GroupError as exc:
        refused(f"Nothing was linked: {exc}.")
    else:
        done(f"{group.name} is now linked to Entra group {group.object_id}.")
    return redirect(url_for("admin.group_detail", group_id=group_id))


@bp.post("/groups/<int:group_id>/rename")
def group_rename(group_id: int) -> Response:
    """Rename a local group; Entra names its linked groups."""
    group = db.get_or_404(Group, group_id)
    form = GroupRenameForm()
    old = group.name
    try:
        if not form.validate_on_submit():
            raise groups.GroupError("a new name is required")
        operations.rename_group(actor(), group, form.name.data or "")
    except groups.GroupError as exc:
        refused(f"The group was not renamed: {exc}.")
    else:
        done(f"{old} is now {group.name}.")
    return redirect(url_for("admin.group_detail", group_id=group_id))


@bp.post("/groups/<int:group_id>/delete")
def group_delete(group_id: int) -> Response:
    """Delete a group and its memberships; the built-in group stays."""
    group = db.get_or_404(Group, group_id)
    name = group.name
    try:
        operations.delete_group(actor(), group)
    except groups.GroupError as exc:
        refused(f"The group was not deleted: {exc}.")
        return redirect(url_for("admin.group_detail", group_id=group_id))
    done(f"Group {name} deleted.")
    return redirect(url_for("admin.groups_list"))


@bp.post("/groups/<int:group_id>/members")
def group_member_add(group_id: int) -> Response:
    """Add a user to the group by hand."""
    group = db.get_or_404(Group, group_id)
    form = MemberAddForm()
    try:
        if not form.validate_on_submit():
            raise groups.GroupError("name a user to add")
        add_manual(group, users.find_user(form.user.data or ""))
    except (groups.GroupError, users.UserError) as exc:
        refused(f"Nothing changed: {exc}.")
    return back("admin.group_detail", group_id=group.id)


@bp.post("/groups/<int:group_id>/members/<int:user_id>/remove")
def group_member_remove(group_id: int, user_id: int) -> Response:
    """Remove a manual membership; the group's page and the user's page both post here."""
    group = db.get_or_404(Group, group_id)
    user = db.get_or_404(User, user_id)
    try:
        if operations.remove_membership(actor(), group, user):
            done(f"{user.label} is no longer a member of {group.name}.")
        else:
            refused(f"{user.label} is not a member of {group.name}.")
    except groups.GroupError as exc:
        refused(f"Nothing changed: {exc}.")
    return back("admin.group_detail", group_id=group.id)
