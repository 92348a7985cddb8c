"""Embeddings through llama.cpp's embedding mode (one normalized vector per input).

Generation has its own batching engine (``batch.py``); embeddings use llama-cpp-python's
``Llama`` opened with ``embedding=True`` and the model's pooling type (mean when the GGUF
names none), which is what Ollama returns too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hearth.engine.settings import LoadSettings
from hearth.errors import ContextOverflow, EngineError


class LlamaEmbeddingEngine:
    def __init__(self, llm: Any, settings: LoadSettings, load_ns: int) -> None:
        self._llm = llm
        self.settings = settings
        self.load_ns = load_ns
        self.n_parallel = 1
        self.pid = None
        self.alive = True

    @classmethod
    def load(cls, path: Path, settings: LoadSettings, pooling_type: int | None = None) -> LlamaEmbeddingEngine:
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

        started = time.perf_counter_ns()
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=settings.num_ctx,
                n_batch=max(settings.num_batch, settings.num_ctx),
                n_ubatch=max(settings.num_batch, settings.num_ctx),
                n_threads=settings.num_thread,
                n_threads_batch=settings.num_thread,
                n_gpu_layers=settings.num_gpu,
                use_mmap=settings.use_mmap,
                embedding=True,
                pooling_type=pooling_type if pooling_type else LLAMA_POOLING_TYPE_MEAN,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(f"llama.cpp could not load {path.name}: {exc}") from exc
        return cls(llm, settings, time.perf_counter_ns() - started)

    @property
    def context_length(self) -> int:
        # llama.cpp rounds the context up (to 256), but llama-cpp-python's token buffer keeps
        # the size asked for: the smaller one is the real limit.
        return min(self._llm.n_ctx(), self._llm.context_params.n_ctx)

    def embed(self, texts: list[str], *, truncate: bool = True) -> tuple[list[list[float]], int]:
        """Normalized embeddings, one per text, and the number of tokens read."""
        n_ctx = self.context_length
        inputs = []
        total = 0
        for text in texts:
            tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            if len(tokens) > n_ctx:
                if not truncate:
                    raise ContextOverflow(
                        f"an input is {len(tokens)} tokens but the context window holds {n_ctx}; "
                        "shorten it, raise num_ctx or allow truncate"
                    )
                tokens = tokens[: n_ctx - 1]
                text = self._llm.detokenize(tokens).decode("utf-8", errors="replace")
            total += len(tokens)
            inputs.append(text)
        try:
            vectors = self._llm.embed(inputs, normalize=True, truncate=True)
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"llama.cpp could not embed the input: {exc}") from exc
        return [list(map(float, v)) for v in vectors], total

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
