"""The scheduler through the runtime, on tiny real models: keep-alive, eviction, the queue."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hearth.api.types import GenerateRequest, Options
from hearth.errors import InvalidRequest, ServerBusy
from hearth.runtime import Runtime
from hearth.scheduler import FairSemaphore, ResidentModel, choose_evictions
from tests.tinymodel import write_tiny_model


@pytest.fixture
def runtime(hearth_home: Path, tmp_path: Path):
    runtime = Runtime()
    for seed in (1, 2):
        path = write_tiny_model(tmp_path / f"m{seed}.gguf", seed=seed)
        runtime.create(f"m{seed}", from_path=path)
    yield runtime
    runtime.close()


def ask(model: str, keep_alive=None, n: int = 4) -> GenerateRequest:
    return GenerateRequest(model=model, prompt="hello world", keep_alive=keep_alive,
                           options=Options(num_predict=n, temperature=0))


def loaded(runtime: Runtime) -> list[str]:
    return sorted(m.name for m in runtime.ps().models)


def test_models_stay_loaded_for_keep_alive_then_go(runtime):
    runtime.scheduler.start_reaper(interval=0.05)
    list(runtime.generate(ask("m1", keep_alive="400ms")))
    assert loaded(runtime) == ["m1:latest"]
    expires = runtime.ps().models[0].expires_at
    assert expires is not None
    time.sleep(1.0)
    assert loaded(runtime) == []


def test_keep_alive_zero_unloads_at_once_and_negative_keeps_forever(runtime):
    list(runtime.generate(ask("m1", keep_alive=0)))
    assert loaded(runtime) == []
    list(runtime.generate(ask("m2", keep_alive=-1)))
    assert runtime.ps().models[0].expires_at.year > 2300


def test_max_loaded_models_evicts_the_least_recently_used_idle_model(runtime, monkeypatch):
    monkeypatch.setenv("HEARTH_MAX_LOADED_MODELS", "1")
    list(runtime.generate(ask("m1")))
    list(runtime.generate(ask("m2")))
    assert loaded(runtime) == ["m2:latest"]


def test_stop_unloads_a_model(runtime):
    list(runtime.generate(ask("m1")))
    assert runtime.stop("m1") == 1
    assert loaded(runtime) == []


def test_a_full_queue_refuses_at_once_and_the_waiting_request_runs_later(runtime, monkeypatch):
    monkeypatch.setenv("HEARTH_MAX_QUEUE", "1")
    holder = runtime.generate(ask("m1", n=50))
    next(holder)  # holds the model's turn while suspended
    finished = threading.Event()
    waiting = threading.Thread(target=lambda: (list(runtime.generate(ask("m1"))), finished.set()))
    waiting.start()
    deadline = time.monotonic() + 5
    while runtime.scheduler.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runtime.scheduler.waiting == 1
    with pytest.raises(ServerBusy) as refused:
        list(runtime.generate(ask("m1")))
    assert refused.value.status_code == 503 and refused.value.retry_after >= 1
    assert not finished.is_set()
    holder.close()
    waiting.join(timeout=10)
    assert finished.is_set()


def test_fair_lock_serves_in_arrival_order():
    lock = FairSemaphore()
    lock.acquire()
    order: list[int] = []
    threads = []
    for i in range(5):
        thread = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        thread.start()
        threads.append(thread)
        while lock.waiting < i + 2:  # wait until this thread holds its ticket
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3, 4]


def test_eviction_frees_least_recently_used_idle_models_until_the_new_one_fits():
    old = ResidentModel(key="a", name="a", loaded=None, size=300, last_used=1.0)
    recent = ResidentModel(key="b", name="b", loaded=None, size=300, last_used=2.0)
    assert choose_evictions(200, 1000, [old, recent], 2, 0) == []
    assert choose_evictions(1200, 1000, [recent, old], 2, 0) == [old]
    assert choose_evictions(1500, 1000, [recent, old], 2, 0) == [old, recent]
    assert choose_evictions(100, 1000, [recent, old], 2, 2) == [old]
    assert choose_evictions(10**12, 0, [old], 1, 0) == []  # unknown free memory: never guess


def test_suffix_needs_fill_in_the_middle_tokens(hearth_home, tmp_path):
    from tests.tinymodel import build_vocab

    tokens, _, _ = build_vocab()
    pre, suf, mid = tokens.index("\u2581the"), tokens.index("\u2581of"), tokens.index("\u2581and")
    fim = write_tiny_model(tmp_path / "fim.gguf", extra_metadata={
        "tokenizer.ggml.fim_pre_token_id": pre, "tokenizer.ggml.fim_suf_token_id": suf,
        "tokenizer.ggml.fim_mid_token_id": mid})
    plain = write_tiny_model(tmp_path / "plain.gguf")
    runtime = Runtime()
    runtime.create("fim", from_path=fim)
    runtime.create("plain", from_path=plain)
    request = GenerateRequest(model="fim", prompt="def add(a, b):", suffix="return c",
                              options=Options(num_predict=4, temperature=0))
    final = list(runtime.generate(request))[-1]
    assert final.done and final.prompt_eval_count >= 3
    with pytest.raises(InvalidRequest, match="suffix"):
        list(runtime.generate(request.model_copy(update={"model": "plain"})))
    runtime.close()
