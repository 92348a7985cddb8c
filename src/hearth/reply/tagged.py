"""Calls between ``<tool_call>`` and ``</tool_call>``: Hermes, Qwen2.5 and Qwen3 write JSON
there, Qwen3-Coder writes XML; either body is read under either style, since fine-tunes mix
them."""

from __future__ import annotations

from hearth.reply.call_items import CallMaker
from hearth.reply.call_stage import BLANKS, CallReader, Read, literal_opener
from hearth.reply.delta import ParsedCall
from hearth.reply.markers import search_from
from hearth.reply.qwen3_coder import xml_calls

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


class TaggedFormat:
    separators = BLANKS

    def __init__(self, maker: CallMaker) -> None:
        self._maker = maker

    def find(self, text: str) -> tuple[int, CallReader | None]:
        at, opened = literal_opener(text, OPEN)
        return at, (TaggedReader(self._maker) if opened else None)


class TaggedReader:
    def __init__(self, maker: CallMaker) -> None:
        self._maker = maker
        self._searched = len(OPEN)

    def read(self, text: str, final: bool) -> Read | None:
        close = text.find(CLOSE, max(len(OPEN), search_from(self._searched, len(CLOSE))))
        self._searched = len(text)
        if close >= 0:
            end = close + len(CLOSE)
            return Read(end, self._calls(text[len(OPEN):close]))
        if not final:
            return None
        # The reply ended (a stop word, the token limit) before the closing tag: a complete
        # body is still the call the model meant.
        return Read(len(text), self._calls(text[len(OPEN):]))

    def _calls(self, body: str) -> list[ParsedCall] | None:
        body = body.strip()
        if body.startswith("<function="):
            return xml_calls(body, self._maker)
        return self._maker.from_text(body)
