"""The streaming reply parser: decoded text (special tokens kept) in, the reply's content,
thinking and complete tool calls out, a piece at a time.

Text goes out as soon as it cannot be part of a marker, so what a user sees does not wait for
the end of the reply; only a possible marker's first characters (``<tool_`` at the end of a
piece) wait for the next piece. The split is the same however the text is cut into pieces.
Reasoning is taken out first (think tags), then calls out of what remains; harmony, where both
live in one message structure, has its own reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hearth.reply.call_items import CallMaker
from hearth.reply.call_stage import CallFormat, CallStage
from hearth.reply.delta import ReplyDelta
from hearth.reply.harmony import HarmonyReader
from hearth.reply.json_calls import JsonFormat
from hearth.reply.llama3 import Llama3Format
from hearth.reply.mistral import MistralFormat
from hearth.reply.style import ReplyStyle
from hearth.reply.tagged import TaggedFormat
from hearth.reply.thinking import ThinkStage, prompt_opens_thinking


class ReplyParser:
    def __init__(self, style: ReplyStyle, *, tool_names: frozenset[str] | None = None,
                 prompt_text: str = "", think: bool | str | None = None,
                 tool_schemas: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.style = style
        # think=False asks for no reasoning: whatever the model reasons anyway is dropped,
        # not shown as the answer.
        self._keep_thinking = think is not False
        maker = (CallMaker(frozenset(tool_names), style, tool_schemas)
                 if tool_names is not None else None)
        self._harmony: HarmonyReader | None = None
        self._think: ThinkStage | None = None
        self._calls: CallStage | None = None
        self._finished = False
        if style.thinking == "harmony" or style.tools == "harmony":
            self._harmony = HarmonyReader(maker, keep_thinking=self._keep_thinking,
                                          prompt_text=prompt_text)
            return
        if style.thinking == "tags":
            self._think = ThinkStage(style, thinking=prompt_opens_thinking(style, prompt_text))
        call_format = _call_format(style, maker) if maker is not None else None
        if call_format is not None:
            self._calls = CallStage(call_format)

    def feed(self, text: str) -> ReplyDelta:
        return self._step(text, final=False)

    def finish(self) -> ReplyDelta:
        """The end of the reply: what was held back, and a call the reply ended inside of."""
        if self._finished:
            return ReplyDelta()
        self._finished = True
        return self._step("", final=True)

    def _step(self, text: str, final: bool) -> ReplyDelta:
        if self._harmony is not None:
            return self._harmony.feed(text, final)
        thinking, answer = self._think.feed(text, final) if self._think else ("", text)
        content, calls = self._calls.feed(answer, final) if self._calls else (answer, [])
        return ReplyDelta(content=content, thinking=thinking if self._keep_thinking else "",
                          tool_calls=calls)


def make_parser(style: ReplyStyle, *, tool_names: frozenset[str] | None,
                prompt_text: str = "", think: bool | str | None = None,
                tool_schemas: Mapping[str, Mapping[str, Any]] | None = None) -> ReplyParser:
    """A parser for one reply. ``tool_names`` are the functions the request offers (None: no
    tools, so call markers are text); ``prompt_text`` is the rendered prompt (it may open the
    reasoning); ``tool_schemas`` maps a function to its parameters' JSON Schema, which only
    Qwen3-Coder's untyped XML values need."""
    return ReplyParser(style, tool_names=tool_names, prompt_text=prompt_text, think=think,
                       tool_schemas=tool_schemas)


def _call_format(style: ReplyStyle, maker: CallMaker) -> CallFormat | None:
    if style.tools in ("hermes", "qwen3-coder"):
        return TaggedFormat(maker)
    if style.tools == "mistral":
        return MistralFormat(maker)
    if style.tools == "llama3":
        return Llama3Format(maker)
    if style.tools == "json":
        return JsonFormat(maker)
    return None
