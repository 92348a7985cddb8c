"""A runner that hangs, stalls, ignores a cancel or loses its decoder thread ends its requests
with a clear error and counts as dead; a request that cannot run fails alone. The misbehaviour
is real (HEARTH_RUNNER_FAULT makes the runner child do it on purpose), not simulated here."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from hearth.engine.runner_client import RunnerEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.errors import EngineError, InvalidRequest

SETTINGS = LoadSettings(num_ctx=256, num_batch=16, num_thread=2)


def run_to_end(engine: RunnerEngine, prompt: str = "the sky", cancelled=None, **sampling) -> list:
    sampling.setdefault("temperature", 0)
    sampling.setdefault("num_predict", 16)
    tokens = engine.vocab.tokenize(prompt)
    return list(engine.generate(tokens, SamplingSettings(**sampling), cancelled=cancelled))


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie waiting to be reaped is gone for our purposes.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(") ", 1)[1].startswith("Z")


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch):
    def set_fault(fault: str, **env: str) -> None:
        monkeypatch.setenv("HEARTH_RUNNER_FAULT", fault)
        for key, value in env.items():
            monkeypatch.setenv(key, value)

    return set_fault


def test_a_load_that_hangs_is_stopped_at_the_load_timeout(tiny_model: Path, faulty) -> None:
    faulty("hang-load", HEARTH_LOAD_TIMEOUT="2s")
    started = time.monotonic()
    with pytest.raises(EngineError, match="did not finish loading .* within 2 s"):
        RunnerEngine(tiny_model, SETTINGS, 1, label="tiny")
    assert time.monotonic() - started < 30


def test_a_step_that_hangs_kills_the_runner_and_fails_its_request(tiny_model: Path, faulty) -> None:
    faulty("hang-step", HEARTH_RUNNER_TIMEOUT="2s")
    engine = RunnerEngine(tiny_model, SETTINGS, 1, label="tiny")
    try:
        with pytest.raises(EngineError, match="stopped responding .*stuck in one decode step"):
            run_to_end(engine)
        assert not engine.alive
        assert process_gone(engine.pid)
    finally:
        engine.close()


def test_a_dead_decoder_thread_is_a_dead_runner(tiny_model: Path, faulty) -> None:
    faulty("decoder-dies")
    engine = RunnerEngine(tiny_model, SETTINGS, 1, label="tiny")
    try:
        with pytest.raises(EngineError, match="runner stopped unexpectedly"):
            run_to_end(engine)
        deadline = time.monotonic() + 10
        while engine.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not engine.alive
    finally:
        engine.close()


def test_a_cancel_the_runner_ignores_kills_it_after_the_grace(tiny_model: Path, faulty) -> None:
    faulty("ignore-cancel", HEARTH_RUNNER_TIMEOUT="2s")
    engine = RunnerEngine(tiny_model, SETTINGS, 1, label="tiny")
    stop = threading.Event()
    try:
        seen = []
        started = time.monotonic()
        with pytest.raises(EngineError, match="did not let go of a cancelled request"):
            for chunk in engine.generate(engine.vocab.tokenize("the sky"),
                                         SamplingSettings(temperature=0, num_predict=200),
                                         cancelled=stop.is_set):
                seen.append(chunk)
                stop.set()  # the caller gives up after the first piece
        assert seen and time.monotonic() - started < 30
        assert not engine.alive
    finally:
        engine.close()


def test_a_failed_decode_fails_its_requests_and_the_runner_serves_on(tiny_model: Path, faulty) -> None:
    faulty("decode-error")
    engine = RunnerEngine(tiny_model, SETTINGS, 2, label="tiny")
    try:
        for _ in range(2):
            with pytest.raises(EngineError, match=r"llama_decode failed \(-3\)"):
                run_to_end(engine)
        assert engine.alive
    finally:
        engine.close()


def test_an_empty_prompt_fails_alone_and_the_model_keeps_working(tiny_model: Path) -> None:
    """Finding 11: zero tokens once killed the decoder thread and wedged the model."""
    engine = RunnerEngine(tiny_model, SETTINGS, 1, label="tiny")
    try:
        with pytest.raises((InvalidRequest, EngineError), match="prompt is empty"):
            list(engine.generate([], SamplingSettings(num_predict=4)))
        chunks = run_to_end(engine)
        assert chunks[-1].done and chunks[-1].done_reason in ("stop", "length")
    finally:
        engine.close()


def test_a_malformed_command_is_answered_and_the_runner_lives(tiny_model: Path) -> None:
    engine = RunnerEngine(tiny_model, SETTINGS, 1, label="tiny")
    try:
        with pytest.raises(EngineError, match="could not handle 'tokenize'"):
            engine.runner.request({"op": "tokenize", "id": engine.runner.next_id()})  # no text
        assert engine.alive
        assert run_to_end(engine)[-1].done
    finally:
        engine.close()


def test_the_tokenizer_runs_in_the_runner(tiny_model: Path) -> None:
    """The server process holds no llama.cpp vocabulary: tokenizing is a round trip."""
    engine = RunnerEngine(tiny_model, SETTINGS, 1, label="tiny")
    try:
        tokens = engine.vocab.tokenize("the sky is blue", add_special=False, parse_special=False)
        assert tokens and engine.vocab.detokenize(tokens).strip() == "the sky is blue"
        assert engine.vocab.size > 0 and engine.vocab.fill_in_middle("a", "b") is None
        with pytest.raises(InvalidRequest, match="lone UTF-16 surrogate"):
            engine.vocab.tokenize("bad \ud800 text")
    finally:
        engine.close()
