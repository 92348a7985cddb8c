"""The self-test's child process: report the engine's build, then decode a few tokens with
hearth's own decoder, so that a crash in native code kills this process and not the caller.

Run as ``python -m hearth.selftest.child MODEL TOKENS THREADS``. It writes JSON lines to stdout:
first ``{"build": {...}}`` (before any model is loaded, so a crash later still leaves the build
facts behind), then ``{"result": {...}}`` with the measured speeds, or ``{"error": "..."}``.

``HEARTH_SELF_TEST_CRASH`` (tests only) names a signal, e.g. ``SIGSEGV``, that this process
raises in itself where the decode would start: the real death the parent must report.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

PROMPT = "Once upon a time the sky was blue and the sun was light. The cat and the dog lived in"


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def crash_if_asked() -> None:
    name = os.environ.get("HEARTH_SELF_TEST_CRASH", "").strip().upper()
    if name:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
        os.kill(os.getpid(), getattr(signal, name))


def decode(model: Path, tokens: int, threads: int) -> dict:
    from hearth.engine.factory import open_engine
    from hearth.engine.settings import LoadSettings, SamplingSettings

    started = time.perf_counter()
    # The engine the CLI runs, in this process: a crash here is this child's death.
    engine = open_engine(model, LoadSettings(num_ctx=512, num_thread=threads), isolated=False)
    loaded = time.perf_counter()
    emit({"loaded": True})
    try:
        prompt = engine.vocab.tokenize(PROMPT, add_special=True, parse_special=False)
        crash_if_asked()
        sampling = SamplingSettings(num_predict=tokens, temperature=0.0, seed=1)
        text, stats = "", None
        for chunk in engine.generate(prompt, sampling):
            text += chunk.text
            stats = chunk.stats or stats
    finally:
        engine.close()
    assert stats is not None
    return {
        "load_seconds": round(loaded - started, 3),
        "prompt_tokens": stats.prompt_evaluated,
        "prompt_tokens_per_second": _rate(stats.prompt_evaluated, stats.prompt_eval_ns),
        "tokens": stats.eval_count,
        "tokens_per_second": _rate(stats.eval_count, stats.eval_ns),
        "text": text[:200],
    }


def _rate(count: int, nanoseconds: int) -> float:
    return round(count / (nanoseconds / 1e9), 1) if nanoseconds > 0 else 0.0


def main(argv: list[str]) -> int:
    from hearth.engine.build_info import read_build_info
    from hearth.errors import HearthError

    model, tokens, threads = Path(argv[0]), int(argv[1]), int(argv[2])
    emit({"build": read_build_info()})
    try:
        emit({"result": decode(model, tokens, threads)})
    except HearthError as exc:
        emit({"error": exc.message})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
