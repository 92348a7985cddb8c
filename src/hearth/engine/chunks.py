"""What an engine yields to the runtime: text pieces, then one final chunk with stats."""

from __future__ import annotations

from dataclasses import dataclass

from hearth.errors import EngineError


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    prompt_cached: int = 0
    prompt_eval_ns: int = 0
    eval_count: int = 0
    eval_ns: int = 0
    stop_sequence: str | None = None  # the stop string that ended the answer, if one did

    @property
    def prompt_evaluated(self) -> int:
        return self.prompt_tokens - self.prompt_cached


@dataclass
class EngineChunk:
    text: str
    done: bool = False
    done_reason: str | None = None
    stats: GenerationStats | None = None


def chunk_from_event(event) -> EngineChunk:
    """A decoder ``Event`` (in-process or decoded from a runner) as an ``EngineChunk``."""
    if event.error:
        raise EngineError(event.error)
    if not event.done:
        return EngineChunk(event.text)
    return EngineChunk(event.text, done=True, done_reason=event.reason, stats=event.stats)
