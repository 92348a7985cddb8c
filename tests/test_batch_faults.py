"""The batch decoder under failure and unfair load, on a tiny real model in this process: a
failed ``llama_decode`` leaves no half-read prompt behind for the cache to reuse, and a long
prompt does not hold back a short one that arrived beside it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hearth.engine.batch import PREFILL_BUDGET, BatchDecoder
from hearth.engine.jobs import Event, Job
from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.errors import EngineError
from tests.tinymodel import write_tiny_model

PROMPT = " ".join(["people know time and water"] * 12)


def answer(engine: LocalBatchEngine, prompt: str, num_predict: int = 12) -> tuple[str, object]:
    pieces, final = [], None
    for chunk in engine.generate(engine.vocab.tokenize(prompt),
                                 SamplingSettings(temperature=0, num_predict=num_predict)):
        pieces.append(chunk.text)
        final = chunk
    return "".join(pieces), final


def test_a_failed_decode_leaves_nothing_for_the_cache_to_reuse(tiny_model: Path) -> None:
    with LocalBatchEngineClosing(tiny_model, LoadSettings(num_ctx=256, num_batch=16, num_thread=2)) as clean:
        expected, _ = answer(clean, PROMPT)
    with LocalBatchEngineClosing(tiny_model, LoadSettings(num_ctx=256, num_batch=16, num_thread=2)) as engine:
        real_decode = engine.decoder._decode
        calls = {"n": 0}

        def fail_first() -> int:
            calls["n"] += 1
            return -1 if calls["n"] == 1 else real_decode()

        engine.decoder._decode = fail_first
        with pytest.raises(EngineError, match=r"llama_decode failed \(-1\)"):
            answer(engine, PROMPT)
        again, final = answer(engine, PROMPT)
    # The prompt chunks of the failed batch were never written to the KV cache: none of them may
    # be offered as cached, and the answer is the one a fresh engine gives.
    assert final.stats.prompt_cached == 0
    assert again == expected


def test_a_short_prompt_is_not_held_back_by_a_long_one(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "long.gguf", context_length=4096)
    decoder = BatchDecoder(model, LoadSettings(num_ctx=2048, num_batch=16, num_thread=2), 2)
    order: list[tuple[int, bool]] = []  # (request id, done) of every event, as they came
    finished = threading.Event()

    def emit(event: Event) -> None:
        order.append((event.request_id, event.done))
        if sum(done for _id, done in order) == 2:
            finished.set()

    long_tokens = decoder.vocab.tokenize(" ".join(["water and fire"] * 400))
    assert len(long_tokens) > 4 * PREFILL_BUDGET  # several steps of the prefill budget
    sampling = SamplingSettings(temperature=0, num_predict=2)
    # Both wait before the loop starts, so both are admitted at its first step: the long one
    # takes slot 0.
    decoder.submit(Job(1, long_tokens, sampling, None, emit))
    decoder.submit(Job(2, decoder.vocab.tokenize("the sky"), sampling, None, emit))
    loop = threading.Thread(target=decoder.run, daemon=True)
    loop.start()
    try:
        assert finished.wait(120)
    finally:
        decoder.close()
        loop.join(timeout=30)
    first = [request for request, _done in order]
    # Before the round robin, slot 0's long prompt took the whole budget of every step and the
    # short prompt's first token came only after the long one's.
    assert first.index(2) < first.index(1)


class LocalBatchEngineClosing:
    def __init__(self, path: Path, settings: LoadSettings, n_parallel: int = 1) -> None:
        self.engine = LocalBatchEngine(path, settings, n_parallel)

    def __enter__(self) -> LocalBatchEngine:
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.engine.close()
