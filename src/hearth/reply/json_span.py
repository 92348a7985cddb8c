"""JSON in a reply: where an object or array that is still arriving ends, and a run of values."""

from __future__ import annotations

import json
import re
from typing import Any

_OUTSIDE = re.compile(r'["{}\[\]]')
_INSIDE = re.compile(r'["\\]')
_BETWEEN_VALUES = " \t\r\n,;"


class JsonSpan:
    """The end of the JSON object or array that starts at ``start``, found as text is added:
    each call scans only what is new, so a long call fed a token at a time stays linear."""

    def __init__(self, start: int) -> None:
        self.start = start
        self._position = start
        self._depth = 0
        self._in_string = False

    def end(self, text: str) -> int | None:
        """The index just past the closing bracket, or None while it has not arrived."""
        position = self._position
        while True:
            if self._in_string:
                match = _INSIDE.search(text, position)
                if match is None:
                    break
                if match.group() == "\\":
                    if match.end() >= len(text):
                        position = match.start()  # the escaped character is still to come
                        break
                    position = match.end() + 1
                    continue
                self._in_string = False
                position = match.end()
                continue
            match = _OUTSIDE.search(text, position)
            if match is None:
                position = len(text)
                break
            position = match.end()
            char = match.group()
            if char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth <= 0:
                    self._position = position
                    return position
        self._position = min(position, len(text))
        return None


def json_values(text: str) -> list[Any] | None:
    """Every JSON value in ``text``, one after another (separated by blanks, commas or
    semicolons); None if anything else is there or there is nothing."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = _skip(text, 0)
    while position < len(text):
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            return None
        values.append(value)
        position = _skip(text, position)
    return values or None


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _BETWEEN_VALUES:
        position += 1
    return position


def skip_blanks(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
