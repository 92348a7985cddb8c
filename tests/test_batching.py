"""Continuous batching on a tiny real model: many requests in one llama.cpp batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.errors import ContextOverflow

PROMPTS = [" ".join(words) for words in (
    ["the", "sky"], ["once", "upon", "a", "time"], ["hello"] * 3, ["water", "and", "fire"] * 5,
    ["cat", "dog"] * 9, ["green", "tree"], ["people", "know", "time"] * 12, ["moon", "light", "sun"],
)]


def settings(num_batch: int = 16) -> LoadSettings:
    return LoadSettings(num_ctx=256, num_batch=num_batch, num_thread=2)


def answer(engine: LocalBatchEngine, prompt: str, **sampling) -> tuple[str, object]:
    sampling.setdefault("temperature", 0)
    sampling.setdefault("num_predict", 24)
    pieces, final = [], None
    for chunk in engine.generate(engine.vocab.tokenize(prompt), SamplingSettings(**sampling)):
        pieces.append(chunk.text)
        final = chunk
    return "".join(pieces), final


def answer_all_at_once(engine, jobs: list[tuple[str, dict]]) -> list[tuple[str, object]]:
    results: list = [None] * len(jobs)

    def work(i: int) -> None:
        results[i] = answer(engine, jobs[i][0], **jobs[i][1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture(scope="module")
def alone(tiny_model: Path) -> dict[str, str]:
    engine = LocalBatchEngine(tiny_model, settings(), n_parallel=1)
    try:
        return {prompt: answer(engine, prompt)[0] for prompt in PROMPTS}
    finally:
        engine.close()


@pytest.mark.parametrize("n_parallel", [4, 8])
def test_concurrent_requests_give_exactly_their_solo_answers(tiny_model, alone, n_parallel):
    engine = LocalBatchEngine(tiny_model, settings(), n_parallel=n_parallel)
    try:
        results = answer_all_at_once(engine, [(p, {}) for p in PROMPTS])
    finally:
        engine.close()
    for prompt, (text, final) in zip(PROMPTS, results, strict=True):
        assert final.done
        assert text == alone[prompt], prompt


def test_each_request_keeps_its_own_sampler(tiny_model):
    jobs = [(PROMPTS[0], {"temperature": 1.2, "seed": seed, "top_k": 0, "top_p": 1.0}) for seed in (1, 2, 3)]
    jobs += [(PROMPTS[1], {"temperature": 0, "num_predict": 5, "repeat_penalty": 1.5})]
    solo_engine = LocalBatchEngine(tiny_model, settings(), n_parallel=1)
    try:
        solo = [answer(solo_engine, prompt, **options)[0] for prompt, options in jobs]
    finally:
        solo_engine.close()
    engine = LocalBatchEngine(tiny_model, settings(), n_parallel=4)
    try:
        together = [text for text, _ in answer_all_at_once(engine, jobs)]
    finally:
        engine.close()
    assert together == solo
    assert len(set(solo[:3])) > 1  # different seeds really sample differently


def test_shared_prefix_is_reused_and_changes_nothing(tiny_model):
    base = " ".join(["people know time"] * 10)
    engine = LocalBatchEngine(tiny_model, settings(), n_parallel=2)
    try:
        answer(engine, base)
        warm_text, warm = answer(engine, base + " and the moon")
    finally:
        engine.close()
    cold_engine = LocalBatchEngine(tiny_model, settings(), n_parallel=2)
    try:
        cold_text, cold = answer(cold_engine, base + " and the moon")
    finally:
        cold_engine.close()
    assert warm.stats.prompt_cached >= 16 and warm.stats.prompt_cached % 16 == 0
    assert cold.stats.prompt_cached == 0
    assert warm.stats.prompt_evaluated < cold.stats.prompt_evaluated
    assert warm_text == cold_text


def test_a_dropped_request_frees_its_slot_within_a_step(tiny_model):
    engine = LocalBatchEngine(tiny_model, settings(), n_parallel=1)
    try:
        stream = engine.generate(engine.vocab.tokenize("the sky"), SamplingSettings(num_predict=200, temperature=0))
        next(stream)
        stream.close()  # the client went away
        deadline = time.monotonic() + 2
        while engine.decoder.slots[0].job is not None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert engine.decoder.slots[0].job is None
        started = time.monotonic()
        text, final = answer(engine, "hello", num_predict=3)
        assert final.done and time.monotonic() - started < 2
    finally:
        engine.close()


def test_cancel_flag_ends_the_stream_with_reason_cancelled(tiny_model):
    engine = LocalBatchEngine(tiny_model, settings(), n_parallel=1)
    flag = threading.Event()
    flag.set()  # the client is gone before the first step: nothing may be generated
    try:
        chunks = list(engine.generate(engine.vocab.tokenize("the sky"),
                                      SamplingSettings(num_predict=200, temperature=0), cancelled=flag.is_set))
        assert chunks[-1].done and chunks[-1].done_reason == "cancelled"
        assert chunks[-1].stats.eval_count == 0
        text, final = answer(engine, "hello", num_predict=3)  # the slot is free again
        assert final.done_reason == "length"
    finally:
        engine.close()


def test_a_prompt_that_cannot_fit_its_slot_is_refused(tiny_model):
    engine = LocalBatchEngine(tiny_model, settings(), n_parallel=2)
    try:
        with pytest.raises(ContextOverflow, match="context window"):
            answer(engine, " ".join(["water"] * (engine.context_length + 5)))
        text, final = answer(engine, "hello", num_predict=2)
        assert final.done
    finally:
        engine.close()


def test_prompt_chunks_larger_than_the_prefill_budget_from_several_requests(tiny_model):
    # num_batch 200 > the per-step prompt budget: whole chunks still fit the llama.cpp batch,
    # and two long prompts arriving together both complete with their solo answers.
    big = LoadSettings(num_ctx=256, num_batch=200, num_thread=2)
    prompts = [" ".join(["water and fire"] * 60), " ".join(["people know time"] * 55)]
    solo_engine = LocalBatchEngine(tiny_model, big, n_parallel=1)
    try:
        solo = [answer(solo_engine, p, num_predict=8)[0] for p in prompts]
    finally:
        solo_engine.close()
    engine = LocalBatchEngine(tiny_model, big, n_parallel=2)
    try:
        together = [text for text, _ in answer_all_at_once(engine, [(p, {"num_predict": 8}) for p in prompts])]
    finally:
        engine.close()
    assert together == solo
