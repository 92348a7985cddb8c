"""``hearth doctor``: check this machine, the engine build, HEARTH_HOME and the server, and run
a test decode in a child process; one line per problem with its fix, exit 1 if any."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the engine, this machine and HEARTH_HOME; what to paste into a bug report",
        description="Show the hearth and llama.cpp versions and build, the CPU, memory, HEARTH_HOME "
        "and the server at HEARTH_HOST, and run a short test decode in a child process. Prints "
        "each problem with its fix and exits 1 when there is one, 0 when all is well.",
    )
    parser.add_argument("--json", action="store_true", help="print the facts as JSON (for scripts)")
    parser.add_argument("--engine", action="store_true",
                        help="check only the engine (what setup runs after building it)")
    parser.add_argument("--measure-speed", action="store_true",
                        help="measure this machine's decode and prompt speed with llama.cpp (about "
                             "10 s, best on an idle machine) and keep the figures in "
                             "HEARTH_HOME/machine-speed.json, for `hearth fit`'s predicted tokens/s")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import json

    from hearth.doctor import examine

    report = examine(engine_only=args.engine, measure_speed=args.measure_speed)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if report["ok"] else 1


def _size(value: int | None) -> str:
    from hearth.units import human_size

    return "unknown" if value is None else human_size(value)


def engine_lines(report: dict[str, Any]) -> list[str]:
    engine = report.get("engine") or {}
    record = report["engine_build"]
    if not record["installed"]:
        return ["not installed"]
    lines = []
    version = f"llama-cpp-python {engine.get('llama_cpp_python', '?')}"
    if engine.get("ggml_version"):
        version += f", ggml {engine['ggml_version']} (commit {engine.get('ggml_commit') or '?'})"
    lines.append(version)
    if engine.get("backends") is not None:
        lines.append(f"backends: {', '.join(engine['backends']) or 'none'}; "
                     f"GPU offload: {'yes' if engine.get('gpu_offload') else 'no'}")
    for section, values in (engine.get("features") or {}).items():
        on = [key for key, value in values.items() if value == "1"]
        other = [f"{key}={value}" for key, value in values.items() if value not in ("0", "1")]
        lines.append(f"{section}: {' '.join(on + other) or '-'}")
    for device in engine.get("devices") or []:
        if device["type"] != "cpu":
            lines.append(f"device {device['name']} ({device['description']}): "
                         f"{_size(device['memory_free'])} free of {_size(device['memory_total'])}")
    if record["built_by_hearth"]:
        left_out = ", ".join(name.upper() for name in record["left_out"] or []) or "nothing"
        state = "for this machine" if record["matches_this_machine"] else "NOT for this machine"
        built = f", compiled in {record['build_seconds']:.0f} s" if record.get("build_seconds") else ""
        lines.append(f"build: hearth's, {state}; left out: {left_out}"
                     f"{'; portable' if record['portable'] else ''}{built}")
    else:
        lines.append("build: not made by hearth (installed by pip or by hand)")
    return lines


def other_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    cpu = report["cpu"]
    threads = cpu.get("threads") or "?"
    rows.append(("cpu", f"{cpu['model']}, {cpu['architecture']}, {cpu['cores']} cores "
                        f"({cpu['cores_usable']} usable), hearth uses {threads} "
                        f"thread{'' if threads == 1 else 's'}"))
    if cpu["flags"]:
        rows.append(("", "flags: " + " ".join(cpu["flags"])))
    if "flash_attention" in cpu:
        rows.append(("attention", f"flash attention {cpu['flash_attention']} (HEARTH_FLASH_ATTENTION), "
                                  f"KV cache {cpu['kv_cache_type']} (HEARTH_KV_CACHE_TYPE)"))
    elif "attention_error" in cpu:
        rows.append(("attention", cpu["attention_error"]))
    if "memory" in report:
        memory = report["memory"]
        gpu = ("none" if memory["gpu_total"] is None
               else f"{_size(memory['gpu_free'])} free of {_size(memory['gpu_total'])}")
        rows.append(("memory", f"RAM {_size(memory['ram_available'])} available of "
                               f"{_size(memory['ram_total'])}; GPU {gpu}"))
    if "home" in report:
        home = report["home"]
        models = home.get("models")
        count = "? models" if models is None else f"{models} model{'s' if models != 1 else ''}"
        rows.append(("home", f"{home['path']}: {'writable' if home['writable'] else 'NOT writable'}, "
                             f"{_size(home.get('disk_free'))} free, {count}"))
    if "server" in report:
        server = report["server"]
        state = (f"hearth {server.get('version')} answers" if server.get("running")
                 else "not running" if "status" not in server else f"answers with status {server['status']}")
        rows.append(("server", f"{server.get('address') or '?'}: {state}"))
    test = report.get("self_test")
    if test:
        if test["ok"]:
            text = (f"{test['model']}: {test['tokens']} tokens at {test['tokens_per_second']} tok/s "
                    f"(prompt: {test['prompt_tokens']} tokens at {test['prompt_tokens_per_second']} tok/s), "
                    f"loaded in {test['load_seconds']} s")
        else:
            text = f"{test['model']}: FAILED: {test['error']}"
        rows.append(("self-test", text))
    if report.get("speed"):
        rows.append(("speed", speed_line(report["speed"])))
    return rows


def speed_line(speed: dict[str, Any]) -> str:
    """The machine's speed figures (what `hearth fit` predicts tokens/s from), or why none."""
    figures = speed.get("figures")
    if not figures:
        if speed.get("measured_now"):
            return f"FAILED: {speed.get('error')}"
        why = speed.get("why") or "not measured"
        state = "not measured" if why == "not measured" else f"figures no longer hold ({why})"
        return f"{state}: run `hearth doctor --measure-speed`"
    when = (f"measured now in {figures['seconds']:.0f} s" if speed.get("measured_now")
            else f"measured {figures['measured_at'][:10]}")
    busy = figures.get("other_load") or 0.0
    line = (f"Q8_0 weights read at {figures['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, multiplied at "
            f"{figures['compute_flops_per_s'] / 1e9:.0f} GFLOP/s; attention "
            f"{(figures.get('attention_flops_per_s') or 0) / 1e9:.0f} GFLOP/s; "
            f"{figures['decode_overhead_s'] * 1e3:.2f} ms + {figures['decode_layer_overhead_s'] * 1e3:.3f} "
            f"ms/layer per token ({figures['threads']} threads, {figures['device']}, {when}")
    return line + (f"; other programs used {busy:.0%} of the CPUs meanwhile)" if busy > 0.1 else ")")


def print_report(report: dict[str, Any]) -> None:
    hearth = report["hearth"]
    print(f"hearth {hearth['version']} · Python {hearth['python']} · {hearth['platform']}")
    rows = [("engine", line) if i == 0 else ("", line) for i, line in enumerate(engine_lines(report))]
    rows += other_lines(report)
    for label, text in rows:
        print(f"{label:<10} {text}")
    print()
    if report["problems"]:
        count = len(report["problems"])
        print(f"{count} problem{'s' if count != 1 else ''}:")
        for finding in report["problems"]:
            print(f"  - {finding['what']}\n    fix: {finding['fix']}")
    else:
        print("all good")
    if report["notes"]:
        print("notes:")
        for finding in report["notes"]:
            print(f"  - {finding['what']}\n    to change it: {finding['fix']}")
