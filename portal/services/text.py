"""Text from outside (token claims, Graph names) made fit to store on every database alike."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# C0 and C1 control characters, NUL included: PostgreSQL refuses NUL in text, and no name
# needs the others. Tabs and line breaks become spaces instead of vanishing between words.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"[\t\n\r]+")


def clean_text(value: Any, limit: int) -> str | None:
    """Return a string value without control characters, clipped to `limit`; None otherwise."""
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub("", _SPACE.sub(" ", value)).strip()
    if len(text) > limit:
        # Clip on a character boundary, never between a letter and its combining marks.
        text = text[:limit]
        while text and unicodedata.combining(text[-1]):
            text = text[:-1]
        text = text.rstrip()
    return text or None
