"""Measure this machine's speed figures with llama.cpp itself, for ``hearth fit``'s predicted
tokens per second (``hearth.fit.speed``).

A child process (``python -m hearth.selftest.speed_probe SCRATCH THREADS [MODELS]``, so a crash
in native code kills it and not the caller) writes five synthetic Q8_0 models with the tiny-model
writer and runs each through hearth's own engine, the decoder ``hearth run`` uses, with hearth's
thread count:

    overhead-1    1 layer, 64 wide: its decode time is nearly all fixed cost per token
    overhead-12   12 layers, 64 wide: the same plus 11 layers of per-layer cost
    narrow        32 layers, 512 wide (134 MB): many short matrix rows for its bytes
    wide          4 layers, 2048 wide (165 MB): few long rows; both are four times a large L3
                  cache, so decoding them is bound by reading the weights from memory, and
                  reading a prompt by multiplying by them
    attention     8 layers, 512 wide with a 128-wide feed-forward (8 MB): 8 heads and small
                  matrices, so a long prompt's time is mostly attention

Each model is warmed up once (every page of its file touched), then reads a 256-token prompt and
generates 32 tokens three times (the attention model also reads a 1024-token prompt each time);
the fastest round counts (another process on a small machine only ever slows a round down).
From those, in seconds per token:

    attention rate         = extra attention FLOPs of the 1024-token prompt over the 256-token
                             one / its extra time (attention runs on the f16 KV cache, at its
                             own rate, whatever the weights' type)
    decode layer overhead  = (decode_12 - decode_1) / 11
    decode overhead        = decode_1 - decode layer overhead
    row overhead, bandwidth: the narrow and the wide model's decode times, less those overheads
                  and their attention, are rows x row overhead + bytes / bandwidth: two
                  equations for the two unknowns
    prompt                 likewise, with matrix FLOPs / compute in place of bytes / bandwidth

where bytes are the weights plus the KV cache read at the decode positions, rows the matrices'
output features and FLOPs 2 x the layers' matrix parameters (``speed.py``). The share of the
CPUs other processes used meanwhile is kept with the figures (``other_load``): a busy machine
gives low figures. It takes about 10 s on a 2-core machine; the
parent gives it ``TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.exits import signal_name
from hearth.fit.speed import REFERENCE_TYPE, MachineSpeed

TIMEOUT_SECONDS = 120.0
PROMPT_TOKENS = 256
DECODE_TOKENS = 32
ROUNDS = 3
LONG_PROMPT_TOKENS = 1024
PROBE_CONTEXT = 2048  # room for the long prompt (llama.cpp rounds a context up to 256)
# (name, layers, width, head size, feed-forward width, long prompt), written as Q8_0 (speed.py's
# reference type): two tiny models for the fixed costs, a narrow and a wide one for rows and
# bytes, and one of many heads and small matrices, whose prompts are mostly attention.
PROBE_MODELS = (
    ("overhead-1", 1, 64, 64, 128, 0),
    ("overhead-12", 12, 64, 64, 128, 0),
    ("narrow", 32, 512, 64, 2048, 0),
    ("wide", 4, 2048, 128, 4096, 0),
    ("attention", 8, 512, 64, 128, LONG_PROMPT_TOKENS),
)


@dataclass
class SpeedProbe:
    figures: MachineSpeed | None = None
    timings: list[dict[str, Any]] = field(default_factory=list)  # what the child measured
    build: dict[str, Any] = field(default_factory=dict)
    signal: str | None = None
    error: str | None = None
    path: Path | None = None  # where the figures were saved

    @property
    def ok(self) -> bool:
        return self.figures is not None and not self.error

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "signal": self.signal,
                "path": str(self.path) if self.path else None,
                "figures": self.figures.as_dict() if self.figures else None}


# -- the parent -----------------------------------------------------------------------------------


def measure_machine_speed(*, threads: int | None = None, timeout: float = TIMEOUT_SECONDS,
                          models: tuple[tuple[str, int, int, int, int, int], ...] = PROBE_MODELS,
                          ) -> SpeedProbe:
    """Run the probe child and turn its timings into figures (nothing is saved). ``models``
    are (name, layers, width, head size, feed-forward width, long prompt) of the five probe
    models, in ``PROBE_MODELS``'s order (tests pass smaller ones)."""
    from hearth import config
    from hearth.engine.runner_process import child_env
    from hearth.fit.machine_speed import current_identity

    threads = threads or config.num_thread()
    probe = SpeedProbe()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hearth-speed-probe-") as scratch:
        command = [sys.executable, "-m", "hearth.selftest.speed_probe", scratch, str(threads),
                   json.dumps([list(model) for model in models])]
        load = OtherLoad()
        try:
            with load:
                child = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                       env=child_env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            _read_reports(probe, exc.stdout)
            probe.error = f"the speed measurement did not finish within {timeout:.0f} s"
            return probe
    _read_reports(probe, child.stdout)
    if child.returncode < 0:
        probe.signal = signal_name(-child.returncode)
        probe.error = f"the engine crashed while measuring: killed by {probe.signal}"
        return probe
    if child.returncode != 0 or probe.error:
        last = (child.stderr.strip().splitlines() or ["no message"])[-1]
        probe.error = probe.error or f"the speed measurement failed (exit status {child.returncode}): {last}"
        return probe
    try:
        figures = derive_figures(probe.timings, [name for name, *_ in models])
    except ValueError as exc:
        probe.error = f"the speed measurement gave no usable figures: {exc}"
        return probe
    identity = current_identity(threads)
    probe.figures = MachineSpeed(
        **figures, threads=threads,
        hearth_version=identity["hearth_version"],
        llama_cpp_version=probe.build.get("llama_cpp_python") or identity["llama_cpp_version"],
        cpu_model=identity["cpu_model"],
        flash_attention=identity["flash_attention"] or "",
        kv_cache_type=identity["kv_cache_type"] or "",
        device="gpu" if probe.build.get("gpu_offload") else "cpu",
        measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - started, 1),
        other_load=round(load.share, 3),
        reference_type=REFERENCE_TYPE,
        details={"models": probe.timings},
    )
    return probe


def refresh_machine_speed(home: Path | None = None, *, threads: int | None = None,
                          timeout: float = TIMEOUT_SECONDS) -> SpeedProbe:
    """Measure and, when that worked, save the figures in ``HEARTH_HOME/machine-speed.json``."""
    from hearth.fit.machine_speed import write_machine_speed

    probe = measure_machine_speed(threads=threads, timeout=timeout)
    if probe.figures is not None:
        try:
            probe.path = write_machine_speed(probe.figures, home)
        except OSError as exc:
            probe.error = f"the figures could not be saved: {exc}"
    return probe


def _read_reports(probe: SpeedProbe, stdout: str | bytes | None) -> None:
    text = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout or ""
    for line in text.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        probe.build = message.get("build", probe.build)
        probe.error = message.get("error", probe.error)
        if "model" in message:
            probe.timings.append(message["model"])


class OtherLoad:
    """The share of all CPU time that processes other than this one's children used while the
    block ran (/proc/stat and getrusage; 0.0 where /proc is missing)."""

    def __init__(self) -> None:
        self.share = 0.0
        self._start: tuple[float, float, float] | None = None

    def __enter__(self) -> OtherLoad:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        if self._start is None or end is None:
            return
        idle, total, ours = (after - before for after, before in zip(end, self._start, strict=True))
        if total > 0:
            self.share = max(0.0, min(1.0, (total - idle - ours) / total))

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        import os
        import resource

        try:
            with open("/proc/stat") as stat:
                fields = [int(x) for x in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle / tick, sum(fields) / tick, usage.ru_utime + usage.ru_stime


def derive_figures(timings: list[dict[str, Any]], names: list[str] | None = None) -> dict[str, float]:
    """The figures ``MachineSpeed`` holds, from the probe models' timings (``names``: the
    one-layer, the many-layer, the narrow, the wide and the attention model; see the module
    docstring). Raises ValueError when a model is missing or the larger models were not slower
    than the tiny ones."""
    by_name = {timing.get("name"): timing for timing in timings}
    names = names or [model[0] for model in PROBE_MODELS]
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"no timings for {', '.join(missing)}")
    one, many, narrow, wide, attention = (by_name[name] for name in names)
    extra_layers = many["n_layer"] - one["n_layer"]
    if extra_layers <= 0:
        raise ValueError("the second model must have more layers than the first")
    extra_attention = attention["long_prompt_attention_flops"] - attention["prompt_attention_flops"]
    extra_seconds = attention["long_prompt_s"] - attention["prompt_s"]
    if extra_attention <= 0 or extra_seconds <= 0:
        raise ValueError("the long prompt was not slower per token than the short one")
    attention_rate = extra_attention / extra_seconds
    figures: dict[str, float] = {"attention_flops_per_s": attention_rate}
    for kind, work, rate in (("decode", "read_bytes", "bandwidth_bytes_per_s"),
                             ("prompt", "prompt_flops", "compute_flops_per_s")):
        per_layer = max(0.0, (many[f"{kind}_s"] - one[f"{kind}_s"]) / extra_layers)
        fixed = max(0.0, one[f"{kind}_s"] - one["n_layer"] * per_layer)
        # What the two large models spend beyond the fixed costs and their attention:
        # rows x row cost + work / rate.
        equations = [(model[f"{kind}_rows"], model[work],
                      model[f"{kind}_s"] - fixed - model["n_layer"] * per_layer
                      - model[f"{kind}_attention_flops"] / attention_rate)
                     for model in (narrow, wide)]
        row_cost, rate_value = _solve(equations)
        if rate_value <= 0:
            raise ValueError(f"the large models were not slower than the small ones ({kind})")
        figures.update({f"{kind}_overhead_s": fixed, f"{kind}_layer_overhead_s": per_layer,
                        f"{kind}_row_overhead_s": row_cost, rate: rate_value})
    return figures


def _solve(equations: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(row cost, rate) with rows x cost + work / rate = seconds for both (rows, work, seconds);
    without a positive row cost, the rate alone fitted to both (least squares)."""
    (r1, w1, t1), (r2, w2, t2) = equations
    det = r1 * w2 - r2 * w1
    if det:
        cost, inverse = (t1 * w2 - t2 * w1) / det, (r1 * t2 - r2 * t1) / det
        if cost >= 0 and inverse > 0:
            return cost, 1.0 / inverse
    inverse = (w1 * t1 + w2 * t2) / (w1 * w1 + w2 * w2)
    return 0.0, (1.0 / inverse if inverse > 0 else 0.0)


# -- the child ------------------------------------------------------------------------------------


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def write_probe_models(folder: Path, models: Any = PROBE_MODELS) -> list[tuple[str, Path]]:
    from hearth.selftest.tiny_model import write_tiny_model

    written = []
    for name, layers, width, head_dim, n_ff, *_long in models:
        path = write_tiny_model(folder / f"{name}.gguf", n_layers=layers, n_embd=width,
                                head_dim=head_dim, n_ff=n_ff, file_type=REFERENCE_TYPE,
                                context_length=PROBE_CONTEXT,
                                name=f"hearth-speed-{name}", repeat_layers=True)
        written.append((name, path))
    return written


def time_model(name: str, path: Path, threads: int, long_prompt: int = 0) -> dict[str, Any]:
    """Fastest of ``ROUNDS`` rounds of seconds per decoded and per prompt token, with the bytes,
    rows and FLOPs ``derive_figures`` needs; with ``long_prompt``, each round also reads a prompt
    of that many tokens (the attention model: its longer attention is the difference)."""
    from hearth.api.types import Options
    from hearth.engine.factory import open_engine
    from hearth.engine.settings import LoadSettings, SamplingSettings, attention_settings
    from hearth.fit.shape import shape_from_gguf
    from hearth.fit.speed import (
        attention_flops,
        decode_attended_cells,
        matrix_parameters,
        matrix_rows,
        prompt_attended_cells,
    )
    from hearth.gguf import read_gguf

    info = read_gguf(path)
    shape = shape_from_gguf(info)
    context = min(PROBE_CONTEXT, info.context_length or PROBE_CONTEXT)
    # hearth's defaults (HEARTH_FLASH_ATTENTION, HEARTH_KV_CACHE_TYPE), as a load without options.
    attention = attention_settings(Options())
    engine = open_engine(path, LoadSettings(num_ctx=context, num_thread=threads, **attention),
                         isolated=False)
    # Ordinary word pieces (after the control and byte tokens), a different first token each
    # time so no prompt reuses another's cached one.
    first_word, words = 300, max(1, min(shape.n_vocab, 600) - 300)

    def read(length: int, offset: int, num_predict: int) -> Any:
        tokens = [first_word + (offset + i * 7) % words for i in range(length)]
        stats = None
        for chunk in engine.generate(tokens, SamplingSettings(num_predict=num_predict, temperature=0.0, seed=1)):
            stats = chunk.stats or stats
        if stats is None or not stats.prompt_evaluated or stats.prompt_eval_ns <= 0:
            raise RuntimeError(f"{name}: the engine reported no timings")
        return stats

    decode, prompt, long = [], [], []
    try:
        read(16, 0, 4)  # the warm-up: every page of the weights read once
        for round_index in range(1, ROUNDS + 1):
            stats = read(PROMPT_TOKENS, round_index * 31, DECODE_TOKENS)
            if stats.eval_count and stats.eval_ns > 0:
                decode.append(stats.eval_ns / 1e9 / stats.eval_count)
            prompt.append(stats.prompt_eval_ns / 1e9 / stats.prompt_evaluated)
            if long_prompt:
                stats = read(long_prompt, round_index * 31 + 17, 1)
                long.append(stats.prompt_eval_ns / 1e9 / stats.prompt_evaluated)
    finally:
        engine.close()
    if not decode:
        raise RuntimeError(f"{name}: the engine reported no decode timings")
    decode_position = PROMPT_TOKENS + DECODE_TOKENS / 2
    timing = {
        "name": name,
        "n_layer": shape.n_layer,
        "n_embd": shape.n_embd,
        "file_bytes": info.file_size,
        "read_bytes": info.file_size + shape.kv_bytes_per_token * decode_position,
        "decode_rows": matrix_rows(shape),
        "prompt_rows": matrix_rows(shape, output=False),
        "prompt_flops": 2.0 * matrix_parameters(shape),
        "prompt_attention_flops": attention_flops(shape, prompt_attended_cells(PROMPT_TOKENS)),
        "decode_attention_flops": attention_flops(shape, decode_attended_cells(round(decode_position))),
        "decode_s": min(decode),
        "prompt_s": min(prompt),
        "decode_rounds_s": decode,
        "prompt_rounds_s": prompt,
    }
    if long:
        timing.update({"long_prompt_tokens": long_prompt, "long_prompt_s": min(long),
                       "long_prompt_attention_flops": attention_flops(shape, prompt_attended_cells(long_prompt)),
                       "long_prompt_rounds_s": long})
    return timing


def main(argv: list[str]) -> int:
    from hearth.engine.build_info import read_build_info
    from hearth.errors import HearthError

    scratch, threads = Path(argv[0]), int(argv[1])
    models = json.loads(argv[2]) if len(argv) > 2 else PROBE_MODELS
    emit({"build": read_build_info()})
    try:
        for (name, path), model in zip(write_probe_models(scratch, models), models, strict=True):
            emit({"model": time_model(name, path, threads, long_prompt=model[5] if len(model) > 5 else 0)})
    except (HearthError, RuntimeError) as exc:
        emit({"error": getattr(exc, "message", str(exc))})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
