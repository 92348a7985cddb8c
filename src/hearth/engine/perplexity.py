"""Perplexity: how surprised a model is by a text (lower is better), for ``hearth quality``.

The text is cut into windows of ``n_ctx`` tokens; each window is evaluated once with logits
for every position, and every token after the first of its window is scored. The same token
windows are used for every model measured, so their numbers compare.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from hearth.errors import EngineError, InvalidRequest


@dataclass
class PerplexityResult:
    perplexity: float
    tokens_scored: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_scored / self.seconds if self.seconds else 0.0


def open_scorer(path: Path, n_ctx: int, threads: int):
    from llama_cpp import Llama

    try:
        return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=threads,
                     n_threads_batch=threads, logits_all=True, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise EngineError(f"llama.cpp could not load {path.name}: {exc}") from exc


def tokenize_text(llm, text: str) -> list[int]:
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


def perplexity_of_tokens(llm, tokens: list[int], n_ctx: int) -> PerplexityResult:
    import numpy as np

    if len(tokens) < 2:
        raise InvalidRequest("the text is too short to measure perplexity (fewer than 2 tokens)")
    total_nll = 0.0
    scored = 0
    started = time.perf_counter()
    for start in range(0, len(tokens) - 1, n_ctx):
        window = tokens[start : start + n_ctx]
        if len(window) < 2:
            break
        llm.reset()
        llm.eval(window)
        logits = np.asarray(llm.scores[: len(window) - 1], dtype=np.float64)
        peak = logits.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
        targets = np.asarray(window[1:])
        chosen = logits[np.arange(len(targets)), targets]
        total_nll += float((log_norm - chosen).sum())
        scored += len(targets)
    seconds = time.perf_counter() - started
    return PerplexityResult(math.exp(total_nll / scored), scored, seconds)


def default_text() -> str:
    from importlib import resources

    return resources.files("hearth.data").joinpath("alice-chapter-1.txt").read_text("utf-8")
