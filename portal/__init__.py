"""The portal: sign in with Microsoft Entra ID and keep Entra groups in sync."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from flask import Flask

from portal.config import ROOT, ConfigError, environ_with_dotenv, load_config


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the portal; `test_config` overrides the environment's configuration."""
    configure_logging()
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    register_config(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_security(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def configure_logging() -> None:
    """Send logs to stdout in the configured format before the app exists."""
    from portal.log import configure

    configure()


def register_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Load validated configuration, refusing to start on a bad one with a single line."""
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if test_config is not None:
        app.config.update(test_config)
        return
    try:
        app.config.update(load_config(environ_with_dotenv(ROOT), app.instance_path))
    except ConfigError as exc:
        print(f"portal: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def register_extensions(app: Flask) -> None:
    """Bind the database, migrations, sessions and CSRF protection to the app."""
    from portal.database import ping_when_idle
    from portal.extensions import csrf, db, login_manager, migrate
    from portal.session import configure_session

    db.init_app(app)
    with app.app_context():
        ping_when_idle(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    configure_session(app)


def register_blueprints(app: Flask) -> None:
    """Mount the main, auth and admin blueprints."""
    from portal.admin import bp as admin_bp
    from portal.auth import bp as auth_bp
    from portal.errors import DatabaseInteger
    from portal.main import bp as main_bp

    app.url_map.converters["int"] = DatabaseInteger
    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)


def register_security(app: Flask) -> None:
    """Add security headers, proxy handling and request IDs."""
    from portal.security import init_security

    init_security(app)


def register_error_handlers(app: Flask) -> None:
    """Render friendly pages for HTTP errors and database outages."""
    from portal.errors import init_error_handlers

    init_error_handlers(app)


def register_commands(app: Flask) -> None:
    """Add the `users`, `groups`, `sync` and `check-config` CLI commands."""
    from portal.cli import init_commands

    init_commands(app)
