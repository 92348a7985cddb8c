"""gpt-oss's harmony format: the reply is a run of messages, each a header and a body::

    <|channel|>analysis<|message|>The user asks...<|end|>
    <|start|>assistant<|channel|>final<|message|>It is sunny.<|return|>
    <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>

The analysis channel is reasoning, final (and commentary without a recipient, a preamble) is the
answer, and a message with a recipient ``to=functions.NAME`` (in the header before or after the
channel) is a call whose body is the JSON arguments. The prompt ends with
``<|start|>assistant``, so the reply begins with a header.
"""

from __future__ import annotations

import re

from hearth.reply.call_items import CallMaker
from hearth.reply.delta import ParsedCall, ReplyDelta
from hearth.reply.markers import first_marker, held_suffix, search_from

START = "<|start|>"
END = "<|end|>"
MESSAGE = "<|message|>"
CHANNEL = "<|channel|>"
CONSTRAIN = "<|constrain|>"
RETURN = "<|return|>"
CALL = "<|call|>"
_MARKERS = (START, END, MESSAGE, CHANNEL, CONSTRAIN, RETURN, CALL)
# What ends a body. A channel marker without <|end|><|start|> before it also starts a new
# message: models skip those two now and then.
_BODY_ENDS = (END, RETURN, CALL, START, CHANNEL)
_LONGEST_END = max(map(len, _BODY_ENDS))

_CHANNEL_NAME = re.compile(re.escape(CHANNEL) + r"\s*([\w-]+)")
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")
_HEADER_WORDS = re.compile(r"^\s*(?:assistant\b)?\s*(?:to=\S+\s*)?(?:(?:analysis|commentary|final)\b)?"
                           r"\s*(?:to=\S+\s*)?(?:json\b)?\s*")

BETWEEN, HEADER, BODY = "between", "header", "body"


class HarmonyReader:
    def __init__(self, maker: CallMaker | None, *, keep_thinking: bool, prompt_text: str = ""):
        self._maker = maker
        self._keep_thinking = keep_thinking
        self._state = BETWEEN
        self._channel = "final"
        self._recipient: str | None = None
        self._buffer = ""
        self._searched = 0
        self._resume(prompt_text)

    def _resume(self, prompt_text: str) -> None:
        """Start where the prompt stops: mid-header or inside a message body it opened."""
        at = prompt_text.rfind(START)
        if at < 0:
            return
        tail = prompt_text[at + len(START):]
        if any(mark in tail for mark in (END, RETURN, CALL)):
            return
        if tail.endswith(MESSAGE):
            self._channel, self._recipient = _read_header(tail[:-len(MESSAGE)])
            self._state = BODY
        elif CHANNEL in tail or "to=" in tail:
            self._state = HEADER
            self._buffer = tail

    def feed(self, text: str, final: bool = False) -> ReplyDelta:
        self._buffer += text
        delta = ReplyDelta()
        while self._buffer:
            if self._state == BETWEEN:
                if not self._between(final):
                    break
            elif self._state == HEADER:
                if not self._header(delta, final):
                    break
            elif not self._body(delta, final):
                break
        return delta

    def _between(self, final: bool) -> bool:
        # Blanks between messages are not part of any message.
        self._buffer = self._buffer.lstrip()
        if not self._buffer:
            return False
        if self._buffer.startswith(START):
            self._buffer = self._buffer[len(START):]
            self._state = HEADER
            return True
        if self._buffer.startswith(CHANNEL) or self._buffer.startswith("to="):
            self._state = HEADER
            return True
        for stray in (END, RETURN, CALL, MESSAGE, CONSTRAIN):
            if self._buffer.startswith(stray):
                self._buffer = self._buffer[len(stray):]
                return True
        if not final and any(opener.startswith(self._buffer) for opener in _MARKERS + ("to=",)):
            return False
        # Text with no header at all: an answer, shown as such.
        self._channel, self._recipient, self._state = "final", None, BODY
        self._searched = 0
        return True

    def _header(self, delta: ReplyDelta, final: bool) -> bool:
        at = self._buffer.find(MESSAGE)
        if at < 0:
            if final:
                # A header the reply ended in: whatever is not header words is kept as text.
                left = _HEADER_WORDS.sub("", _strip_markers(self._buffer), count=1)
                delta.content += left
                self._buffer = ""
            return False
        self._channel, self._recipient = _read_header(self._buffer[:at])
        self._buffer = self._buffer[at + len(MESSAGE):]
        self._state, self._searched = BODY, 0
        return True

    def _body(self, delta: ReplyDelta, final: bool) -> bool:
        found = first_marker(self._buffer, _BODY_ENDS, search_from(self._searched, _LONGEST_END))
        if self._recipient is not None:
            # A call's arguments are read whole.
            if found is None and not final:
                self._searched = len(self._buffer)
                return False
            end = found[0] if found else len(self._buffer)
            self._deliver_call(delta, self._buffer[:end])
        else:
            if found is None:
                safe = len(self._buffer) if final else (
                    len(self._buffer) - held_suffix(self._buffer, _MARKERS))
                self._say(delta, self._buffer[:safe])
                self._buffer = self._buffer[safe:]
                self._searched = 0
                return False
            self._say(delta, self._buffer[:found[0]])
        if found is None:
            self._buffer = ""
            return False
        at, marker = found
        self._searched = 0
        if marker == CHANNEL:
            self._buffer, self._state = self._buffer[at:], HEADER
        elif marker == START:
            self._buffer, self._state = self._buffer[at + len(marker):], HEADER
        else:
            self._buffer, self._state = self._buffer[at + len(marker):], BETWEEN
        return True

    def _say(self, delta: ReplyDelta, text: str) -> None:
        for stray in (MESSAGE, CONSTRAIN):  # never in a body the model meant to show
            text = text.replace(stray, "")
        if self._channel == "analysis":
            if self._keep_thinking:
                delta.thinking += text
        else:
            delta.content += text

    def _deliver_call(self, delta: ReplyDelta, body: str) -> None:
        call = self._call(body)
        if call is not None:
            delta.tool_calls.append(call)
        else:
            delta.content += body  # not a call of this request: the model's words, kept

    def _call(self, body: str) -> ParsedCall | None:
        if self._maker is None or self._recipient is None:
            return None
        name = self._recipient.removeprefix("functions.")
        return self._maker.call(name, body.strip())


def _read_header(header: str) -> tuple[str, str | None]:
    channel = _CHANNEL_NAME.search(header)
    recipient = _RECIPIENT.search(header)
    return (channel.group(1) if channel else "final"), (recipient.group(1) if recipient else None)


def _strip_markers(text: str) -> str:
    for marker in _MARKERS:
        text = text.replace(marker, " ")
    return text
