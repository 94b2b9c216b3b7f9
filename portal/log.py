"""Logging to stdout as text or JSON lines, with the request ID on every line."""

from __future__ import annotations

import json
import logging
import os
from logging.config import dictConfig
from typing import Any

from flask import g, has_request_context


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request's ID, or '-' outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` to the record."""
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure() -> None:
    """Configure logging before the app exists, from PORTAL_LOG_FORMAT and PORTAL_LOG_LEVEL."""
    fmt = os.environ.get("PORTAL_LOG_FORMAT", "text").lower()
    text = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
    formatter = {"()": JsonFormatter} if fmt == "json" else {"format": text}
    dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"request_id": {"()": RequestIdFilter}},
            "formatters": {"default": formatter},
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                    "formatter": "default",
                    "filters": ["request_id"],
                }
            },
            "loggers": {
                "portal": {"level": os.environ.get("PORTAL_LOG_LEVEL", "INFO").upper()},
            },
            "root": {"level": "WARNING", "handlers": ["stdout"]},
        }
    )


audit_log = logging.getLogger("portal.audit")
