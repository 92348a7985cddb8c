"""A tool call's arguments as JSON text, read into the object templates and clients expect. The
one parser; each caller decides what a bad one means (refuse the request, drop the call, keep
the raw text)."""

from __future__ import annotations

import json
from typing import Any


def read_arguments(text: str) -> Any:
    """The decoded JSON (``{}`` for empty text); raises ``ValueError`` when it is not JSON."""
    return json.loads(text) if text.strip() else {}


def arguments_object(text: str) -> dict[str, Any] | None:
    """The arguments when they are a JSON object, else None."""
    try:
        value = read_arguments(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
