"""The part of the parser that takes calls out of the answer text, for every family alike.

A family (``CallFormat``) says where a call could open in the text so far and gives a reader
for it; the reader says when the call is complete and what it was. This module does the rest:
text that cannot open a call goes out at once as content, text that might waits, blanks around
calls are dropped, and a reader that finds no call after all hands its text back as content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hearth.reply.delta import ParsedCall
from hearth.reply.markers import held_suffix

BLANKS = " \t\r\n"


@dataclass(frozen=True)
class Read:
    """A reader's verdict on the text from its opener: the first ``length`` characters were
    ``calls``, or (``calls`` None) were not a call and are content."""

    length: int
    calls: list[ParsedCall] | None


class CallReader(Protocol):
    def read(self, text: str, final: bool) -> Read | None:
        """``text`` starts at the opener and grows between calls; None means "not yet".
        With ``final`` (the reply has ended) it always answers."""


class CallFormat(Protocol):
    separators: str  # what may stand between two calls and is not content

    def find(self, text: str) -> tuple[int, CallReader | None]:
        """``(i, reader)``: a call opens at ``i``. ``(i, None)``: no call opens before ``i``,
        and ``text[i:]`` might still become the start of one."""


def earliest(*found: tuple[int, CallReader | None]) -> tuple[int, CallReader | None]:
    """Combine the answers of several kinds of opener: a call wins only if it opens before any
    undecided text."""
    undecided = min((index for index, reader in found if reader is None), default=None)
    opened = [item for item in found if item[1] is not None]
    if opened:
        first = min(opened, key=lambda item: item[0])
        if undecided is None or first[0] < undecided:
            return first
    return (undecided if undecided is not None else 0), None


class CallStage:
    def __init__(self, call_format: CallFormat) -> None:
        self._format = call_format
        self._buffer = ""
        self._reader: CallReader | None = None
        self._space_before = ""  # blanks ahead of an opener: dropped if a call follows
        self._after_call = False

    def feed(self, text: str, final: bool = False) -> tuple[str, list[ParsedCall]]:
        self._buffer += text
        content: list[str] = []
        calls: list[ParsedCall] = []
        while self._buffer:
            if self._reader is not None:
                read = self._reader.read(self._buffer, final)
                if read is None:
                    break
                self._reader = None
                taken, self._buffer = self._buffer[:read.length], self._buffer[read.length:]
                if read.calls:
                    calls += read.calls
                    self._after_call = True
                else:
                    content.append(self._space_before + taken)
                self._space_before = ""
                continue
            if self._after_call:
                self._buffer = self._buffer.lstrip(self._format.separators)
                if not self._buffer:
                    break
                self._after_call = False
            start, reader = self._format.find(self._buffer)
            if reader is not None:
                before = self._buffer[:start]
                kept = before.rstrip()
                content.append(kept)
                self._space_before = before[len(kept):]
                self._buffer = self._buffer[start:]
                self._reader = reader
                continue
            if final:
                content.append(self._buffer)
                self._buffer = ""
                break
            # Blanks at the end wait too: they are layout if a call comes next.
            kept = len(self._buffer[:start].rstrip())
            content.append(self._buffer[:kept])
            self._buffer = self._buffer[kept:]
            break
        return "".join(content), calls


def literal_opener(text: str, opener: str) -> tuple[int, bool]:
    """``(i, True)`` where ``opener`` occurs in ``text``; else ``(i, False)`` with ``text[i:]``
    the part that could be its beginning."""
    at = text.find(opener)
    if at >= 0:
        return at, True
    return len(text) - held_suffix(text, (opener,)), False
