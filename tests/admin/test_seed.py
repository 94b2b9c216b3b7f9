"""The development seeder: bulk rows that the console and the contract rules accept."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from portal.dev.seed import seed, seed_command
from portal.extensions import db
from portal.models import Group, GroupMembership, SyncRecord, User


def test_seed_adds_the_asked_numbers_of_rows_and_can_run_twice(app: Flask) -> None:
    with app.app_context():
        first = seed(120, 8, 900, seed=3, n_sync=40)
        second = seed(10, 2, 30, seed=4, n_sync=5)
        counts = [
            db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (User, Group, GroupMembership, SyncRecord)
        ]
    assert first == {"users": 120, "groups": 8, "memberships": 900, "sync_records": 40}
    assert second["users"] == 10
    assert counts == [130, 8 + 2 + 1, 930, 45]


def test_seeded_external_users_are_in_all_users_and_ids_keep_growing(app: Flask) -> None:
    with app.app_context():
        seed(60, 4, 300)
        builtin = sa.select(Group.id).where(Group.source == "builtin")
        missing = sa.select(sa.func.count(User.id)).where(
            User.user_type == "External",
            User.is_active,
            ~sa.select(GroupMembership.id)
            .where(GroupMembership.user_id == User.id, GroupMembership.group_id.in_(builtin))
            .exists(),
        )
        assert db.session.scalar(missing) == 0
        user = User(user_type="Local", username="after-seed", display_name="after")
        db.session.add(user)
        db.session.commit()
        assert user.id > 60


def test_seed_command_refuses_production(app: Flask) -> None:
    result = app.test_cli_runner().invoke(seed_command, ["--users", "1"])
    assert result.exit_code == 1
    assert "refusing" in result.output
