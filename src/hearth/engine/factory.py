"""Which engine runs a model: the one place that knows the engine classes.

In-process (the CLI, inside its forked crash guard) or in a runner child process (the server
and the Python API, so that a crash in llama.cpp costs one model's requests, not the caller).
Embeddings follow the same rule.
"""

from __future__ import annotations

from pathlib import Path

from hearth.engine.base import EmbeddingEngine, Engine
from hearth.engine.settings import LoadSettings


def open_engine(path: Path, settings: LoadSettings, *, isolated: bool, n_parallel: int = 1,
                label: str | None = None) -> Engine:
    if isolated:
        from hearth.engine.runner_client import RunnerEngine

        return RunnerEngine(path, settings, n_parallel, label=label)
    from hearth.engine.local_engine import LocalBatchEngine

    return LocalBatchEngine(path, settings, n_parallel)


def open_embedding_engine(path: Path, settings: LoadSettings, *, isolated: bool,
                          pooling_type: int | None = None, label: str | None = None) -> EmbeddingEngine:
    if isolated:
        from hearth.engine.runner_client import RunnerEmbeddingEngine

        return RunnerEmbeddingEngine(path, settings, pooling_type=pooling_type, label=label)
    from hearth.engine.embedding import LlamaEmbeddingEngine

    return LlamaEmbeddingEngine.load(path, settings, pooling_type=pooling_type)
