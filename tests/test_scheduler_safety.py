"""The scheduler under pressure: a request cancelled while it waits leaves the line, an unload
that races a request never hands it a closed engine, and a model that cannot fit is refused
with the numbers instead of being loaded into an out-of-memory kill."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hearth.api.types import GenerateRequest, Options
from hearth.errors import NotEnoughMemory, RequestCancelled
from hearth.runtime import Runtime
from hearth.scheduler import FairSemaphore, Scheduler
from tests.tinymodel import write_tiny_model


def test_a_cancelled_waiter_leaves_the_line_and_the_next_one_gets_its_turn() -> None:
    lock = FairSemaphore(1)
    lock.acquire()
    gave_up = threading.Event()
    outcome: dict[str, object] = {}

    def impatient() -> None:
        try:
            lock.acquire(cancelled=gave_up.is_set)
            outcome["impatient"] = "acquired"
        except RequestCancelled as exc:
            outcome["impatient"] = exc

    def patient() -> None:
        lock.acquire()
        outcome["patient"] = "acquired"

    first = threading.Thread(target=impatient)
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=patient)
    second.start()
    time.sleep(0.1)
    assert lock.waiting == 3  # the holder and two in line
    gave_up.set()
    first.join(timeout=5)
    assert isinstance(outcome["impatient"], RequestCancelled)
    assert lock.waiting == 2
    lock.release()
    second.join(timeout=5)
    assert outcome["patient"] == "acquired"


class Engine:
    """A loaded object as the scheduler sees it (the scheduler never looks further)."""

    n_parallel = 1
    load_ns = 1

    def __init__(self) -> None:
        self.closed = False

    @property
    def alive(self) -> bool:
        return not self.closed

    def close(self) -> None:
        self.closed = True


def test_an_unload_between_finding_a_model_and_holding_it_loads_it_again() -> None:
    scheduler = Scheduler()
    engines: list[Engine] = []

    def load() -> Engine:
        engines.append(Engine())
        return engines[-1]

    with scheduler.use("k", "m", 1, load) as (engine, _):
        assert engine is engines[0]
    slot = scheduler.slots()[0]
    original = slot.lock.acquire

    def acquire_after_an_unload(cancelled=None) -> None:
        # `hearth stop` (or keep_alive 0) lands just before this request takes its turn.
        scheduler.stop(lambda s: True)
        original(cancelled)

    slot.lock.acquire = acquire_after_an_unload
    with scheduler.use("k", "m", 1, load) as (engine, _):
        assert not engine.closed and engine is engines[1]
    assert engines[0].closed
    scheduler.close()


def test_a_model_that_cannot_fit_is_refused_with_the_numbers(hearth_home: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime()
    try:
        runtime.create("m1", from_path=write_tiny_model(tmp_path / "m1.gguf"))
        # The machine cannot be made smaller, so its free memory is what is faked here.
        monkeypatch.setattr("hearth.scheduler.memory_available", lambda: 1 << 20)
        request = GenerateRequest(model="m1", prompt="hello", options=Options(num_predict=2, num_ctx=256))
        with pytest.raises(NotEnoughMemory, match=r"m1(:latest)? needs about [0-9.]+ MB but only 1 MB of memory is left") as caught:
            list(runtime.generate(request))
        assert caught.value.needed > caught.value.available == 1 << 20
        assert "quantization" in caught.value.message
        assert runtime.ps().models == []
    finally:
        runtime.close()


def test_the_weights_of_loaded_models_are_not_counted_as_free(hearth_home: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """MemAvailable counts the page cache of mmap'd weights as free: a second model must not be
    loaded into memory the first one's weights occupy."""
    runtime = Runtime()
    try:
        for seed in (1, 2):
            runtime.create(f"m{seed}", from_path=write_tiny_model(tmp_path / f"m{seed}.gguf", seed=seed))
        request = GenerateRequest(model="m1", prompt="hello", keep_alive=-1, options=Options(num_predict=2))
        list(runtime.generate(request))
        (resident,) = runtime.scheduler.slots()
        weights = resident.loaded.mapped_bytes
        assert weights > 0
        # Room for the second model's estimate, but only if the first one's weights were free.
        monkeypatch.setattr("hearth.scheduler.memory_available", lambda: resident.size + weights // 2)
        holding = threading.Event()
        release = threading.Event()

        def hold_m1() -> None:
            for _chunk in runtime.generate(GenerateRequest(model="m1", prompt="hello", keep_alive=-1,
                                                           options=Options(num_predict=200))):
                holding.set()
                release.wait(30)

        holder = threading.Thread(target=hold_m1)
        holder.start()
        assert holding.wait(30)
        try:
            with pytest.raises(NotEnoughMemory):
                list(runtime.generate(GenerateRequest(model="m2", prompt="hi", options=Options(num_predict=2))))
        finally:
            release.set()
            holder.join(timeout=30)
    finally:
        runtime.close()
