"""What keeping llama.cpp out of the caller's process costs: time to first token.

- ``hearth run MODEL PROMPT`` with the CLI's crash guard (the work in a forked child) against
  ``HEARTH_CRASH_GUARD=0`` (the work in the hearth process itself): time from the start of the
  process to its first byte of answer on stdout, and the whole process's wall time.
- The Python API's engine in a runner child process (what ``hearth.generate`` uses) against the
  engine in the caller's process (``Runtime()``): time from ``import hearth`` to the first
  streamed chunk, in a fresh interpreter each time.

Rounds alternate the order of the two sides. Informational: it always exits 0.

    .venv/bin/python benchmarks/engine_isolation.py [--rounds 10] [--model-file PATH | --home DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_model import BenchHome, hearth_command, hearth_env, median

PROMPT = "The sky is"
API_WORKER = """
import sys, time
started = time.perf_counter()
from hearth.api.types import GenerateRequest, Options
from hearth.runtime import Runtime
runtime = Runtime(isolated=sys.argv[2] == "runner")
request = GenerateRequest(model=sys.argv[1], prompt="The sky is",
                          options=Options(num_predict=8, temperature=0))
chunks = runtime.generate(request)
next(chunks)
first = time.perf_counter() - started
for _ in chunks:
    pass
runtime.close()
print(first)
"""


def time_cli(home: Path, model: str, guard: str) -> tuple[float, float]:
    """(seconds to the first byte of answer, seconds for the whole process)."""
    env = dict(hearth_env(home), HEARTH_CRASH_GUARD=guard)
    command = [hearth_command(), "run", model, PROMPT, "-o", "num_predict=8", "-o", "temperature=0"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    process.stdout.read(1)
    first = time.perf_counter() - started
    process.stdout.read()
    if process.wait() != 0:
        raise RuntimeError(f"hearth run failed with HEARTH_CRASH_GUARD={guard}")
    return first, time.perf_counter() - started


def time_api(home: Path, model: str, mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", API_WORKER, model, mode], env=hearth_env(home),
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the Python API worker failed ({mode}): {done.stderr[-500:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--model-file", help="GGUF to use (default: pull smollm2 into --home)")
    parser.add_argument("--home", help="HEARTH_HOME to use (default: a temp folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cli = {"1": [], "0": []}
    api = {"runner": [], "inproc": []}
    with BenchHome(args.home) as home:
        model, _ = home.ensure_model(args.model_file)
        for index in range(args.rounds):
            for guard in ("1", "0") if index % 2 == 0 else ("0", "1"):
                cli[guard].append(time_cli(home.path, model, guard))
            for mode in ("runner", "inproc") if index % 2 == 0 else ("inproc", "runner"):
                api[mode].append(time_api(home.path, model, mode))
            print(f"round {index + 1} done", file=sys.stderr)
    results = {
        "rounds": args.rounds, "model": model,
        "cli_first_byte_s": {"guarded": median([r[0] for r in cli["1"]]),
                             "unguarded": median([r[0] for r in cli["0"]])},
        "cli_wall_s": {"guarded": median([r[1] for r in cli["1"]]),
                       "unguarded": median([r[1] for r in cli["0"]])},
        "cli_first_byte_ratio": median([g[0] / u[0] for g, u in zip(cli["1"], cli["0"], strict=True)]),
        "api_first_chunk_s": {"runner": median(api["runner"]), "inproc": median(api["inproc"])},
        "api_first_chunk_ratio": median([r / i for r, i in zip(api["runner"], api["inproc"], strict=True)]),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    c, w, a = results["cli_first_byte_s"], results["cli_wall_s"], results["api_first_chunk_s"]
    print(f"engine isolation, {model}, {args.rounds} rounds interleaved (medians)")
    print(f"hearth run, first answer byte: guarded {c['guarded']:.3f}s, unguarded {c['unguarded']:.3f}s, "
          f"ratio {results['cli_first_byte_ratio']:.3f}")
    print(f"hearth run, whole process:     guarded {w['guarded']:.3f}s, unguarded {w['unguarded']:.3f}s")
    print(f"Python API, first chunk:       runner {a['runner']:.3f}s, in-process {a['inproc']:.3f}s, "
          f"ratio {results['api_first_chunk_ratio']:.3f} (+{a['runner'] - a['inproc']:.3f}s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:
        print(f"engine_isolation: {exc}", file=sys.stderr)
        sys.exit(0)
