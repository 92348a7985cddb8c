"""Text in a request body that no part of hearth could handle, refused at the door.

JSON may spell a lone UTF-16 surrogate (``"\\ud800"``): it decodes to a Python string that cannot
be encoded as UTF-8, so a tokenizer, a file name or the error message that echoes it would fail
with a 500 deep inside. One check on the raw body finds every such string, wherever it sits.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Any surrogate escape at all; a correct pair (an emoji) also matches, so the full parse below
# makes the decision. Bodies without one (nearly all) cost one regex scan.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def lone_surrogate_path(body: bytes) -> str | None:
    """Where in a JSON body a string holds a lone surrogate (``messages[2].content``), or None."""
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None  # not JSON: the route's own parser says so
    return _find(data, "")


def _find(value: Any, where: str) -> str | None:
    if isinstance(value, str):
        return None if _encodable(value) else (where or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            if not _encodable(key):
                return f"{where}.<key>" if where else "<key>"
            found = _find(item, f"{where}.{key}" if where else key)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, f"{where}[{index}]")
            if found:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
