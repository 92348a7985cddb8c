"""``hearth fit MODEL[:QUANT] [--ctx N]``: will a model run on this machine?"""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fit",
        help="will a model fit this machine's memory? (installed, catalog or a GGUF file)",
        description="Estimate the memory a model needs (weights + KV cache + overhead) at a "
        "context size and compare it with this machine's free RAM (and GPU memory, when "
        "nvidia-smi reports one and llama.cpp can use it). Verdict: fits (<= 70% of free "
        "memory), tight (<= 100%), too large. For a catalog model every tag is listed and the "
        "largest one that fits is recommended. Decode and prompt tokens/s are predicted from the "
        "weights, the model's shape and this machine's figures measured by `hearth doctor "
        "--measure-speed`.",
    )
    parser.add_argument("model", metavar="MODEL[:QUANT]",
                        help="an installed model, a catalog model (tag or quantization optional) "
                             "or a path to a .gguf file")
    parser.add_argument("--ctx", type=int, metavar="N",
                        help="context length in tokens (default: the model's num_ctx, else "
                             "HEARTH_CONTEXT_LENGTH, capped at the model's trained length)")
    parser.add_argument("--parallel", type=int, default=1, metavar="N",
                        help="requests decoded at once, each with its own KV cache (the server's "
                             "HEARTH_NUM_PARALLEL); default 1")
    parser.add_argument("--catalog", action="store_true",
                        help="list the catalog's tags even when the model is installed")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hearth.errors import InvalidRequest
    from hearth.runtime import Runtime

    if args.ctx is not None and args.ctx < 16:
        raise InvalidRequest("--ctx must be at least 16 tokens")
    if args.parallel < 1:
        raise InvalidRequest("--parallel must be at least 1")
    answer = Runtime().fit(args.model, args.ctx, catalog=args.catalog, n_parallel=args.parallel)
    if args.json:
        import json

        print(json.dumps(answer.as_dict(), indent=2))
    elif answer.kind == "catalog":
        print_catalog(answer)
    else:
        print_report(answer.reports[0], answer.kind)
    return 0


def memory_line(report: Any) -> str:
    from hearth.units import human_size

    line = f"{human_size(report.available_bytes)} free RAM"
    if report.gpu_available_bytes is None:
        return line + ", no GPU"
    return line + f", {human_size(report.gpu_available_bytes)} free GPU memory"


def print_report(report: Any, kind: str) -> None:
    from hearth.runtime.facts import fit_thresholds
    from hearth.units import human_size

    FITS_FRACTION, TIGHT_FRACTION = fit_thresholds()  # noqa: N806 - constants of hearth.fit

    about = ", ".join(x for x in (kind, report.quantization,
                                  f"{report.parameter_size} parameters" if report.parameter_size else "") if x)
    shape = report.shape
    kv_detail = (f"{shape['n_layer']} layers x {shape['n_head_kv']} KV heads x "
                 f"{shape['head_dim']} x K+V x f16 per token")
    if report.n_parallel > 1:
        kv_detail += f", {report.n_parallel} sequences"
    share = f"{report.total_bytes / report.budget_bytes:.0%} of " if report.budget_bytes else ""
    rows = [
        ("context", f"{report.context_length} tokens", ""),
        ("weights", human_size(report.weights_bytes), ""),
        ("KV cache", human_size(report.kv_cache_bytes), kv_detail),
        ("overhead", human_size(report.overhead_bytes), "compute buffers + runtime"),
        ("total", human_size(report.total_bytes), ""),
        ("available", human_size(report.available_bytes), "free RAM (MemAvailable)"),
        ("GPU", "none" if report.gpu_available_bytes is None else human_size(report.gpu_available_bytes),
         "" if report.gpu_available_bytes is None else f"free; runs on: {report.device}"),
        ("verdict", report.verdict, f"{share}the memory it can use; fits <= {FITS_FRACTION:.0%}, "
                                    f"tight <= {TIGHT_FRACTION:.0%}"),
    ]
    if report.decode_tokens_per_second is not None:
        rows.append(("decode", rate(report.decode_tokens_per_second), "predicted, generating"))
        rows.append(("prompt", rate(report.prompt_tokens_per_second), "predicted, reading a prompt"))
    else:
        rows.append(("speed", "-", report.speed_basis))
    width = max(10, *(len(value) for _label, value, _detail in rows))
    print(f"{report.name}  ({about})")
    for label, value, detail in rows:
        print(f"  {label:<11}{value:>{width}}   {detail}".rstrip())
    if report.decode_tokens_per_second is not None:
        print(f"  how: {report.speed_basis}")
    for note in report.notes:
        print(f"  note: {note}")


def rate(tokens_per_second: float | None) -> str:
    return "-" if tokens_per_second is None else f"{tokens_per_second:.1f} tok/s"


def print_catalog(answer: Any) -> None:
    from hearth.cli.output import print_columns
    from hearth.units import human_size

    first = answer.reports[0]
    name = answer.query.split(":")[0]
    print(f"{name}  (catalog; context {first.context_length} tokens; {memory_line(first)})")
    rows = [["  TAG", "QUANT", "PARAMS", "WEIGHTS", "KV CACHE", "OVERHEAD", "TOTAL", "DECODE",
             "PROMPT", "VERDICT"]]
    for tag, report in zip(answer.tags, answer.reports, strict=True):
        mark = "  <- recommended" if answer.recommended and answer.recommended.endswith(f":{tag}") else ""
        rows.append([f"  {tag}", report.quantization, report.parameter_size,
                     human_size(report.weights_bytes), human_size(report.kv_cache_bytes),
                     human_size(report.overhead_bytes), human_size(report.total_bytes),
                     rate(report.decode_tokens_per_second), rate(report.prompt_tokens_per_second),
                     report.verdict + mark])
    print_columns(rows)
    predicted = next((r for r in answer.reports if r.decode_tokens_per_second is not None), None)
    if predicted is not None:
        # The basis reads "SOURCE: how"; the how differs per tag (`hearth fit MODEL:TAG` shows it).
        source = predicted.speed_basis.split("): ", 1)[0] + ")"
        print(f"speeds: {source}; `hearth fit {name}:TAG` shows how")
    else:
        print(f"speeds: {first.speed_basis}")
    if answer.recommended:
        print(f"recommended: {answer.recommended} (the largest that fits)")
    else:
        print("recommended: none (nothing fits with room to spare; try a shorter --ctx)")
    notes = sorted({note for report in answer.reports for note in report.notes})
    for note in notes:
        print(f"note: {note}")
