"""The portal as gunicorn serves it in the benchmarks, with two additions for measuring it.

`GET /_bench/session` is a page that only checks the session (Flask-Login loads the user) and
renders nothing else. With BENCH_SQL_DIR set, each worker counts its SQL statements and rows
written and leaves them in `<BENCH_SQL_DIR>/<pid>.json` when it exits; touching
`<BENCH_SQL_DIR>/epoch` zeroes the tallies at each worker's next request (after a warm-up).
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path

from flask_login import login_required

from portal import create_app
from portal.extensions import db
from tests.benchmarks.measure import SqlCounter

app = create_app()


@app.get("/_bench/session")
@login_required
def session_probe() -> str:
    """Answer a signed-in visitor with a few bytes: the cost of the session check alone."""
    return "ok"


def _count_sql(directory: Path) -> None:
    """Count this process's SQL, restart at each new epoch, and write the tally at exit."""
    with app.app_context():
        counter = SqlCounter(db.engine)
    epoch = directory / "epoch"
    seen = [0]

    @app.before_request
    def restart_at_new_epoch() -> None:
        stamp = epoch.stat().st_mtime_ns if epoch.exists() else 0
        if stamp != seen[0]:
            seen[0] = stamp
            counter.reset()

    def dump() -> None:
        # A worker that served no request since the last epoch (a sequential load keeps one
        # connection, so one worker) still holds warm-up statements: they are not the phase's.
        restart_at_new_epoch()
        tally = counter.snapshot()
        data = {"statements": tally.statements, "rows_written": tally.rows_written}
        data["rows_by_table"] = dict(tally.rows_by_table)
        (directory / f"{os.getpid()}.json").write_text(json.dumps(data))

    atexit.register(dump)


if os.environ.get("BENCH_SQL_DIR"):
    _count_sql(Path(os.environ["BENCH_SQL_DIR"]))
