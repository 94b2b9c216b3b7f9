"""Security headers, trusted proxies and request IDs for every response."""

from __future__ import annotations

import re
import secrets

from flask import Flask, Response, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def init_security(app: Flask) -> None:
    """Install ProxyFix for the configured number of hops and the per-request hooks."""
    hops = int(app.config.get("PORTAL_TRUSTED_PROXIES", 0))
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.before_request(assign_request_id)
    app.after_request(add_security_headers)


def assign_request_id() -> None:
    """Reuse a sane X-Request-ID from the proxy, or make one, so logs can be joined."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else secrets.token_hex(8)


def content_security_policy() -> str:
    """Allow only the portal's own origin; forms may also lead to the sign-in host (sign-out)."""
    authority = current_app.config.get("ENTRA_AUTHORITY_HOST", "")
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"form-action 'self' {authority}".rstrip()
        + "; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def add_security_headers(response: Response) -> Response:
    """Add CSP, framing, referrer, sniffing and (on https) HSTS headers."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if "request_id" in g:
        headers.setdefault("X-Request-ID", g.request_id)
    return response
