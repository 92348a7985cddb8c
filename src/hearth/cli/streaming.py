"""Printing a stream of responses (the model's reasoning before its answer), its timings, and
turning ``key=value`` and ``--think`` flags into request values."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from hearth.errors import InvalidRequest


def parse_option_flags(pairs: list[str] | None) -> dict[str, Any]:
    """``--option temperature=0 --option stop=###`` into typed option values."""
    from hearth.modelfile import parse_parameter

    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"--option expects KEY=VALUE, not '{pair}'")
        key = key.strip()
        parsed = parse_parameter(key, value.strip())
        if key == "stop":
            values.setdefault("stop", []).extend(parsed)
        else:
            values[key] = parsed
    return values


def stream_to_stdout(chunks: Iterable[Any], text_of) -> Any:
    """Write each chunk's text as it arrives; return the final chunk (with its timings)."""
    last = None
    out = sys.stdout
    for chunk in chunks:
        text = text_of(chunk)
        if text:
            out.write(text)
            out.flush()
        last = chunk
    return last


# Ollama's words around the reasoning, so that what people already match on keeps working.
THINKING_OPENS = "Thinking..."
THINKING_CLOSES = "...done thinking."
THINK_LEVELS = ("low", "medium", "high")


def parse_think(text: str | None) -> bool | str:
    """``--think``'s value: bare (None) or "true" is on, "false" off, or an effort for models
    that take one (gpt-oss)."""
    word = (text or "true").strip().lower()
    if word in ("true", "false"):
        return word == "true"
    if word in THINK_LEVELS:
        return word
    raise InvalidRequest(f"--think takes true, false, low, medium or high, not '{text}'")


def shows_thinking(think: bool | str | None, hide: bool, out: Any = None) -> bool:
    """Whether the reasoning is printed: never with --hidethinking; when asked for (--think);
    and, when nothing was asked (a model that thinks by default), on a terminal only, so that
    a pipe gets the answer alone."""
    if hide or think is False:
        return False
    if think is not None:
        return True
    stream = out or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


class ReplyWriter:
    """Writes a streamed reply to stdout as it arrives: the model's reasoning first, dimmed
    between "Thinking..." and "...done thinking." (plain words when stdout is not a terminal),
    then the answer. With ``show_thinking`` off the reasoning is left out."""

    def __init__(self, show_thinking: bool, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.show_thinking = show_thinking
        self.in_thinking = False
        self.thought = False  # a thinking section was closed: trim the answer's leading newlines
        self.last = ""

    def write(self, thinking: str | None, content: str | None) -> None:
        from hearth.cli.output import dimmed

        if thinking and self.show_thinking:
            if not self.in_thinking:
                self._put(dimmed(THINKING_OPENS, self.out) + "\n")
                self.in_thinking = True
                thinking = thinking.lstrip("\n")
            if thinking:
                self._put(dimmed(thinking, self.out), thinking)
        if content:
            self.close_thinking()
            if self.thought:
                content = content.lstrip("\n")
                self.thought = not content
            if content:
                self._put(content)

    def close_thinking(self, answer_follows: bool = True) -> None:
        """End the thinking section, if one is open: the answer starts, or the reply ended
        (cut short while thinking), when the caller's own newline ends the output."""
        from hearth.cli.output import dimmed

        if not self.in_thinking:
            return
        self.in_thinking = False
        self.thought = True
        before = "" if self.last.endswith("\n") else "\n"
        self._put(before + dimmed(THINKING_CLOSES, self.out) + ("\n\n" if answer_follows else ""))

    def _put(self, text: str, shown: str | None = None) -> None:
        self.out.write(text)
        self.out.flush()
        self.last = shown if shown is not None else text


def write_reply(chunks: Iterable[Any], writer: ReplyWriter) -> Any:
    """Write each chat chunk's reasoning and answer as it arrives; return the final chunk."""
    last = None
    for chunk in chunks:
        writer.write(chunk.message.thinking, chunk.message.content)
        last = chunk
    writer.close_thinking(answer_follows=False)
    return last


def print_timings(final: Any) -> None:
    if final is None:
        return

    def seconds(ns: int | None) -> str:
        return f"{(ns or 0) / 1e9:.3f}s"

    def rate(count: int | None, ns: int | None) -> str:
        return f"{(count or 0) / (ns / 1e9):.2f} tokens/s" if ns else "n/a"

    lines = [
        ("total duration", seconds(final.total_duration)),
        ("load duration", seconds(final.load_duration)),
        ("prompt eval count", f"{final.prompt_eval_count or 0} token(s)"),
    ]
    if final.prompt_cache_count:
        lines.append(("prompt cached", f"{final.prompt_cache_count} token(s)"))
    lines += [
        ("prompt eval duration", seconds(final.prompt_eval_duration)),
        ("prompt eval rate", rate(final.prompt_eval_count, final.prompt_eval_duration)),
        ("eval count", f"{final.eval_count or 0} token(s)"),
        ("eval duration", seconds(final.eval_duration)),
        ("eval rate", rate(final.eval_count, final.eval_duration)),
    ]
    if final.done_reason == "length":
        lines.append(("stopped", "token limit or context window reached (output truncated)"))
    for key, value in lines:
        print(f"{key + ':':<22}{value}", file=sys.stderr)


def parse_adapter_flags(values: list[str] | None) -> tuple[tuple[str, float], ...]:
    """``--adapter FILE[:SCALE]`` flags as (path, scale) pairs; the scale defaults to 1."""
    adapters = []
    for value in values or []:
        path, sep, scale_text = value.rpartition(":")
        if sep and path:
            try:
                scale = float(scale_text)
            except ValueError:
                path, scale = value, 1.0
        else:
            path, scale = value, 1.0
        adapters.append((path, scale))
    return tuple(adapters)
