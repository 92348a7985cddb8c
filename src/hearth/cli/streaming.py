"""Printing a stream of responses, its timings, and turning ``key=value`` flags into options."""

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
