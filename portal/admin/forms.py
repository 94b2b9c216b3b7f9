"""Forms of the admin console; every one carries a CSRF token (CSRFProtect is global)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class GroupCreateForm(FlaskForm):
    """Create a local group."""

    name = StringField("Name", validators=[DataRequired(), Length(max=256)])
    description = TextAreaField("Description", validators=[Length(max=2000)])


class GroupRenameForm(FlaskForm):
    """Rename a local group."""

    name = StringField("New name", validators=[DataRequired(), Length(max=256)])


class GroupLinkForm(FlaskForm):
    """Pin a local group's link to an Entra group, named by its object ID."""

    object_id = StringField("Entra group object ID", validators=[DataRequired(), Length(max=64)])


class MembershipAddForm(FlaskForm):
    """Add a user to a group by hand, naming the group (name or Entra object ID)."""

    group = StringField(
        "Group name or Entra object ID", validators=[DataRequired(), Length(max=256)]
    )
    # Set by the group picker (static/js/portal.js) to the chosen group's id: no name guessing.
    group_id = HiddenField()


class MemberAddForm(FlaskForm):
    """Add a user to a group by hand, naming the user (email, UPN, username or object ID)."""

    user = StringField(
        "Email, UPN, username or object ID", validators=[DataRequired(), Length(max=320)]
    )
