"""Predicted against measured speed: how close ``hearth fit``'s decode and prompt tokens/s come
to what ``hearth run`` then does on this machine.

1. The machine's figures: ``hearth doctor --measure-speed`` in the benchmark's HEARTH_HOME (or
   the figures already there, unless ``--remeasure``), with HEARTH_NUM_THREAD = ``--threads``.
2. Two models: the real default model (``hearth pull smollm2``, SmolLM2-135M Q4_1, or
   ``--model-file``) and a synthetic one of another size and type (written by hearth's
   tiny-model writer as F16, 20 layers x 1536 wide, head size 128, then ``hearth create -q
   Q4_K_M``: 427M parameters, about 260 MB, the catalog's most common type).
3. Each model, ``--rounds`` times (waiting for idle CPUs first): ``hearth run MODEL PROMPT
   --verbose -o temperature=0 -o num_predict=128`` for decode (``eval rate``) and a
   ``--pp-words``-word prompt with ``num_predict=1`` for prompt processing (``prompt eval
   rate``), as ``decode_speed.py`` does; a run during which other processes used more than 10 %
   of the CPUs is rerun (``--retries``); medians.
4. The prediction (``hearth.fit.speed.predict_speed`` with the cached figures) at the lengths
   the runs had (decode at the prompt plus half the answer, the prompt's measured token count),
   and what ``hearth fit MODEL --json`` shows (its fixed lengths). Error = predicted / measured
   - 1; the target is within +-30 % for both.

``--types`` measures the per-type factor table of ``hearth/fit/speed.py`` instead: a 12-layer,
1024-wide F16 synthetic model quantized by llama.cpp to each type, timed by the speed probe's
``time_model`` in a child process, each type's effective bandwidth and compute rate over
Q8_0's (each type's fastest of ``--rounds`` passes).

    .venv/bin/python benchmarks/predicted_speed.py [--rounds 3] [--threads N] [--json]
        [--model-file PATH | --home DIR] [--remeasure] [--types]

Informational: it always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_model import BenchHome, hearth_command, hearth_env, median, wait_for_idle

TARGET_ERROR = 0.30
BUSY_SHARE = 0.10
DEFAULT_PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
SYNTHETIC = "synthetic-q4km"
SYNTHETIC_SHAPE = {"n_layers": 20, "n_embd": 1536, "head_dim": 128}
SYNTHETIC_TYPE = "Q4_K_M"
FACTOR_TYPES = ["F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M",
                "Q4_K_S", "IQ4_NL", "Q4_1", "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K"]


def run(command: list[str], home: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=hearth_env(home), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False, **kwargs)


def ensure_figures(home: Path, remeasure: bool, max_wait: float) -> dict:
    from hearth.fit.machine_speed import read_machine_speed

    figures, why = read_machine_speed(home)
    if figures is None or remeasure:
        wait_for_idle(max_wait)
        print(f"$ HEARTH_HOME={home} hearth doctor --measure-speed --json"
              f"{'' if figures is None else ''}  ({why or 'remeasure'})", file=sys.stderr)
        done = run([hearth_command(), "doctor", "--measure-speed", "--json"], home)
        try:
            report = json.loads(done.stdout)
        except ValueError:
            sys.exit(f"hearth doctor --measure-speed printed no JSON: {done.stderr[-500:]}")
        speed = report.get("speed") or {}
        if not speed.get("ok"):
            sys.exit(f"the speed measurement failed: {speed.get('error')}")
        figures, why = read_machine_speed(home)
        if figures is None:
            sys.exit(f"no usable figures after measuring: {why}")
    return figures.as_dict()


def ensure_synthetic(home: Path) -> tuple[str, Path]:
    from hearth.selftest.tiny_model import write_tiny_model
    from hearth.store import ModelStore

    store = ModelStore(home)
    if not store.exists(SYNTHETIC):
        with tempfile.TemporaryDirectory(prefix="hearth-bench-synthetic-") as scratch:
            source = write_tiny_model(Path(scratch) / "synthetic-f16.gguf", file_type="F16",
                                      context_length=4096, name="hearth-bench-synthetic",
                                      repeat_layers=True, **SYNTHETIC_SHAPE)
            command = [hearth_command(), "create", SYNTHETIC, "--from", str(source),
                       "-q", SYNTHETIC_TYPE]
            print(f"$ hearth {' '.join(command[1:])}", file=sys.stderr)
            done = run(command, home)
            if done.returncode != 0:
                sys.exit(f"hearth create failed: {done.stderr[-500:]}")
    return SYNTHETIC, store.get(SYNTHETIC).model_path


def long_prompt(words: int) -> str:
    from hearth.engine.perplexity import default_text

    return "Summarize this text:\n\n" + " ".join(default_text().split()[:words])


def measure_model(args: argparse.Namespace, home: Path, model: str) -> dict:
    from decode_speed import run_hearth

    def quiet_run(prompt_text: str, num_predict: int) -> dict:
        # A run during which other processes used more than BUSY_SHARE of the CPUs is rerun.
        for _attempt in range(args.retries + 1):
            wait_for_idle(args.max_wait)
            found = run_hearth(home, model, prompt_text, args.threads, num_predict)
            if found["other_load"] <= BUSY_SHARE:
                break
        return found

    decode, prompt = [], []
    for index in range(args.rounds):
        decode.append(quiet_run(DEFAULT_PROMPT, args.num_predict))
        prompt.append(quiet_run(long_prompt(args.pp_words), 1))
        print(f"{model} round {index + 1}: decode {decode[-1]['rate']:.1f} tok/s "
              f"(other load {decode[-1]['other_load']:.0%}), prompt {prompt[-1]['prompt_rate']:.1f} "
              f"tok/s (other load {prompt[-1]['other_load']:.0%})", file=sys.stderr)
    return {
        "decode_tokens_per_second": median([r["rate"] for r in decode]),
        "prompt_tokens_per_second": median([r["prompt_rate"] for r in prompt]),
        "decode_rounds": [r["rate"] for r in decode],
        "prompt_rounds": [r["prompt_rate"] for r in prompt],
        # Where decode ran: after the chat prompt, halfway through the answer.
        "decode_position": round(median([r["prompt_tokens"] + r["count"] / 2 for r in decode])),
        "prompt_tokens": round(median([r["prompt_tokens"] for r in prompt])),
        "other_load": max(r["other_load"] for r in decode + prompt),
    }


def predict(blob: Path, figures: dict, decode_position: int, prompt_tokens: int) -> dict:
    from hearth.fit.shape import shape_from_gguf
    from hearth.fit.speed import MachineSpeed, bytes_read_per_token, predict_speed
    from hearth.gguf import read_gguf

    info = read_gguf(blob)
    machine = MachineSpeed.from_dict(figures)
    assert machine is not None
    read = bytes_read_per_token([(t.name, t.type_name, t.nbytes) for t in info.tensors], info.quantization)
    prediction = predict_speed(info.file_size, shape_from_gguf(info), machine,
                               quantization=info.quantization, decode_position=decode_position,
                               prompt_tokens=prompt_tokens, read_by_type=read)
    return {**prediction.as_dict(), "quantization": info.quantization,
            "weights_bytes": info.file_size}


def fit_shows(home: Path, model: str) -> dict:
    done = run([hearth_command(), "fit", model, "--json"], home)
    try:
        report = json.loads(done.stdout)["reports"][0]
    except (ValueError, KeyError, IndexError):
        return {}
    return {"decode_tokens_per_second": report.get("decode_tokens_per_second"),
            "prompt_tokens_per_second": report.get("prompt_tokens_per_second")}


def validate(args: argparse.Namespace, home: BenchHome) -> dict:
    figures = ensure_figures(home.path, args.remeasure, args.max_wait)
    models = [home.ensure_model(args.model_file), ensure_synthetic(home.path)]
    rows = []
    for model, blob in models:
        measured = measure_model(args, home.path, model)
        predicted = predict(blob, figures, measured["decode_position"], measured["prompt_tokens"])
        rows.append({
            "model": model,
            "quantization": predicted["quantization"],
            "weights_bytes": predicted["weights_bytes"],
            "measured": measured,
            "predicted": predicted,
            "hearth_fit": fit_shows(home.path, model),
            "decode_error": predicted["decode_tokens_per_second"] / measured["decode_tokens_per_second"] - 1,
            "prompt_error": predicted["prompt_tokens_per_second"] / measured["prompt_tokens_per_second"] - 1,
        })
    within = all(abs(row[key]) <= TARGET_ERROR for row in rows for key in ("decode_error", "prompt_error"))
    return {"figures": figures, "threads": args.threads, "rows": rows, "within_target": within}


def print_validation(result: dict) -> None:
    figures = result["figures"]
    print(f"machine figures ({figures['threads']} threads, {figures['cpu_model']}, llama-cpp-python "
          f"{figures['llama_cpp_version']}, measured {figures['measured_at']} in {figures['seconds']} s):")
    print(f"  decode: {figures['decode_overhead_s'] * 1e3:.3f} ms + {figures['decode_layer_overhead_s'] * 1e3:.4f} "
          f"ms/layer per token, bandwidth {figures['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s")
    print(f"  decode: {figures['decode_row_overhead_s'] * 1e9:.2f} ns per matrix row; prompt: "
          f"{figures['prompt_row_overhead_s'] * 1e9:.2f} ns per matrix row")
    print(f"  prompt: {figures['prompt_overhead_s'] * 1e3:.4f} ms + {figures['prompt_layer_overhead_s'] * 1e3:.5f} "
          f"ms/layer per token, compute {figures['compute_flops_per_s'] / 1e9:.1f} GFLOP/s")
    print(f"  attention: {figures['attention_flops_per_s'] / 1e9:.1f} GFLOP/s; other load while measuring "
          f"{figures['other_load']:.0%}")
    print()
    header = f"{'model':<16}{'type':<8}{'size':>9}  {'':<7}{'measured':>10}{'predicted':>11}{'error':>8}{'hearth fit':>12}"
    print(header)
    for row in result["rows"]:
        for kind in ("decode", "prompt"):
            key = f"{kind}_tokens_per_second"
            shown = row["hearth_fit"].get(key)
            print(f"{row['model'] if kind == 'decode' else '':<16}"
                  f"{row['quantization'] if kind == 'decode' else '':<8}"
                  f"{(str(round(row['weights_bytes'] / 1e6)) + ' MB') if kind == 'decode' else '':>9}  "
                  f"{kind:<7}{row['measured'][key]:>10.1f}{row['predicted'][key]:>11.1f}"
                  f"{row[kind + '_error']:>+8.1%}{shown if shown is not None else '-':>12}")
    print()
    verdict = "within" if result["within_target"] else "NOT within"
    print(f"verdict: {verdict} +-{TARGET_ERROR:.0%} for every model and rate")


# -- the factor table (--types) -------------------------------------------------------------------

TIME_CHILD = """
import json, sys
from pathlib import Path
from hearth.selftest.speed_probe import time_model
print(json.dumps(time_model(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))))
"""


def measure_types(args: argparse.Namespace, home: BenchHome) -> dict:
    from hearth.engine.quantize import quantize_file
    from hearth.selftest.tiny_model import write_tiny_model

    figures = ensure_figures(home.path, args.remeasure, args.max_wait)
    scratch = Path(tempfile.mkdtemp(prefix="hearth-bench-types-", dir=home.path))
    layers, width, head_dim = args.types_shape
    source = write_tiny_model(scratch / "F16.gguf", n_layers=layers, n_embd=width, head_dim=head_dim,
                              file_type="F16", repeat_layers=True, context_length=1024)
    files = {"F16": source}
    for type_name in args.type_list:
        if type_name != "F16":
            files[type_name] = scratch / f"{type_name}.gguf"
            quantize_file(source, files[type_name], type_name, threads=args.threads)
    timings: dict[str, list[dict]] = {name: [] for name in files}
    for index in range(args.rounds):
        for type_name in (list(files) if index % 2 == 0 else list(reversed(files))):
            wait_for_idle(args.max_wait)
            done = subprocess.run([sys.executable, "-c", TIME_CHILD, type_name, str(files[type_name]),
                                   str(args.threads)], capture_output=True, text=True, check=False,
                                  env=hearth_env(home.path), stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                print(f"{type_name}: failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
                continue
            timing = json.loads(done.stdout.strip().splitlines()[-1])
            timings[type_name].append(timing)
            print(f"pass {index + 1} {type_name}: {timing['file_bytes'] / 1e6:.0f} MB, decode "
                  f"{timing['decode_s'] * 1e3:.2f} ms, prompt {timing['prompt_s'] * 1e3:.3f} ms/token",
                  file=sys.stderr)
    # Each type's fastest pass (a busy machine only slows one down), as the probe does.
    rates = {name: (effective_rate(figures, found, "decode"), effective_rate(figures, found, "prompt"))
             for name, found in timings.items() if found}
    reference = rates.get("Q8_0")
    factors = {} if reference is None else {
        name: (round(decode / reference[0], 2), round(prompt / reference[1], 2))
        for name, (decode, prompt) in rates.items()}
    return {"figures": figures, "factors": factors, "timings": timings}


def effective_rate(figures: dict, timings: list[dict], kind: str) -> float:
    """Bytes (decode) or matrix FLOPs (prompt) per second beyond the fixed, per-layer, per-row
    and attention costs the figures give, in the fastest of the passes."""
    best = min(timings, key=lambda timing: timing[f"{kind}_s"])
    attention_rate = figures["attention_flops_per_s"] or figures["compute_flops_per_s"]
    fixed = (figures[f"{kind}_overhead_s"] + best["n_layer"] * figures[f"{kind}_layer_overhead_s"]
             + best[f"{kind}_rows"] * figures[f"{kind}_row_overhead_s"]
             + best[f"{kind}_attention_flops"] / attention_rate)
    work = best["read_bytes"] if kind == "decode" else best["prompt_flops"]
    return work / (best[f"{kind}_s"] - fixed)


def print_types(result: dict) -> None:
    print(f"{'type':<8}{'MB':>6}{'decode factor':>15}{'prompt factor':>15}")
    for name, (decode, prompt) in result["factors"].items():
        size = result["timings"][name][0]["file_bytes"] / 1e6 if result["timings"][name] else 0
        print(f"{name:<8}{size:>6.0f}{decode:>15.2f}{prompt:>15.2f}")
    print("\nQUANT_FACTORS = {")
    for name, (decode, prompt) in result["factors"].items():
        print(f'    "{name}": ({decode}, {prompt}),')
    print("}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-file", help="GGUF of the real model (default: pull smollm2 into --home)")
    parser.add_argument("--home", help="HEARTH_HOME to use (default: a temp folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--num-predict", type=int, default=128)
    parser.add_argument("--pp-words", type=int, default=400, help="words in the prompt-processing prompt")
    parser.add_argument("--max-wait", type=float, default=60.0, metavar="SECONDS",
                        help="before each run, wait up to this long for idle CPUs (0: never wait)")
    parser.add_argument("--retries", type=int, default=2,
                        help="times to rerun a run during which other processes were busy")
    parser.add_argument("--remeasure", action="store_true",
                        help="measure the machine's figures even when the home has valid ones")
    parser.add_argument("--types", action="store_true", help="measure the per-type factor table instead")
    parser.add_argument("--type-list", type=lambda text: [t.strip().upper() for t in text.split(",")],
                        default=FACTOR_TYPES, help="types for --types, comma-separated")
    parser.add_argument("--types-shape", type=lambda text: [int(x) for x in text.split(",")],
                        default=[12, 1024, 64], metavar="LAYERS,WIDTH,HEAD",
                        help="the synthetic model --types quantizes (default 12,1024,64)")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The figures hold for the thread count they were measured with; this process reads them.
    os.environ["HEARTH_NUM_THREAD"] = str(args.threads)
    with BenchHome(args.home) as home:
        result = measure_types(args, home) if args.types else validate(args, home)
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.types:
        print_types(result)
    else:
        print_validation(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
