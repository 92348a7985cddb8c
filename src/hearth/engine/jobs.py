"""What the batching decoder keeps per request and per sequence: a ``Job`` (one request: its
prompt, sampling, how far it got, its stats), the ``Event``s it emits (text, then a last one
with ``done``), and a ``Slot`` (one sequence of the llama.cpp context and the prompt tokens its
KV cache can still offer a later request)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.engine.chunks import GenerationStats
from hearth.engine.settings import SamplingSettings
from hearth.engine.stops import StopMatcher


@dataclass
class Event:
    """What a request receives: text, then a final event with ``done`` and its stats."""

    request_id: int
    text: str = ""
    done: bool = False
    reason: str | None = None
    stats: GenerationStats | None = None
    error: str | None = None


@dataclass
class Job:
    request_id: int
    tokens: list[int]
    sampling: SamplingSettings
    grammar: Any
    emit: Callable[[Event], None]
    # In-process callers hand their cancel flag over directly; runners get a cancel message.
    should_stop: Callable[[], bool] | None = None
    submitted_ns: int = field(default_factory=time.perf_counter_ns)
    # filled in by the decoder
    slot: int = -1
    fed: int = 0  # prompt tokens already in the KV cache
    generated: list[int] = field(default_factory=list)
    sampler: Any = None
    matcher: StopMatcher | None = None
    decoder: Any = None
    logits_index: int = -1
    limit: int = 0
    first_token_ns: int = 0
    stats: GenerationStats = field(default_factory=GenerationStats)
    cancelled: bool = False


@dataclass
class Slot:
    index: int
    job: Job | None = None
    # Tokens whose KV entries are valid and were computed as aligned prompt chunks.
    reusable: list[int] = field(default_factory=list)
    last_used: float = 0.0
