"""CLI start-up time: ``hearth --help`` and ``hearth list`` against ``python -c pass``.

Runs the installed console script (the ``hearth`` next to this interpreter) with a HEARTH_HOME
that holds the default model, interleaving the commands run by run, and reports medians. Then
``python -X importtime -m hearth list`` shows which imports cost the most.

    .venv/bin/python benchmarks/cli_startup.py [--runs 20] [--warmup 2] [--json]
        [--model-file PATH | --home DIR]

Informational: it always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_model import BenchHome, OtherLoad, hearth_command, hearth_env, median, wait_for_idle

TARGET_S = 0.30
# Modules that have no business on the `hearth list` / `hearth --help` path.
HEAVY = ("llama_cpp", "numpy", "pydantic", "jinja2", "fastapi", "uvicorn", "huggingface_hub",
         "gguf", "httpx", "requests", "pip")
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def commands() -> dict[str, list[str]]:
    hearth = hearth_command()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "hearth --help": [hearth, "--help"],
        "hearth list": [hearth, "list"],
    }


def startup_env(home: Path, pycache: Path | None) -> dict[str, str]:
    """HEARTH_HOME, plus a private bytecode cache where one is asked for.

    A normal install has its modules compiled (pip writes the .pyc files); an environment with
    PYTHONDONTWRITEBYTECODE=1 recompiles hearth's sources on every start instead. A private
    PYTHONPYCACHEPREFIX gives the installed behaviour without writing into the source tree.
    """
    env = hearth_env(home)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def time_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    with OtherLoad() as load:
        started = time.perf_counter()
        done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, check=False)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace').strip()[-300:]}")
    return elapsed, load.share


def import_costs(env: dict[str, str], repeats: int) -> list[dict]:
    """Median self and cumulative import time per module over ``repeats`` runs, biggest first."""
    samples: dict[str, dict] = {}
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "hearth", "list"],
                              env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, check=False)
        parsed = []
        for line in done.stderr.splitlines():
            match = IMPORT_LINE.match(line)
            if match:
                self_us, cumulative_us, indent, name = match.groups()
                parsed.append((int(self_us) / 1e6, int(cumulative_us) / 1e6, len(indent), name))
        # importtime prints a module after everything it imported, one level less indented.
        for index, (self_s, cumulative_s, depth, name) in enumerate(parsed):
            parent = next((p[3] for p in parsed[index + 1:] if p[2] < depth), "")
            entry = samples.setdefault(name, {"self": [], "cumulative": [], "parent": parent})
            entry["self"].append(self_s)
            entry["cumulative"].append(cumulative_s)
    rows = [{"module": name, "imported_by": entry["parent"], "self_s": median(entry["self"]),
             "cumulative_s": median(entry["cumulative"])} for name, entry in samples.items()]
    rows.sort(key=lambda row: row["cumulative_s"], reverse=True)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-file", help="GGUF to create the model from (default: pull smollm2)")
    parser.add_argument("--home", help="HEARTH_HOME to use (default: a temp folder)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--importtime-runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--max-wait", type=float, default=30.0, metavar="SECONDS",
                        help="before each round, wait up to this long for idle CPUs (0: never)")
    parser.add_argument("--no-pycache", action="store_true",
                        help="keep the environment's bytecode settings (by default a private "
                             "PYTHONPYCACHEPREFIX caches .pyc files, as an installed package has)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def report(results: dict) -> None:
    print(f"CLI start-up, {results['runs']} runs each after {results['warmup']} warm-up runs, "
          f"interleaved ({results['hearth']}; bytecode cache: {results['bytecode_cache']})")
    print(f"{'command':<16}  {'median s':>8}  {'min s':>6}  {'max s':>6}  "
          f"{'over floor s':>12}  {'target':>8}")
    floor = results["commands"]["python -c pass"]["median_s"]
    for name, row in results["commands"].items():
        target = ""
        if name.startswith("hearth"):
            target = "ok" if row["median_s"] <= TARGET_S else "OVER"
        print(f"{name:<16}  {row['median_s']:>8.3f}  {row['min_s']:>6.3f}  {row['max_s']:>6.3f}  "
              f"{row['median_s'] - floor:>12.3f}  {target:>8}")
    print(f"target: median <= {TARGET_S:.2f} s; median share of the CPUs used by other processes "
          f"during the runs: {results['median_other_load']:.0%}")
    print()
    print(f"top {len(results['imports'])} imports of `python -X importtime -m hearth list` "
          f"by cumulative time (median of {results['importtime_runs']} runs)")
    print(f"{'cumulative s':>12}  {'self s':>7}  {'module':<28}  imported by")
    for row in results["imports"]:
        print(f"{row['cumulative_s']:>12.4f}  {row['self_s']:>7.4f}  {row['module']:<28}  "
              f"{row['imported_by'] or '(run-time import)'}")
    heavy = results["heavy_imports"]
    print("heavy modules imported by `hearth list`: "
          + (", ".join(f"{r['module']} ({r['cumulative_s']:.3f} s)" for r in heavy) or "none"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with BenchHome(args.home) as home, tempfile.TemporaryDirectory() as pycache:
        home.ensure_model(args.model_file)
        env = startup_env(home.path, None if args.no_pycache else Path(pycache))
        to_run = commands()
        for _ in range(args.warmup):
            for command in to_run.values():
                time_once(command, env)
        times: dict[str, list[float]] = {name: [] for name in to_run}
        loads: list[float] = []
        for index in range(args.runs):
            if args.max_wait > 0:
                wait_for_idle(args.max_wait)
            # Rotate the order so no command always runs first after the wait.
            names = list(to_run)
            names = names[index % len(names):] + names[:index % len(names)]
            for name in names:
                elapsed, share = time_once(to_run[name], env)
                times[name].append(elapsed)
                loads.append(share)
        import_costs(env, 1)  # fill the bytecode cache for `-m hearth` too
        imports = import_costs(env, args.importtime_runs)
    results = {
        "benchmark": "cli_startup",
        "hearth": hearth_command(),
        "runs": args.runs,
        "warmup": args.warmup,
        "target_s": TARGET_S,
        "bytecode_cache": "environment" if args.no_pycache else "private PYTHONPYCACHEPREFIX",
        "env_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "commands": {name: {"median_s": median(values), "min_s": min(values),
                            "max_s": max(values), "samples_s": values}
                     for name, values in times.items()},
        "median_other_load": median(loads),
        "importtime_runs": args.importtime_runs,
        "imports": imports[:args.top],
        "heavy_imports": [row for row in imports
                          if row["module"].split(".")[0] in HEAVY and "." not in row["module"]],
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:
        print(f"cli_startup: {exc}", file=sys.stderr)
        sys.exit(0)
