"""Gunicorn settings for production: `gunicorn app:app` from the repo root reads this file.

Every setting can be overridden on the command line or in GUNICORN_CMD_ARGS
(e.g. `GUNICORN_CMD_ARGS="--bind 0.0.0.0:8000 --threads 16"`).
"""

from __future__ import annotations

import os
from typing import Any

# Threaded workers. A sign-in callback spends most of its time waiting on the network: the code
# redemption at Entra, the signing keys, then Microsoft Graph (up to a 10 s budget when Graph
# throttles). A synchronous worker would sit idle through all of that, so sign-ins per second
# would be capped at workers / latency; with threads, one process keeps serving other requests
# while some wait. The work between waits is short, so the GIL is not the limit.
worker_class = "gthread"
threads = 8
# WEB_CONCURRENCY is the usual knob (Heroku, Render, ...); otherwise 2 x cores + 1, capped so
# that workers x threads stays well under PostgreSQL's default 100 connections.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1) + 1, 8))

# Behind a reverse proxy on the same host by default; containers bind 0.0.0.0 with --bind.
bind = [f"127.0.0.1:{os.environ.get('PORT', '8000')}"]

# Above the worst sign-in: token redemption (10 s read timeout) + signing keys + the 10 s Graph
# budget. With gthread this is the silence after which a stuck worker is restarted.
timeout = 60
# On deploy (SIGTERM/SIGHUP) let sign-ins in flight finish before the old workers exit.
graceful_timeout = 30
keepalive = 5

# Load the app once in the master: a configuration error stops the start with its one-line
# message instead of every worker failing to boot, and workers share the loaded code.
preload_app = True

# Which peers may set X-Forwarded-Proto for gunicorn itself. The portal trusts forwarded
# headers through PORTAL_TRUSTED_PROXIES (ProxyFix), so keep gunicorn's default of the local
# host unless the proxy runs elsewhere.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs go to stdout/stderr for the process manager or container runtime to ship.
accesslog = "-"
errorlog = "-"
loglevel = "info"
logger_class = "portal.log.GunicornLogger"
# The path without the query string: a callback's query carries the authorization code.
access_log_format = (
    '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s "%(a)s"'
)

# Restart workers now and then so a slow leak cannot grow forever; jitter avoids all at once.
max_requests = 2000
max_requests_jitter = 200

# The heartbeat file in memory, not on a container's overlay disk (gunicorn's FAQ).
if os.path.isdir("/dev/shm"):  # noqa: S108  (a tmpfs for the heartbeat, not a temp file)
    worker_tmp_dir = "/dev/shm"  # noqa: S108


def post_fork(server: Any, worker: Any) -> None:
    """Give each worker its own database connections: pooled sockets must not cross a fork."""
    from app import app
    from portal.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)
