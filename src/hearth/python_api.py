"""``hearth.generate`` and ``hearth.chat``: the Python API, same types as the server.

Catalog models are pulled on first use, like ``hearth run``. One runtime is kept per process
so that repeated calls reuse the loaded model; calls from several threads run concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from hearth.api.streams import join_stream
from hearth.api.types import (
    ChatRequest,
    ChatResponse,
    GenerateRequest,
    GenerateResponse,
    Message,
    Options,
)
from hearth.runtime import Runtime

_runtime: Runtime | None = None
_lock = threading.Lock()  # creating the runtime
_pull_lock = threading.Lock()  # two threads asking for a missing model pull it once


def _get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            # Models run in a runner child process: a crash in llama.cpp raises EngineError here
            # instead of killing the caller's program. Requests decode together up to
            # HEARTH_NUM_PARALLEL, as in the server, so a stream left half-read does not block
            # the next call.
            from hearth import config

            _runtime = Runtime(isolated=True, num_parallel=config.num_parallel())
        return _runtime


def _options(options: Options | dict[str, Any] | None, extra: dict[str, Any]) -> Options:
    base = options if isinstance(options, Options) else Options(**(options or {}))
    return Options(**extra).merged_over(base) if extra else base


def generate(
    model: str,
    prompt: str,
    *,
    stream: bool = False,
    system: str | None = None,
    format: str | dict[str, Any] | None = None,
    raw: bool = False,
    think: bool | str | None = None,
    options: Options | dict[str, Any] | None = None,
    **option_values: Any,
) -> GenerateResponse | Iterator[GenerateResponse]:
    """Complete ``prompt`` with ``model``. Keyword options are Ollama's (temperature=0, seed=1, ...).

    ``think`` (True/False, or "low"/"medium"/"high" for models that take an effort) asks a
    reasoning model to think first; its reasoning is in ``.thinking``, apart from ``.response``.
    Returns the final ``GenerateResponse`` (``.response`` holds the text), or an iterator of
    chunks when ``stream=True``.
    """
    runtime = _get_runtime()
    request = GenerateRequest(model=model, prompt=prompt, system=system, format=format, raw=raw,
                              think=think, options=_options(options, option_values), stream=stream)
    with _pull_lock:
        runtime.ensure_model(model)
    chunks = runtime.generate(request)
    return chunks if stream else join_stream(chunks)


def chat(
    model: str,
    messages: list[dict[str, Any] | Message],
    *,
    stream: bool = False,
    format: str | dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    think: bool | str | None = None,
    options: Options | dict[str, Any] | None = None,
    **option_values: Any,
) -> ChatResponse | Iterator[ChatResponse]:
    """Answer a conversation. ``messages`` are ``{"role": ..., "content": ...}`` dicts.

    ``tools`` are OpenAI-style function definitions; the calls the model makes come back parsed
    in ``.message.tool_calls`` (``tool_choice``: "auto", "none", "required" or
    ``{"name": ...}``). ``think`` (True/False, or "low"/"medium"/"high") asks a reasoning model to
    think first; its reasoning is in ``.message.thinking``, apart from ``.message.content``.
    Returns the final ``ChatResponse`` (``.message.content`` holds the answer), or an iterator
    of chunks when ``stream=True``.
    """
    runtime = _get_runtime()
    parsed = [m if isinstance(m, Message) else Message(**m) for m in messages]
    request = ChatRequest(model=model, messages=parsed, format=format, tools=tools, tool_choice=tool_choice,
                          think=think, options=_options(options, option_values), stream=stream)
    with _pull_lock:
        runtime.ensure_model(model)
    chunks = runtime.chat(request)
    return chunks if stream else join_stream(chunks)
