"""Concurrent first sign-ins of one person make exactly one user (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import User
from tests.helpers import prepare_callback

SIGN_INS = 20


def test_concurrent_first_sign_ins_of_one_person_make_one_user(
    app: Flask, emulator: Any, create_user: Callable[..., str]
) -> None:
    oid = create_user("Concurrent Person")
    clients = [app.test_client() for _ in range(SIGN_INS)]
    callbacks = [prepare_callback(client, emulator, oid) for client in clients]
    start = threading.Barrier(SIGN_INS)

    def finish(index: int) -> tuple[int, str | None]:
        start.wait(timeout=10)
        response = clients[index].get(callbacks[index])
        return response.status_code, response.headers.get("Location")

    with ThreadPoolExecutor(max_workers=SIGN_INS) as pool:
        results = list(pool.map(finish, range(SIGN_INS)))

    assert results == [(302, "/")] * SIGN_INS
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    assert all(client.get("/").status_code == 200 for client in clients)
