"""The engine contract: what the runtime and the scheduler may rely on, whichever engine runs a
model (a decoder thread in this process, a runner child process, an embedding context).

``Vocab`` turns text into tokens and back; ``Engine`` is a loaded model that generates;
``EmbeddingEngine`` one that embeds. ``factory.open_engine`` picks the implementation. The chunk
types an engine yields are in ``chunks.py`` and re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from hearth.engine.chunks import EngineChunk, GenerationStats
from hearth.engine.settings import LoadSettings, SamplingSettings

__all__ = ["EmbeddingEngine", "Engine", "EngineChunk", "GenerationStats", "LoadedEngine", "Vocab"]


class Vocab(Protocol):
    bos_text: str
    eos_text: str

    @property
    def size(self) -> int: ...
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]: ...
    def detokenize(self, tokens: list[int]) -> str: ...
    def fill_in_middle(self, prefix: str, suffix: str) -> list[int] | None: ...


class LoadedEngine(Protocol):
    """What the scheduler and ``hearth ps`` read of any loaded engine."""

    settings: LoadSettings
    n_parallel: int  # requests decoded together
    load_ns: int  # how long the load took
    pid: int | None  # the runner process, None when in this process

    @property
    def context_length(self) -> int: ...
    @property
    def alive(self) -> bool: ...  # False once it can take no more requests (a dead runner)
    def close(self) -> None: ...


class Engine(LoadedEngine, Protocol):
    vocab: Vocab

    def generate(self, tokens: list[int], sampling: SamplingSettings, *, grammar: str | dict[str, Any] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Iterator[EngineChunk]:
        """Text pieces, then one chunk with ``done`` and stats; raises ``ContextOverflow`` before
        the first chunk when the prompt does not fit, ``EngineError`` when the engine fails."""
        ...


class EmbeddingEngine(LoadedEngine, Protocol):
    def embed(self, texts: list[str], *, truncate: bool = True) -> tuple[list[list[float]], int]:
        """Normalized vectors, one per text, and the number of tokens read."""
        ...
