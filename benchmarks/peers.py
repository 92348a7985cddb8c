"""Peers: ``hearth serve`` against llama.cpp's own ``llama-server`` and llama-cpp-python's server,
on the same GGUF, threads and parallel slots (issue "As fast as llama.cpp's own server").

Servers, each on a free loopback port, started, measured and stopped by PID before the next
starts (the order rotating per round, so that each is measured in each stretch of a noisy run):

- **hearth**: ``hearth serve`` with HEARTH_NUM_PARALLEL=--parallel, HEARTH_NUM_THREAD=T,
  HEARTH_CONTEXT_LENGTH=--ctx (per slot), HEARTH_KEEP_ALIVE=-1; ready on ``/api/version``.
- **llama-server**: llama.cpp's server built from the installed llama-cpp-python's own llama.cpp
  with hearth's engine flags (``llama_server_build.py``), ``-m GGUF -np P -t T -tb T -c P*CTX``,
  its defaults otherwise (flash attention ``auto``, which it turns on for the CPU; hearth turns it
  off); ready on ``/health``.
- **llama-cpp-python**: ``python -m llama_cpp.server --model GGUF --n_threads T
  --n_threads_batch T --n_ctx CTX`` (one request at a time); ready on ``/v1/models``.

For each client count (``--clients``), ``--requests`` sequential streamed ``POST /v1/completions``
per client, all clients released at once: raw prompts (the same strings to every server, new for
every request so that no server reuses a cached prompt), temperature 0, max_tokens 64. The
prompts are of a kind that does not end early; llama-server also gets ``ignore_eos``. Measured:
aggregate completion tokens/s (the sum of the usage counts over the wall time from the release to
the last answer) and time to first content (TTFT) p50/p95. Then prompt processing: one
non-streamed request with a ~``--prompt-tokens`` prompt and max_tokens 1, prompt tokens / wall.

    .venv/bin/python benchmarks/peers.py [--servers hearth,llama-server,llama-cpp-python]
        [--clients 1,4,8,16] [--rounds 3] [--requests 2] [--parallel 8] [--threads N]
        [--ctx 2048] [--prompt-tokens 2000] [--max-wait 60] [--json]
        [--model-file PATH | --home DIR]

Informational: it always exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench_model import BenchHome, median, wait_for_idle
from loopback_server import LoopbackServer, free_port
from server_speed import CpuUse, ServerProcess, percentile

SERVERS = ("hearth", "llama-server", "llama-cpp-python")
MAX_TOKENS = 64
BUSY_SHARE = 0.10  # above this share of the CPUs used by others, a measurement is flagged

QUESTIONS = [
    "Explain in detail how a steam engine works, step by step.",
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Describe the water cycle to a class of ten-year-olds, with examples.",
    "What are the main differences between Python lists and tuples? Give examples.",
    "Tell me about the history of the printing press and why it mattered.",
    "Write a detailed recipe for a vegetable soup, including every step.",
    "Explain how photosynthesis works and why plants need sunlight.",
    "Describe a walk through a busy market in a small town on a Saturday morning.",
    "How do airplanes stay in the air? Explain lift, thrust, drag and weight.",
    "Write a letter to a friend describing your summer holiday by the sea.",
    "Explain what a computer's memory is and how it differs from storage.",
    "Tell me a long fairy tale about a dragon who is afraid of the dark.",
    "Describe how bees make honey and how a beehive is organised.",
    "What should a beginner know before planting a vegetable garden?",
    "Explain the rules of chess to someone who has never played it.",
    "Write a story about two children who build a raft and sail down a river.",
]

# The long prompt for prompt processing: plain prose, repeated and cut to the wanted length.
FILLER = ("The old harbour town woke slowly. Fishing boats rocked against the pier while gulls "
          "argued over scraps, and the baker on the corner pulled the first loaves from his oven. "
          "Children ran down the cobbled lane towards the school, their voices echoing between "
          "the stone houses, and an old man sat on a bench reading yesterday's newspaper. ")


def prompt_text(question: str, code: str) -> str:
    """A raw prompt that the model continues for well over 64 tokens; ``code`` makes it new to
    every server's prompt cache (it comes first, so no prefix is shared with an earlier one)."""
    return f"Conversation {code}\nUser: {question}\nAssistant: Sure! Here is a detailed answer.\n\n"


# -- the servers ---------------------------------------------------------------------------------

def command_text(command: list[str]) -> str:
    """The command as the report shows it: the free port it got named PORT."""
    shown = list(command)
    for i, arg in enumerate(shown[:-1]):
        if arg == "--port":
            shown[i + 1] = "PORT"
    return " ".join(shown)


class HearthServer(ServerProcess):
    kind = "hearth"

    def __init__(self, home: Path, args: argparse.Namespace) -> None:
        # hearth serve reads these from its environment (ServerProcess copies os.environ).
        os.environ["HEARTH_NUM_THREAD"] = str(args.threads)
        os.environ["HEARTH_CONTEXT_LENGTH"] = str(args.ctx)
        os.environ["HEARTH_KEEP_ALIVE"] = "-1"
        self.command_text = (f"HEARTH_HOME={home} HEARTH_HOST=127.0.0.1:PORT "
                             f"HEARTH_NUM_PARALLEL={args.parallel} HEARTH_NUM_THREAD={args.threads} "
                             f"HEARTH_CONTEXT_LENGTH={args.ctx} HEARTH_KEEP_ALIVE=-1 "
                             "hearth serve --log-level warning")
        super().__init__(home, args.parallel)

    def settings(self) -> dict[str, Any]:
        return {"flash_attn": "off (hearth's engine turns it off)",
                "sampling": "Ollama's defaults: top_k 40, top_p 0.9, repeat_penalty 1.1"}

    def close(self) -> None:
        self.stop()
        self.remove_log()


class LlamaServer(LoopbackServer):
    kind = "llama-server"
    name = "llama-server"
    ready_path = "/health"  # 503 while loading, 200 once the model is ready
    log_prefix = "llama-server-"
    start_timeout_s = 120.0

    def __init__(self, binary: Path, model_path: Path, args: argparse.Namespace) -> None:
        port = free_port()
        self.command = [str(binary), "-m", str(model_path), "-np", str(args.parallel),
                        "-t", str(args.threads), "-tb", str(args.threads),
                        "-c", str(args.parallel * args.ctx), "--host", "127.0.0.1",
                        "--port", str(port), *args.llama_server_arg]
        self.extra = list(args.llama_server_arg)
        self.command_text = command_text(["llama-server", *self.command[1:]])
        print(f"$ {' '.join(self.command)}", file=sys.stderr)
        super().__init__(self.command, port)

    def settings(self) -> dict[str, Any]:
        """What it runs with: flash attention (its default is 'auto', which llama.cpp resolves to
        on for the CPU backend; its log at the default verbosity does not say), and from
        ``/props`` the slots, the context per slot and the default sampling."""
        import httpx

        fa = [a for i, a in enumerate(self.extra) if i and self.extra[i - 1] in ("-fa", "--flash-attn")]
        found: dict[str, Any] = {"flash_attn": fa[-1] if fa else "auto (its default: on for the CPU)"}
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
            props = httpx.get(self.base + "/props", timeout=5.0).json()
            params = props["default_generation_settings"]["params"]
            found.update(slots=props.get("total_slots"),
                         n_ctx_slot=props["default_generation_settings"].get("n_ctx"),
                         sampling=", ".join(f"{key} {round(float(params[key]), 3):g}" for key in
                                            ("top_k", "top_p", "min_p", "repeat_penalty")
                                            if key in params))
        return found

    def close(self) -> None:
        self.terminate()
        self.remove_log()


class LlamaCppPythonServer(LoopbackServer):
    kind = "llama-cpp-python"
    name = "llama_cpp.server"
    ready_path = "/v1/models"
    log_prefix = "llama-cpp-server-"
    start_timeout_s = 120.0

    def __init__(self, model_path: Path, args: argparse.Namespace) -> None:
        port = free_port()
        self.command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path),
                        "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
                        "--n_ctx", str(args.ctx), "--interrupt_requests", "false",
                        "--host", "127.0.0.1", "--port", str(port)]
        self.command_text = command_text(["python", *self.command[1:]])
        print(f"$ {' '.join(self.command)}", file=sys.stderr)
        super().__init__(self.command, port)

    def settings(self) -> dict[str, Any]:
        return {"flash_attn": "off (llama-cpp-python's default)", "slots": 1,
                "sampling": "its defaults: top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.1"}

    def close(self) -> None:
        self.terminate()
        self.remove_log()


def start_server(kind: str, args: argparse.Namespace, home: Path, model_path: Path) -> Any:
    if kind == "hearth":
        return HearthServer(home, args)
    if kind == "llama-server":
        return LlamaServer(args.llama_server_binary, model_path, args)
    return LlamaCppPythonServer(model_path, args)


# -- one request ---------------------------------------------------------------------------------

def completion_body(kind: str, model: str, prompt: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": prompt, "max_tokens": max_tokens,
                            "temperature": 0, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}  # hearth: usage in a last chunk
    if kind == "llama-server":
        body["ignore_eos"] = True
    return body


def streamed_completion(http: Any, base: str, body: dict[str, Any]) -> dict[str, Any]:
    """One streamed ``/v1/completions``: time to the first non-empty text, the completion tokens
    (``usage`` where the server sends it in the stream; llama-cpp-python does not, and there
    finish_reason 'length' means exactly max_tokens), the finish reason."""
    started = time.perf_counter()
    first = 0.0
    chunks = 0
    usage: dict[str, Any] | None = None
    finish = None
    with http.stream("POST", f"{base}/v1/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            item = json.loads(data)
            if "error" in item:
                raise RuntimeError(f"stream error: {item['error']}")
            if item.get("usage"):
                usage = item["usage"]
            for choice in item.get("choices") or []:
                if choice.get("text"):
                    chunks += 1
                    first = first or time.perf_counter()
                finish = choice.get("finish_reason") or finish
    ended = time.perf_counter()
    if usage and usage.get("completion_tokens") is not None:
        tokens, source = int(usage["completion_tokens"]), "usage"
    elif finish == "length":
        tokens, source = int(body["max_tokens"]), "finish_reason"
    else:
        tokens, source = chunks, "chunks"
    return {"tokens": tokens, "source": source, "finish": finish, "chunks": chunks,
            "ttft_s": (first - started) if first else float("nan"), "seconds": ended - started}


def run_clients(kind: str, base: str, model: str, clients: int, requests: int,
                code: str) -> dict[str, Any]:
    """``clients`` threads, released at once, each sending ``requests`` streamed completions one
    after another; tokens/s over the wall time from the release to the last answer."""
    import httpx

    gate = threading.Barrier(clients + 1)
    results: list[list[dict[str, Any]]] = [[] for _ in range(clients)]
    finished = [0.0] * clients
    errors: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(timeout=httpx.Timeout(600.0)) as http:
            gate.wait()
            for number in range(requests):
                question = QUESTIONS[(index + number * clients) % len(QUESTIONS)]
                prompt = prompt_text(question, f"{code}-{index}-{number}")
                try:
                    results[index].append(streamed_completion(
                        http, base, completion_body(kind, model, prompt, MAX_TOKENS, True)))
                except Exception as exc:  # counted, never fatal
                    errors.append(f"{type(exc).__name__}: {exc}")
            finished[index] = time.perf_counter()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = max(finished) - started
    done = [r for rs in results for r in rs]
    total = sum(r["tokens"] for r in done)
    ttfts = [r["ttft_s"] for r in done if r["ttft_s"] == r["ttft_s"]]
    return {"clients": clients, "requests": len(done), "tokens": total,
            "per_request": sorted({r["tokens"] for r in done}),
            "token_source": sorted({r["source"] for r in done}),
            "finish": sorted({str(r["finish"]) for r in done}),
            "wall_s": wall, "tok_s": total / wall if wall > 0 else 0.0,
            "ttft_p50_ms": percentile(ttfts, 0.50) * 1000, "ttft_p95_ms": percentile(ttfts, 0.95) * 1000,
            "errors": errors}


def long_prompt(model_path: Path, target_tokens: int, code: str) -> str:
    """Prose cut to ``target_tokens`` tokens of this model (as the servers will count them,
    give or take the BOS token); ``code`` first, so that it shares no prefix with another."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True  # the tokenizer only: no weights, no context
    vocab = LlamaModel(path_model=str(model_path), params=params, verbose=False)
    try:
        text = f"Document {code}\n\n" + FILLER * (target_tokens // 40 + 2)
        tokens = vocab.tokenize(text.encode(), add_bos=False, special=False)[:target_tokens]
        return vocab.detokenize(tokens).decode("utf-8", errors="ignore")
    finally:
        vocab.close()


def prompt_processing(kind: str, base: str, model: str, prompt: str) -> dict[str, Any]:
    import httpx

    body = completion_body(kind, model, prompt, 1, False)
    started = time.perf_counter()
    response = httpx.post(f"{base}/v1/completions", json=body, timeout=600.0)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    data = response.json()
    usage = data.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    result = {"prompt_tokens": prompt_tokens, "cached_tokens": cached,
              "completion_tokens": usage.get("completion_tokens"), "seconds": seconds,
              "prompt_tok_s": (prompt_tokens - cached) / seconds if seconds > 0 else 0.0}
    timings = data.get("timings") or {}
    if timings.get("prompt_per_second"):  # llama-server's own figure
        result["server_prompt_tok_s"] = float(timings["prompt_per_second"])
    return result


# -- rounds --------------------------------------------------------------------------------------

def measured(args: argparse.Namespace, pid: int, run: Any) -> dict[str, Any]:
    """``run(attempt)`` after waiting for idle CPUs; rerun (new prompts: ``attempt`` goes into
    them) while other processes used more than BUSY_SHARE of the CPUs meanwhile, up to
    ``--retries`` times; the least disturbed attempt is kept."""
    best: dict[str, Any] | None = None
    attempts = 0
    for attempt in range(1 + max(0, args.retries)):
        attempts += 1
        idle = wait_for_idle(args.max_wait)
        with CpuUse(pid) as use:
            result = run(attempt)
        result.update(idle_before=idle, other_load=use.other_load, server_cpu_s=use.server_s,
                      bench_cpu_s=use.bench_s)
        if best is None or result["other_load"] < best["other_load"]:
            best = result
        if result["other_load"] <= BUSY_SHARE:
            break
        print(f"  (others used {result['other_load']:.0%} of the CPUs meanwhile"
              f"{'; again' if attempt < args.retries else ''})", file=sys.stderr)
    assert best is not None
    best["attempts"] = attempts
    return best


def serve_round(kind: str, args: argparse.Namespace, home: Path, model: str, model_path: Path,
                round_index: int) -> dict[str, Any]:
    """Start one server, warm it up, measure every client count and prompt processing, stop it."""
    server = start_server(kind, args, home, model_path)
    try:
        row: dict[str, Any] = {"startup_s": server.startup_s, "command": server.command_text}
        import httpx

        with httpx.Client(timeout=httpx.Timeout(600.0)) as http:  # warm-up (hearth loads here)
            warm = streamed_completion(http, server.base, completion_body(
                kind, model, prompt_text(QUESTIONS[0], f"warm{round_index}"), MAX_TOKENS, True))
        row["warmup"] = warm
        row["settings"] = server.settings()
        row["clients"] = {}
        for n in args.clients:
            # The same prompts for every server in a round; a rerun gets new ones.
            result = measured(args, server.pid, lambda attempt, n=n: run_clients(
                kind, server.base, model, n, args.requests, f"r{round_index}c{n}a{attempt}"))
            row["clients"][str(n)] = result
            print(f"round {round_index + 1} {kind:>16} {n:>2} clients: {result['tok_s']:6.1f} tok/s "
                  f"({result['tokens']} tok in {result['wall_s']:.2f} s, per request "
                  f"{result['per_request']}), TTFT p50 {result['ttft_p50_ms']:.0f} ms p95 "
                  f"{result['ttft_p95_ms']:.0f} ms, other load {result['other_load']:.0%}, try {result['attempts']}"
                  f"{', errors ' + str(len(result['errors'])) if result['errors'] else ''}",
                  file=sys.stderr)
        if args.prompt_tokens > 0:
            pp = measured(args, server.pid, lambda attempt: prompt_processing(
                kind, server.base, model,
                long_prompt(model_path, args.prompt_tokens, f"r{round_index}a{attempt}")))
            row["prompt"] = pp
            print(f"round {round_index + 1} {kind:>16} prompt: {pp['prompt_tokens']} tokens "
                  f"({pp['cached_tokens']} cached) in {pp['seconds']:.2f} s = "
                  f"{pp['prompt_tok_s']:.0f} tok/s, other load {pp['other_load']:.0%}, try {pp['attempts']}", file=sys.stderr)
        return row
    except BaseException:
        print(f"{kind} log (tail):\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.close()


def spread(values: list[float]) -> dict[str, float]:
    return {"median": median(values), "min": min(values, default=float("nan")),
            "max": max(values, default=float("nan"))}


def summarize(args: argparse.Namespace, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    names = args.servers
    for n in args.clients:
        key = str(n)
        entry: dict[str, Any] = {}
        for name in names:
            runs = [r[name]["clients"][key] for r in rounds if name in r]
            entry[name] = {
                "tok_s": spread([x["tok_s"] for x in runs]),
                "ttft_p50_ms": spread([x["ttft_p50_ms"] for x in runs]),
                "ttft_p95_ms": spread([x["ttft_p95_ms"] for x in runs]),
                "per_request_tokens": sorted({t for x in runs for t in x["per_request"]}),
                "token_source": sorted({s for x in runs for s in x["token_source"]}),
                "errors": sum(len(x["errors"]) for x in runs),
                "max_other_load": max(x["other_load"] for x in runs),
                "busy_runs": sum(x["other_load"] > BUSY_SHARE for x in runs),
            }
        for peer in names:
            if peer != "hearth" and "hearth" in names:
                per_round = [r["hearth"]["clients"][key]["tok_s"] / r[peer]["clients"][key]["tok_s"]
                             for r in rounds if r[peer]["clients"][key]["tok_s"]]
                entry[f"hearth/{peer}"] = spread(per_round)
        summary[key] = entry
    if args.prompt_tokens > 0:
        prompt: dict[str, Any] = {}
        for name in names:
            runs = [r[name]["prompt"] for r in rounds]
            prompt[name] = {"prompt_tok_s": spread([x["prompt_tok_s"] for x in runs]),
                            "prompt_tokens": sorted({x["prompt_tokens"] for x in runs}),
                            "max_other_load": max(x["other_load"] for x in runs),
                            "busy_runs": sum(x["other_load"] > BUSY_SHARE for x in runs)}
            if any("server_prompt_tok_s" in x for x in runs):
                prompt[name]["server_prompt_tok_s"] = spread(
                    [x["server_prompt_tok_s"] for x in runs if "server_prompt_tok_s" in x])
        for peer in names:
            if peer != "hearth" and "hearth" in names:
                prompt[f"hearth/{peer}"] = spread([r["hearth"]["prompt"]["prompt_tok_s"]
                                                   / r[peer]["prompt"]["prompt_tok_s"]
                                                   for r in rounds if r[peer]["prompt"]["prompt_tok_s"]])
        summary["prompt"] = prompt
    return summary


# -- report --------------------------------------------------------------------------------------

def fmt(s: dict[str, float], digits: int = 1) -> str:
    if s["median"] != s["median"]:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def report(results: dict[str, Any]) -> None:
    names = results["servers"]
    summary = results["summary"]
    peers = [p for p in names if p != "hearth" and "hearth" in names]
    print(f"\nmodel {results['model_path']}")
    print(f"{results['threads']} threads, {results['parallel']} slots (hearth, llama-server) of "
          f"{results['ctx']} tokens, {results['rounds']} round(s), {results['requests']} streamed "
          f"/v1/completions of max_tokens {MAX_TOKENS} per client, temperature 0")
    for name in names:
        print(f"  {name}: {results['commands'].get(name, '')}")
        if results["settings"].get(name):
            print(f"    {results['settings'][name]}")
    print("\nAggregate completion tokens/s: median (min–max) over rounds; ratios: per-round ratios")
    head = ["clients", *names, *[f"hearth/{p}" for p in peers]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---:|" * len(head))
    for n in results["clients"]:
        entry = summary[str(n)]
        cells = [str(n), *[fmt(entry[name]["tok_s"]) for name in names],
                 *[fmt(entry[f"hearth/{p}"], 2) for p in peers]]
        print("| " + " | ".join(cells) + " |")
    print("\nTime to first content, ms: p50 / p95 (medians over rounds)")
    print("| clients | " + " | ".join(names) + " |")
    print("|" + "---:|" * (len(names) + 1))
    for n in results["clients"]:
        entry = summary[str(n)]
        cells = [f"{entry[name]['ttft_p50_ms']['median']:.0f} / {entry[name]['ttft_p95_ms']['median']:.0f}"
                 for name in names]
        print(f"| {n} | " + " | ".join(cells) + " |")
    print("\nCompletion tokens per request (all requests; from usage, or finish_reason 'length' "
          "for llama-cpp-python) and errors")
    for n in results["clients"]:
        entry = summary[str(n)]
        print(f"  {n:>2} clients: " + "; ".join(
            f"{name} {entry[name]['per_request_tokens']} via {'/'.join(entry[name]['token_source'])}"
            f"{', ' + str(entry[name]['errors']) + ' errors' if entry[name]['errors'] else ''}"
            for name in names))
    if "prompt" in summary:
        prompt = summary["prompt"]
        print(f"\nPrompt processing (one request, ~{results['prompt_tokens']}-token prompt, max_tokens 1): "
              "prompt tokens / wall, median (min–max)")
        print("| server | prompt tokens | tok/s | server's own tok/s |")
        print("|---|---:|---:|---:|")
        for name in names:
            own = prompt[name].get("server_prompt_tok_s")
            print(f"| {name} | {prompt[name]['prompt_tokens']} | {fmt(prompt[name]['prompt_tok_s'], 0)} "
                  f"| {fmt(own, 0) if own else '-'} |")
        for p in peers:
            print(f"hearth/{p}: {fmt(prompt[f'hearth/{p}'], 2)}")
    loads = [entry[name]["max_other_load"] for entry in summary.values() for name in names]
    busy = sum(entry[name]["busy_runs"] for entry in summary.values() for name in names)
    print(f"\nOther processes used at most {max(loads, default=0.0):.0%} of the CPUs during a kept "
          f"measurement; {busy} kept measurement(s) above {BUSY_SHARE:.0%} even after "
          f"{results['retries']} retries (those figures are disturbed).")


# -- main ----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated, of: " + ", ".join(SERVERS))
    parser.add_argument("--clients", default="1,4,8,16", help="comma-separated client counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2, help="sequential requests per client")
    parser.add_argument("--parallel", type=int, default=8,
                        help="slots for hearth (HEARTH_NUM_PARALLEL) and llama-server (-np)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--ctx", type=int, default=2048, help="context per slot")
    parser.add_argument("--prompt-tokens", type=int, default=2000,
                        help="prompt length for prompt processing (0: skip it)")
    parser.add_argument("--max-wait", type=float, default=60.0, metavar="SECONDS",
                        help="before each measurement, wait up to this long for idle CPUs")
    parser.add_argument("--retries", type=int, default=2,
                        help="times to rerun a measurement during which other processes were busy")
    parser.add_argument("--llama-server-arg", action="append", default=[], metavar="ARG",
                        help="an extra argument for llama-server (repeat; e.g. --llama-server-arg=-fa "
                        "--llama-server-arg=off)")
    parser.add_argument("--model-file", help="GGUF to use (default: pull smollm2 into --home)")
    parser.add_argument("--home", help="HEARTH_HOME to use (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    args.clients = [int(x) for x in args.clients.split(",") if x.strip()]
    args.servers = [x.strip() for x in args.servers.split(",") if x.strip()]
    unknown = [x for x in args.servers if x not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if args.prompt_tokens >= args.ctx:
        parser.error("--prompt-tokens must be below --ctx (the prompt and one token must fit a slot)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the servers are stopped by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if "llama-server" in args.servers:
        from llama_server_build import ensure_llama_server

        args.llama_server_binary = ensure_llama_server()
    results: dict[str, Any] = {
        "benchmark": "peers", "servers": args.servers, "clients": args.clients,
        "rounds": args.rounds, "retries": args.retries, "busy_share": BUSY_SHARE,
        "requests": args.requests, "parallel": args.parallel,
        "threads": args.threads, "ctx": args.ctx, "max_tokens": MAX_TOKENS,
        "prompt_tokens": args.prompt_tokens, "commands": {}, "settings": {},
    }
    if "llama-server" in args.servers:
        results["llama_server_binary"] = str(args.llama_server_binary)
    with BenchHome(args.home) as home:
        model, model_path = home.ensure_model(args.model_file)
        results.update(model=model, model_path=str(model_path))
        rounds: list[dict[str, Any]] = []
        for round_index in range(args.rounds):
            shift = round_index % len(args.servers)
            order = args.servers[shift:] + args.servers[:shift]
            row: dict[str, Any] = {"round": round_index + 1, "order": order}
            for kind in order:
                row[kind] = serve_round(kind, args, home.path, model, model_path, round_index)
                results["commands"][kind] = row[kind]["command"]
                results["settings"][kind] = row[kind]["settings"]
            rounds.append(row)
        results["per_round"] = rounds
        results["summary"] = summarize(args, rounds)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:
        # Not a pass/fail test: say what went wrong and still exit 0.
        with contextlib.suppress(Exception):
            print(f"peers: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(0)
