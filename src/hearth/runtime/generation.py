"""Engine chunks turned into wire responses: each text piece, then the last one with Ollama's
timings in nanoseconds (load, prompt eval count and duration, eval count and duration) and
``prompt_cache_count``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from hearth.api.types import Options

if TYPE_CHECKING:
    from hearth.runtime.loaded import Cancelled, PromptSetup

# make(delta or text, done=False, **timing) -> a GenerateResponse or ChatResponse
MakeResponse = Callable[..., Any]


def now() -> datetime:
    return datetime.now(timezone.utc)


def stream_responses(setup: PromptSetup, options: Options, tokens: list[int], fmt: Any,
                     started: int, load_ns: int, make: MakeResponse,
                     cancelled: Cancelled, dropped_messages: int = 0, *,
                     parser: Any = None, grammar: Any = None, keep_special: bool = False) -> Iterator[Any]:
    """``make(delta, done=False, **timing)`` gets a ``ReplyDelta``: the text as the model wrote
    it, or, with a ``parser`` (``hearth.reply``), split into answer, thinking and tool calls.
    ``grammar`` (a tool-call grammar) is used when the request has no ``format`` of its own."""
    from hearth.engine.grammar import grammar_for_format
    from hearth.engine.settings import SamplingSettings
    from hearth.reply import ReplyDelta

    sampling = SamplingSettings.from_options(options.merged_over(setup.parameters))
    # The random seed is chosen here, not in the engine, so the answer can say which it was.
    sampling = dataclasses.replace(sampling, seed=sampling.effective_seed(), keep_special=keep_special)
    grammar = grammar_for_format(fmt) or grammar
    for chunk in setup.loaded.engine.generate(tokens, sampling, grammar=grammar, cancelled=cancelled):
        delta = parser.feed(chunk.text) if parser is not None else ReplyDelta(content=chunk.text)
        if not chunk.done:
            if parser is None or delta.content or delta.thinking or delta.tool_calls:
                yield make(delta)
            continue
        if parser is not None:
            delta = joined(delta, parser.finish())
        stats = chunk.stats
        assert stats is not None
        yield make(
            delta,
            True,
            done_reason=chunk.done_reason,
            total_duration=time.perf_counter_ns() - started,
            load_duration=load_ns,
            prompt_eval_count=stats.prompt_evaluated,
            prompt_eval_duration=stats.prompt_eval_ns,
            prompt_cache_count=stats.prompt_cached,
            eval_count=stats.eval_count,
            eval_duration=stats.eval_ns,
            dropped_messages=dropped_messages or None,
            seed=sampling.seed,
            stop_sequence=stats.stop_sequence,
        )


def joined(first: Any, second: Any) -> Any:
    from hearth.reply import ReplyDelta

    return ReplyDelta(content=first.content + second.content, thinking=first.thinking + second.thinking,
                      tool_calls=list(first.tool_calls) + list(second.tool_calls))


def as_delta(piece: Any) -> Any:
    """A ``ReplyDelta`` for what ``make`` was given (plain text on the load and unload paths)."""
    from hearth.reply import ReplyDelta

    return ReplyDelta(content=piece) if isinstance(piece, str) else piece
