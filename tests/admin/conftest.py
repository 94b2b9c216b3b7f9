"""Fixtures of the admin console tests: signed-in admins, CSRF-aware posts, statement counts."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.helpers import Admin, local_sign_in, make_local


@pytest.fixture
def admin(app: Flask) -> Admin:
    """A local admin signed in on their own test client."""
    user_id = make_local(app, "root-admin", is_admin=True)
    client = app.test_client()
    assert local_sign_in(client, "root-admin").status_code == 302
    return Admin(user_id, "root-admin", client)
