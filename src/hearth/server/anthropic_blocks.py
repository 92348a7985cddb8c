"""The runtime's chunks as Anthropic content blocks, in the order they were written: thinking,
text and tool_use blocks, each opened, filled and closed. The same assembly serves the streamed
answer (its events) and the whole one (its blocks), so the two cannot differ.

Thinking and text arrive as deltas and grow the open block of their kind (a change of kind
closes it); a tool call arrives whole, and is one block with one ``input_json_delta``. A block
of nothing but whitespace is not opened at all: Anthropic's API refuses such a text block when a
client sends the conversation back.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from hearth.api.anthropic_types import TextOut, ThinkingOut, ToolUseOut

Event = dict[str, Any]


def new_tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


def signature_of(thinking: str) -> str:
    """Anthropic signs thinking so its API can check it came back unchanged; hearth does not
    check what clients send back, but clients expect the field: a digest of the text."""
    return "hearth-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


class BlockAssembly:
    def __init__(self) -> None:
        self.blocks: list[ThinkingOut | TextOut | ToolUseOut] = []
        self._open: str | None = None    # "thinking" or "text": the block deltas go to
        self._parts: list[str] = []       # the open block's text so far
        self._pending = ""                # whitespace not yet worth a block of its own,
        self._pending_kind: str | None = None  # and the kind of block it would start

    @property
    def tool_calls(self) -> bool:
        return any(isinstance(block, ToolUseOut) for block in self.blocks)

    def feed(self, chunk: Any) -> list[Event]:
        message = chunk.message
        events: list[Event] = []
        if message.thinking:
            events += self._delta("thinking", message.thinking)
        if message.content:
            events += self._delta("text", message.content)
        for call in message.tool_calls or []:
            events += self._tool_use(call)
        return events

    def finish(self) -> list[Event]:
        self._pending = ""
        return self._close()

    def _delta(self, kind: str, text: str) -> list[Event]:
        if self._open == kind:
            self._parts.append(text)
            return [self._delta_event(kind, text)]
        if self._pending_kind != kind:
            self._pending, self._pending_kind = "", kind
        self._pending += text
        if not self._pending.strip():
            return []
        events = self._close()
        text, self._pending = self._pending, ""
        self._open, self._parts = kind, [text]
        empty: Event = {"type": kind, kind: ""}
        if kind == "thinking":
            empty["signature"] = ""
        events.append({"type": "content_block_start", "index": len(self.blocks), "content_block": empty})
        events.append(self._delta_event(kind, text))
        return events

    def _delta_event(self, kind: str, text: str) -> Event:
        return {"type": "content_block_delta", "index": len(self.blocks),
                "delta": {"type": f"{kind}_delta", kind: text}}

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        index, text = len(self.blocks), "".join(self._parts)
        events: list[Event] = []
        if self._open == "thinking":
            signature = signature_of(text)
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "signature_delta", "signature": signature}})
            self.blocks.append(ThinkingOut(thinking=text, signature=signature))
        else:
            self.blocks.append(TextOut(text=text))
        events.append({"type": "content_block_stop", "index": index})
        self._open, self._parts = None, []
        return events

    def _tool_use(self, call: Any) -> list[Event]:
        self._pending = ""
        events = self._close()
        block = ToolUseOut(id=call.id or new_tool_use_id(), name=call.function.name,
                           input=call.function.arguments)
        index = len(self.blocks)
        self.blocks.append(block)
        start = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events.append({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": json.dumps(block.input)}})
        events.append({"type": "content_block_stop", "index": index})
        return events
