"""Admin view of the configuration: the effective settings and a step-by-step check."""

from __future__ import annotations

from flask import render_template

from portal import diagnostics
from portal.admin import actor, bp
from portal.extensions import db
from portal.services import audit


@bp.get("/config")
def config_show() -> str:
    """Show the effective configuration, secrets masked, with the button that checks it."""
    return render_template("admin/config/show.html", config_rows=diagnostics.effective_config())


@bp.post("/config/check")
def config_check() -> str:
    """Run the configuration checks and show each step's outcome."""
    checks = diagnostics.run_checks()
    failed = [check.name for check in checks if not check.ok]
    audit.record(actor(), audit.CONFIG_CHECKED, "configuration", failed=failed)
    db.session.commit()
    return render_template(
        "admin/config/show.html",
        config_rows=diagnostics.effective_config(),
        checks=checks,
        failed=failed,
    )
