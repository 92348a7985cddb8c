"""The runtime's chunks as Responses output items and the stream events that build them.

``OutputStream`` is fed chunks in order and answers the events each one causes, every event
with the next ``sequence_number`` and the ``output_index`` of its item: ``response.created``
and ``response.in_progress`` first; for answer text a ``message`` item
(``output_item.added``, ``content_part.added``, ``output_text.delta``..., ``output_text.done``,
``content_part.done``, ``output_item.done``, the sequence Codex accepts); for thinking a
``reasoning`` item whose summary carries it (``reasoning_summary_part.added``,
``reasoning_summary_text.delta``..., ``.done``, ``reasoning_summary_part.done``); for each tool
call (the runtime hands over whole calls) a ``function_call`` item (``output_item.added``
with empty arguments, one ``function_call_arguments.delta``, ``.done``, ``output_item.done``);
and last ``response.completed``, or ``response.incomplete`` when ``max_output_tokens`` cut the
answer. A failure after the first event is an ``error`` event and ``response.failed``.
A non-streamed request runs the same machine and keeps only the final response, so both
answers are built by the same code.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from hearth.api.responses_types import (
    IncompleteDetails,
    ResponseError,
    ResponseObject,
    ResponseUsage,
)

Event = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def usage_of(final: Any) -> ResponseUsage:
    # prompt_eval_count counts only what was computed; input_tokens is the whole prompt.
    cached = final.prompt_cache_count or 0
    prompt = (final.prompt_eval_count or 0) + cached
    output = final.eval_count or 0
    return ResponseUsage(input_tokens=prompt, input_tokens_details={"cached_tokens": cached},
                         output_tokens=output, total_tokens=prompt + output)


def error_code(status: int) -> str:
    if status == 429:
        return "rate_limit_exceeded"
    return "server_error" if status >= 500 else "invalid_prompt"


class OutputStream:
    def __init__(self, response: ResponseObject,
                 origin: Callable[[str], tuple[str | None, str]] = lambda name: (None, name)) -> None:
        self.response = response
        self.origin = origin  # a flat tool name -> (its namespace, its own name)
        self.items: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the message or reasoning item being written
        self.parts: list[str] = []
        self.sequence = 0

    def event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def snapshot(self) -> dict[str, Any]:
        return self.response.model_copy(update={"output": list(self.items)}).model_dump(mode="json")

    # -- the lifecycle ----------------------------------------------------------------------

    def start(self) -> list[Event]:
        return [self.event("response.created", response=self.snapshot()),
                self.event("response.in_progress", response=self.snapshot())]

    def feed(self, chunk: Any) -> list[Event]:
        message = chunk.message
        events = []
        if message.thinking:
            events += self._write("reasoning", message.thinking)
        if message.content:
            events += self._write("message", message.content)
        for call in message.tool_calls or []:
            events += self._close("completed")
            events += self._call(call)
        return events

    def finish(self, final: Any) -> list[Event]:
        """The last events, once the final chunk is in (fed already)."""
        incomplete = final.done_reason == "length"
        status = "incomplete" if incomplete else "completed"
        events = self._close(status)
        if not self.items:
            # Clients read output[0] as the answer: an empty one is still a message.
            events += self._open("message") + self._close(status)
        self.response = self.response.model_copy(update={
            "status": status, "usage": usage_of(final),
            "incomplete_details": IncompleteDetails() if incomplete else None,
        })
        return [*events, self.event(f"response.{status}", response=self.snapshot())]

    def failed(self, status: int, message: str) -> list[Event]:
        code = error_code(status)
        self.response = self.response.model_copy(update={
            "status": "failed", "error": ResponseError(code=code, message=message)})
        return [self.event("error", code=code, message=message, param=None),
                self.event("response.failed", response=self.snapshot())]

    def final_response(self) -> dict[str, Any]:
        return self.snapshot()

    # -- items ------------------------------------------------------------------------------

    def _write(self, kind: str, text: str) -> list[Event]:
        events = []
        if self.open is None or self.open["type"] != kind:
            events += self._close("completed") + self._open(kind)
        self.parts.append(text)
        where = self._where()
        if kind == "message":
            events.append(self.event("response.output_text.delta", **where, content_index=0, delta=text,
                                     logprobs=[]))
        else:
            events.append(self.event("response.reasoning_summary_text.delta", **where, summary_index=0,
                                     delta=text))
        return events

    def _where(self) -> dict[str, Any]:
        assert self.open is not None
        return {"item_id": self.open["id"], "output_index": len(self.items)}

    def _open(self, kind: str) -> list[Event]:
        index = len(self.items)
        if kind == "message":
            self.open = {"id": new_id("msg"), "type": "message", "status": "in_progress", "role": "assistant",
                         "content": []}
        else:
            self.open = {"id": new_id("rs"), "type": "reasoning", "summary": []}
        self.parts = []
        events = [self.event("response.output_item.added", output_index=index, item=dict(self.open))]
        if kind == "message":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(self.event("response.content_part.added", **self._where(), content_index=0, part=part))
        else:
            events.append(self.event("response.reasoning_summary_part.added", **self._where(), summary_index=0,
                                     part={"type": "summary_text", "text": ""}))
        return events

    def _close(self, status: str) -> list[Event]:
        if self.open is None:
            return []
        item, text, where = self.open, "".join(self.parts), self._where()
        if item["type"] == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            events = [self.event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                      self.event("response.content_part.done", **where, content_index=0, part=part)]
            item = {**item, "status": status, "content": [part]}
        else:
            part = {"type": "summary_text", "text": text}
            events = [self.event("response.reasoning_summary_text.done", **where, summary_index=0, text=text),
                      self.event("response.reasoning_summary_part.done", **where, summary_index=0, part=part)]
            item = {**item, "summary": [part]}
        events.append(self.event("response.output_item.done", output_index=where["output_index"], item=item))
        self.items.append(item)
        self.open, self.parts = None, []
        return events

    def _call(self, call: Any) -> list[Event]:
        namespace, name = self.origin(call.function.name)
        arguments = json.dumps(call.function.arguments, ensure_ascii=False)
        item = {"id": new_id("fc"), "type": "function_call", "status": "in_progress",
                "call_id": call.id or new_id("call"), "name": name, "arguments": ""}
        if namespace is not None:
            item["namespace"] = namespace
        where = {"item_id": item["id"], "output_index": len(self.items)}
        done = {**item, "status": "completed", "arguments": arguments}
        self.items.append(done)
        return [
            self.event("response.output_item.added", output_index=where["output_index"], item=item),
            self.event("response.function_call_arguments.delta", **where, delta=arguments),
            self.event("response.function_call_arguments.done", **where, name=name, arguments=arguments),
            self.event("response.output_item.done", output_index=where["output_index"], item=done),
        ]
