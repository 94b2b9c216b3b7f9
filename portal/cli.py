"""Command-line interface: `flask --app app users|groups|sync ...` (placeholder)."""

from __future__ import annotations

from flask import Flask


def init_commands(app: Flask) -> None:
    """Register the portal's command groups."""
