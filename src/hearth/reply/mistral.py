"""Mistral calls after ``[TOOL_CALLS]``: the older JSON list
``[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "abcDEF123"}]`` and the newer
``[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}`` (with ``[CALL_ID]id`` between them in some
versions), one marker per call. There is no closing marker: a call ends with its JSON."""

from __future__ import annotations

import re

from hearth.reply.call_items import CallMaker
from hearth.reply.call_stage import BLANKS, CallReader, Read, literal_opener
from hearth.reply.json_calls import value_calls
from hearth.reply.json_span import JsonSpan, skip_blanks

TOOL_CALLS = "[TOOL_CALLS]"
ARGS = "[ARGS]"
# The name (and id) ahead of the arguments, complete once the "{" is there.
_HEADER = re.compile(r"([\w.\-]+)\s*(?:\[CALL_ID\]\s*([A-Za-z0-9]+)\s*)?(?:\[ARGS\]\s*)?(?=\{)")
# What a header still arriving may hold; anything else means this was no call.
_HEADER_SO_FAR = re.compile(r"[\w.\-\[\]\s]*")
_LONGEST_HEADER = 200


class MistralFormat:
    separators = BLANKS

    def __init__(self, maker: CallMaker) -> None:
        self._maker = maker

    def find(self, text: str) -> tuple[int, CallReader | None]:
        at, opened = literal_opener(text, TOOL_CALLS)
        return at, (MistralReader(self._maker) if opened else None)


class MistralReader:
    def __init__(self, maker: CallMaker) -> None:
        self._maker = maker
        self._span: JsonSpan | None = None
        self._name: str | None = None
        self._call_id: str | None = None

    def read(self, text: str, final: bool) -> Read | None:
        not_a_call = Read(len(TOOL_CALLS), None)  # the marker is content; the rest is read again
        if self._span is None:
            start = skip_blanks(text, len(TOOL_CALLS))
            if start == len(text):
                return not_a_call if final else None
            if text[start] not in "[{":
                header = _HEADER.match(text, start)
                if header is None or header.end() - start > _LONGEST_HEADER:
                    rest = text[start:]
                    if final or len(rest) > _LONGEST_HEADER or not _HEADER_SO_FAR.fullmatch(rest):
                        return not_a_call
                    return None
                self._name, self._call_id = header.group(1), header.group(2)
                start = header.end()
            self._span = JsonSpan(start)
        end = self._span.end(text)
        if end is None:
            return not_a_call if final else None
        body = text[self._span.start:end]
        if self._name is None:
            return Read(end, value_calls(self._maker, body))
        call = self._maker.call(self._name, body, self._call_id)
        return Read(end, [call] if call else None)
