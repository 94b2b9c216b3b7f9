"""Post-sign-in redirects that never leave the site."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(value: str | None, default: str = "/") -> str:
    """Return `value` if it is a local path, else `default` (no scheme, host or `//` tricks)."""
    if not value or len(value) > 2048:
        return default
    # Browsers treat backslashes as slashes and drop tabs and newlines inside URLs.
    cleaned = value.replace("\\", "/")
    if any(ch in cleaned for ch in "\t\r\n") or any(ord(ch) < 32 for ch in cleaned):
        return default
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
        return default
    return cleaned
