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

# make(text, done=False, **timing) -> a GenerateResponse or ChatResponse
MakeResponse = Callable[..., Any]


def now() -> datetime:
    return datetime.now(timezone.utc)


def stream_responses(setup: PromptSetup, options: Options, tokens: list[int], fmt: Any,
                     started: int, load_ns: int, make: MakeResponse,
                     cancelled: Cancelled, dropped_messages: int = 0) -> Iterator[Any]:
    from hearth.engine.grammar import grammar_for_format
    from hearth.engine.settings import SamplingSettings

    sampling = SamplingSettings.from_options(options.merged_over(setup.parameters))
    # The random seed is chosen here, not in the engine, so the answer can say which it was.
    sampling = dataclasses.replace(sampling, seed=sampling.effective_seed())
    grammar = grammar_for_format(fmt)
    for chunk in setup.loaded.engine.generate(tokens, sampling, grammar=grammar, cancelled=cancelled):
        if not chunk.done:
            yield make(chunk.text)
            continue
        stats = chunk.stats
        assert stats is not None
        yield make(
            chunk.text,
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
        )
