"""Reasoning between think tags (Qwen3, DeepSeek-R1, QwQ, Magistral's [THINK]).

A reasoning model's template may open the tag itself at the end of the prompt (DeepSeek-R1,
Qwen3 thinking templates end with ``<think>\\n``): the reply then starts inside the reasoning
and only its closing tag shows. Blanks right after either tag and before the closing one are
layout and are dropped.
"""

from __future__ import annotations

from hearth.reply.markers import first_marker, held_suffix
from hearth.reply.style import ReplyStyle

HARMONY_ANALYSIS = "<|channel|>analysis<|message|>"


def prompt_opens_thinking(style: ReplyStyle, prompt_text: str) -> bool:
    """Whether the rendered prompt ends inside an open reasoning block."""
    if style.thinking == "tags":
        return prompt_text.rstrip().endswith(style.think_open)
    if style.thinking == "harmony":
        return prompt_text.endswith(HARMONY_ANALYSIS)
    return False


class ThinkStage:
    """Splits text into (thinking, answer), in order, as it arrives."""

    def __init__(self, style: ReplyStyle, *, thinking: bool) -> None:
        self._open = style.think_open
        self._close = style.think_close
        self._thinking = thinking
        self._trim = thinking
        self._buffer = ""

    def feed(self, text: str, final: bool = False) -> tuple[str, str]:
        self._buffer += text
        thought: list[str] = []
        answer: list[str] = []
        while self._buffer:
            if self._trim:
                self._buffer = self._buffer.lstrip()
                if not self._buffer:
                    break
                self._trim = False
            if self._thinking:
                at = self._buffer.find(self._close)
                if at >= 0:
                    thought.append(self._buffer[:at].rstrip())
                    self._buffer = self._buffer[at + len(self._close):]
                    self._thinking, self._trim = False, True
                    continue
                if final:
                    thought.append(self._buffer.rstrip())
                    self._buffer = ""
                    break
                # Blanks at the end wait: they are dropped if the closing tag comes next.
                safe = len(self._buffer) - held_suffix(self._buffer, (self._close,))
                kept = len(self._buffer[:safe].rstrip())
                thought.append(self._buffer[:kept])
                self._buffer = self._buffer[kept:]
                break
            found = first_marker(self._buffer, (self._open, self._close))
            if found is not None:
                # A closing tag with no opening one (the template opened it and the prompt was
                # not passed in) is dropped like any marker.
                at, marker = found
                answer.append(self._buffer[:at])
                self._buffer = self._buffer[at + len(marker):]
                self._thinking, self._trim = marker == self._open, True
                continue
            safe = len(self._buffer) if final else (
                len(self._buffer) - held_suffix(self._buffer, (self._open, self._close)))
            answer.append(self._buffer[:safe])
            self._buffer = self._buffer[safe:]
            break
        return "".join(thought), "".join(answer)
