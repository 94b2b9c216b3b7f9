"""Logging to stdout as text or JSON lines, with the request ID on every line.

`PORTAL_LOG_FORMAT=json` gives one JSON object per line for log shippers; `PORTAL_LOG_LEVEL`
sets the portal's level. The `portal.audit` logger gets one line per sign-in, admin action and
sync change. No line ever carries a token, a secret or a whole claim set.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, g, has_request_context
from flask_login import user_logged_in
from gunicorn.glogging import Logger as GunicornBaseLogger

from portal.config import ROOT, environ_with_dotenv

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

audit_log = logging.getLogger("portal.audit")


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request's ID, or '-' outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` to the record unless the caller already gave one."""
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line; `extra={"fields": {...}}` adds keys."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever sys.stdout is at the time, so redirections and test capture apply."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        """Return the current sys.stdout."""
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignore StreamHandler's assignment: the stream is always the current stdout."""


def formatter(log_format: str) -> logging.Formatter:
    """Return the JSON or text formatter."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(env: Mapping[str, str] | None = None) -> None:
    """Send logs to stdout in the configured format; safe to call again (each create_app does)."""
    if env is None:
        env = environ_with_dotenv(ROOT)
    root = logging.getLogger()
    # Reuse our handler and leave others alone (gunicorn's, pytest's capture) instead of
    # replacing the root's handlers the way dictConfig does.
    handler = next((h for h in root.handlers if isinstance(h, StdoutHandler)), None)
    if handler is None:
        handler = StdoutHandler()
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    handler.setFormatter(formatter((env.get("PORTAL_LOG_FORMAT") or "text").strip().lower()))
    level = (env.get("PORTAL_LOG_LEVEL") or "INFO").strip().upper()
    logging.getLogger("portal").setLevel(
        level if level in logging.getLevelNamesMapping() else "INFO"
    )
    # An earlier logging.config call (Alembic's env.py) may have disabled existing loggers.
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("portal") and isinstance(logger, logging.Logger):
            logger.disabled = False


@user_logged_in.connect
def log_sign_in(_app: Flask, user: Any, **_extra: Any) -> None:
    """Write one audit line per sign-in, naming the user by stable IDs only."""
    who = f"{user.tenant_id}/{user.object_id}" if user.is_external else f"local:{user.username}"
    audit_log.info("sign-in %s user %s", user.user_type, who)


class GunicornLogger(GunicornBaseLogger):
    """Gunicorn's logger, writing access lines as JSON when PORTAL_LOG_FORMAT=json."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then give them the portal's format."""
        super().setup(cfg)
        self.json = environ_with_dotenv(ROOT).get("PORTAL_LOG_FORMAT", "").lower() == "json"
        if self.json:
            for handler in self.error_log.handlers + self.access_log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Log one request: path without query string (it may hold a sign-in code), status, time."""
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        fields = {
            "remote_addr": atoms["h"],
            "method": atoms["m"],
            "path": atoms["U"],
            "status": int(atoms["s"]),
            "bytes": atoms["B"],
            "duration_ms": atoms["M"],
            "user_agent": atoms["a"],
        }
        request_id = atoms.get("{x-request-id}o", "-")
        message = f"{atoms['m']} {atoms['U']} {atoms['s']}"
        self.access_log.info(message, extra={"fields": fields, "request_id": request_id})
