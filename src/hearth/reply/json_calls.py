"""Calls written as bare JSON, ``{"name": ..., "arguments": ...}`` (or a list of them, or either
inside a ```json fence): the "json" style of templates that take tools but teach no marker,
and Llama 3.x's ``{"name": ..., "parameters": ...}``.

An opener here is not a fixed string but ``{`` followed by a ``"name"`` (or ``"type"``,
``"function"``) key, blanks allowed, so a ``{`` in content waits only until the next few
characters show it is not a call.
"""

from __future__ import annotations

from hearth.reply.call_items import NOT_JSON, CallMaker, loads_or_none
from hearth.reply.call_stage import BLANKS, CallReader, Read
from hearth.reply.delta import ParsedCall
from hearth.reply.json_span import JsonSpan, skip_blanks
from hearth.reply.markers import search_from

_KEYS = ('name"', 'type"', 'function"')
FENCE = "```"
_FENCE_TAG = "json"


def call_opens_at(text: str, at: int, *, lists: bool) -> bool | None:
    """Whether a JSON call starts at ``text[at]``: True, False, or None while it cannot tell."""
    char = text[at]
    if char == "[" and lists:
        inner = skip_blanks(text, at + 1)
        if inner == len(text):
            return None
        return call_opens_at(text, inner, lists=False) if text[inner] == "{" else False
    if char != "{":
        return False
    key = skip_blanks(text, at + 1)
    if key == len(text):
        return None
    if text[key] != '"':
        return False
    rest = text[key + 1:key + 1 + max(map(len, _KEYS))]
    if any(rest.startswith(name) for name in _KEYS):
        return True
    if any(len(rest) < len(name) and name.startswith(rest) for name in _KEYS):
        return None
    return False


def fence_opens_at(text: str, at: int) -> bool | None:
    """Whether a fenced JSON call (```json {...} ```) starts at ``text[at]``."""
    if not text.startswith(FENCE, at):
        return None if FENCE.startswith(text[at:]) else False
    position = at + len(FENCE)
    tag = text[position:position + len(_FENCE_TAG)].lower()
    if tag == _FENCE_TAG:
        position += len(_FENCE_TAG)
    elif position + len(tag) == len(text) and _FENCE_TAG.startswith(tag):
        return None
    position = skip_blanks(text, position)
    if position == len(text):
        return None
    if text[position] not in "{[":
        return False
    return call_opens_at(text, position, lists=True)


class JsonFormat:
    """The "json" style: bare objects, lists of them, and fenced JSON."""

    separators = BLANKS

    def __init__(self, maker: CallMaker, *, lists: bool = True, fences: bool = True) -> None:
        self._maker = maker
        self._lists = lists
        self._fences = fences

    def find(self, text: str) -> tuple[int, CallReader | None]:
        starts = "{[`" if self._fences else "{["
        for at, char in enumerate(text):
            if char not in starts:
                continue
            if char == "`":
                verdict = fence_opens_at(text, at)
                reader: CallReader = FenceReader(self._maker, text, at)
            else:
                verdict = call_opens_at(text, at, lists=self._lists)
                reader = JsonReader(self._maker)
            if verdict is None:
                return at, None
            if verdict:
                return at, reader
        return len(text), None


class JsonReader:
    """A JSON object or list that starts at the opener and ends with its closing bracket."""

    def __init__(self, maker: CallMaker, start: int = 0) -> None:
        self._maker = maker
        self._span = JsonSpan(start)

    def read(self, text: str, final: bool) -> Read | None:
        end = self._span.end(text)
        if end is None:
            return Read(len(text), None) if final else None
        return Read(end, value_calls(self._maker, text[self._span.start:end]))


class FenceReader:
    """```json ... ```: the body between the fences, read as JSON calls."""

    def __init__(self, maker: CallMaker, text: str, at: int) -> None:
        self._maker = maker
        opener = len(FENCE)
        if text[at + opener:at + opener + len(_FENCE_TAG)].lower() == _FENCE_TAG:
            opener += len(_FENCE_TAG)
        self._opener = opener
        self._searched = opener

    def read(self, text: str, final: bool) -> Read | None:
        close = text.find(FENCE, max(self._opener, search_from(self._searched, len(FENCE))))
        self._searched = len(text)
        if close >= 0:
            return Read(close + len(FENCE), self._maker.from_text(text[self._opener:close]))
        if not final:
            return None
        return Read(len(text), self._maker.from_text(text[self._opener:]))


def value_calls(maker: CallMaker, text: str) -> list[ParsedCall] | None:
    value = loads_or_none(text)
    return None if value is NOT_JSON else maker.from_value(value)
