"""Concurrency: many clients at once against ``hearth serve``, llama-cpp-python's server and a
direct multi-sequence ``llama_decode`` loop; time to first token of a long chat; peak memory.

1. Aggregate generated tokens/s with 1, 4, 8 and 16 clients, each sending one non-streaming
   ``POST /v1/completions`` with its own prompt, all at once (total completion tokens over the
   time from the first send to the last answer), to
   (a) ``hearth serve`` (HEARTH_NUM_PARALLEL=--parallel, HEARTH_NUM_THREAD=T; with 16 clients
       and 8 slots, 8 decode and 8 wait),
   (b) the peer ``python -m llama_cpp.server`` (one request at a time) on the same GGUF blob,
   (c) the ceiling: N sequences decoded in one ``llama_decode`` batch per step with the
       low-level API (a greedy sampler chain per sequence, prompts read first), same prompts,
   and, as a diagnostic, (d) the same requests through hearth's ``Runtime`` without HTTP or a
   runner process. (c) and (d) run in child processes of their own: llama.cpp's OpenMP threads
   slow down (they sleep at every barrier) in a process where a second thread has decoded.
   Rounds interleave the sides, the order rotating; medians of the per-round figures. Each
   measurement waits for idle CPUs first and is rerun while others used > 10 % of them.
2. Time to first token of turn 5 of a chat with ~1,000 tokens of history through hearth's
   streaming ``/api/chat``: warm (a slot still holds turns 1-4) and cold (after ``/api/stop``
   and a reload by an unrelated chat, so nothing but the template's first tokens is shared).
3. Peak resident memory (VmHWM) of the hearth server and its runner after serving 8 streams,
   against model file + KV cache (slots x num_ctx x 2 x layers x KV width x 2 bytes) + 300 MB.

    .venv/bin/python benchmarks/concurrency.py [--rounds 5] [--parallel 8] [--threads N]
        [--clients 1,4,8,16] [--max-wait 120] [--retries 3] [--no-in-process] [--json]
        [--model-file PATH | --home DIR]

Informational: it always exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_model import BenchHome, _cpu_times, median, wait_for_idle
from loopback_server import LoopbackServer, free_port
from server_speed import ServerProcess, descendants, process_table

NUM_PREDICT = 64
NUM_CTX = 4096  # hearth's default num_ctx: the peer's context and the ceiling's per sequence
TARGET_PEER_AT_1 = 0.95
TARGET_PEER_AT_8 = 3.0
TARGET_CEILING_AT_8 = 0.85
TARGET_TTFT_RATIO = 0.25
MEMORY_OVERHEAD = 300 * 1000 * 1000
# Above this share of the CPUs used by other processes during a measurement, it is rerun.
BUSY_SHARE = 0.10

# Raw completions in a chat-like shape, the same string to every side.
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


def prompt_text(question: str, code: str) -> str:
    """``code`` makes each measurement's prompts new to the servers: llama-cpp-python's server
    would otherwise skip reading a prompt that it has just read (it keeps the last one's cache).
    """
    return f"Conversation {code}\nUser: {question}\nAssistant: Sure! Here is a detailed answer.\n\n"


def prompts_for(clients: int, code: str) -> list[str]:
    return [prompt_text(QUESTIONS[i % len(QUESTIONS)], code) for i in range(clients)]


# -- the peer server -----------------------------------------------------------------------------

class PeerServer(LoopbackServer):
    """``python -m llama_cpp.server`` on a free loopback port; stopped by PID on exit."""

    name = "llama_cpp.server"
    ready_path = "/v1/models"
    log_prefix = "llama-cpp-server-"
    start_timeout_s = 120.0  # it loads the model before it answers

    def __init__(self, model_path: Path, threads: int) -> None:
        port = free_port()
        self.command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path),
                        "--n_threads", str(threads), "--n_threads_batch", str(threads),
                        "--n_ctx", str(NUM_CTX), "--interrupt_requests", "false",
                        "--port", str(port), "--host", "127.0.0.1"]
        print(f"$ {' '.join(self.command)}", file=sys.stderr)
        super().__init__(self.command, port)

    def stop(self) -> None:
        self.terminate()
        self.remove_log()


# -- part 1: concurrent clients ------------------------------------------------------------------

def completion_body(model: str, prompt: str) -> dict[str, Any]:
    return {"model": model, "prompt": prompt, "max_tokens": NUM_PREDICT, "temperature": 0}


def concurrent_completions(base: str, model: str, prompts: list[str]) -> dict[str, Any]:
    """One thread per client; all send at once; wall time from the release to the last answer."""
    import httpx

    n = len(prompts)
    gate = threading.Barrier(n + 1)
    tokens = [0] * n
    finished = [0.0] * n
    errors: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(timeout=httpx.Timeout(600.0)) as http:
            gate.wait()
            try:
                response = http.post(f"{base}/v1/completions",
                                     json=completion_body(model, prompts[index]))
                response.raise_for_status()
                tokens[index] = int(response.json()["usage"]["completion_tokens"])
            except Exception as exc:  # counted, never fatal
                errors.append(f"{type(exc).__name__}: {exc}")
            finished[index] = time.perf_counter()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = max(finished) - started
    total = sum(tokens)
    return {"tokens": total, "per_request": tokens, "wall_s": wall,
            "tok_s": total / wall if wall > 0 else 0.0, "errors": errors}


def concurrent_in_process(runtime: Any, model: str, prompts: list[str]) -> dict[str, Any]:
    """The same requests through hearth's ``Runtime`` in this process (its batching engine on a
    thread): what hearth serve costs on top of the engine is HTTP and the runner process."""
    from hearth.api.types import GenerateRequest, Options

    n = len(prompts)
    gate = threading.Barrier(n + 1)
    tokens = [0] * n
    finished = [0.0] * n
    errors: list[str] = []

    def client(index: int) -> None:
        request = GenerateRequest(model=model, prompt=prompts[index], raw=True, keep_alive=-1,
                                  options=Options(num_predict=NUM_PREDICT, temperature=0))
        gate.wait()
        try:
            for chunk in runtime.generate(request):
                if chunk.done:
                    tokens[index] = chunk.eval_count or 0
        except Exception as exc:  # counted, never fatal
            errors.append(f"{type(exc).__name__}: {exc}")
        finished[index] = time.perf_counter()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = max(finished) - started
    total = sum(tokens)
    return {"tokens": total, "per_request": tokens, "wall_s": wall,
            "tok_s": total / wall if wall > 0 else 0.0, "errors": errors}


class Ceiling:
    """N sequences decoded together by this process: ``llama_decode`` with one token per
    sequence per step, a greedy sampler chain per sequence, no server, no Python beyond the loop.
    """

    def __init__(self, model_path: Path, threads: int) -> None:
        import llama_cpp

        with contextlib.suppress(ImportError):
            from llama_cpp._logger import set_verbose

            set_verbose(False)
        self.llama = llama_cpp
        self.threads = threads
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {model_path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        n_embd = llama_cpp.llama_model_n_embd(self.model)
        n_head = llama_cpp.llama_model_n_head(self.model)
        self.n_layer = llama_cpp.llama_model_n_layer(self.model)
        self.kv_width = n_embd // n_head * llama_cpp.llama_model_n_head_kv(self.model)

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        buffer = (self.llama.llama_token * (len(data) + 8))()
        count = self.llama.llama_tokenize(self.vocab, data, len(data), buffer, len(buffer),
                                          True, False)
        return list(buffer[:count])

    def run(self, prompts: list[str], n_batch: int = 512) -> dict[str, Any]:
        """Context creation and a warm-up decode are outside the timed part."""
        ll = self.llama
        n = len(prompts)
        tokens = [self.tokenize(p) for p in prompts]
        params = ll.llama_context_default_params()
        params.n_ctx = NUM_CTX * n
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n
        params.kv_unified = False
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        params.no_perf = True
        params.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as hearth's BatchDecoder
        ctx = ll.llama_init_from_model(self.model, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create the context")
        batch = ll.llama_batch_init(n_batch, 0, n)
        samplers = []
        try:
            for _ in range(n):
                chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
                ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
                samplers.append(chain)
            memory = ll.llama_get_memory(ctx)

            def add(i: int, token: int, pos: int, seq: int, logits: bool) -> None:
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = logits

            def decode(count: int) -> None:
                batch.n_tokens = count
                status = ll.llama_decode(ctx, batch)
                if status != 0:
                    raise RuntimeError(f"llama_decode failed ({status})")

            # Warm-up: one token per sequence, then an empty cache.
            for seq in range(n):
                add(seq, tokens[seq][0], 0, seq, False)
            decode(n)
            ll.llama_memory_clear(memory, True)

            generated: list[list[int]] = [[] for _ in range(n)]
            started = time.perf_counter()
            # Prefill: all prompts packed into batches of n_batch tokens.
            count = 0
            pending: list[tuple[int, int]] = []  # (seq, batch index of its last prompt token)
            for seq, toks in enumerate(tokens):
                for pos, token in enumerate(toks):
                    last = pos == len(toks) - 1
                    add(count, token, pos, seq, last)
                    if last:
                        pending.append((seq, count))
                    count += 1
                    if count == n_batch:
                        decode(count)
                        for s, index in pending:
                            generated[s].append(ll.llama_sampler_sample(samplers[s], ctx, index))
                        count, pending = 0, []
            if count:
                decode(count)
                for s, index in pending:
                    generated[s].append(ll.llama_sampler_sample(samplers[s], ctx, index))
            # Decode: one token per sequence per step, NUM_PREDICT tokens each.
            while len(generated[0]) < NUM_PREDICT:
                for seq in range(n):
                    add(seq, generated[seq][-1], len(tokens[seq]) + len(generated[seq]) - 1, seq,
                        True)
                decode(n)
                for seq in range(n):
                    generated[seq].append(ll.llama_sampler_sample(samplers[seq], ctx, seq))
            wall = time.perf_counter() - started
        finally:
            for chain in samplers:
                ll.llama_sampler_free(chain)
            ll.llama_batch_free(batch)
            ll.llama_free(ctx)
        total = sum(len(g) for g in generated)
        return {"tokens": total, "wall_s": wall, "tok_s": total / wall,
                "prompt_tokens": sum(len(t) for t in tokens), "errors": []}

    def close(self) -> None:
        self.llama.llama_model_free(self.model)


def voluntary_switches(pids: list[int]) -> dict[tuple[int, int], int]:
    """Voluntary context switches so far of each thread of these processes. A llama.cpp thread
    that sleeps at each barrier of a graph (instead of spinning briefly) shows up here as
    hundreds per token; a decode that keeps its cores shows about none."""
    counts: dict[tuple[int, int], int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            counts[pid, int(task)] = int(line.split()[1])
    return counts


class CpuShare:
    """CPU seconds used while a block ran by a server process, by its children (the model
    runner), by this process (the clients), the share of all CPU time (every core) used by
    anyone else (``other_load``), and the voluntary context switches of the server's tree."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.server_s = self.children_s = self.self_s = self.wall_s = self.other_load = 0.0
        self.switches = 0

    def _sample(self) -> tuple[float, int, int, float, dict[int, float],
                               dict[tuple[int, int], int]]:
        idle, total = _cpu_times()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        tree: dict[int, float] = {}
        if self.pid is not None:
            table = process_table()
            tree = {p: table[p][1] for p in [self.pid, *descendants(self.pid, table)] if p in table}
        return (time.perf_counter(), idle, total, usage.ru_utime + usage.ru_stime, tree,
                voluntary_switches(list(tree)))

    def __enter__(self) -> CpuShare:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        now, idle, total, own, tree, switches = self._sample()
        then, idle0, total0, own0, tree0, switches0 = self._start
        # Threads that ended meanwhile are not counted; new ones count from zero.
        self.switches = sum(n - switches0.get(task, 0) for task, n in switches.items())
        tick = os.sysconf("SC_CLK_TCK")
        self.wall_s = now - then
        self.self_s = own - own0
        self.server_s = tree.get(self.pid, 0.0) - tree0.get(self.pid, 0.0) if self.pid else 0.0
        self.children_s = sum(cpu - tree0.get(p, 0.0) for p, cpu in tree.items() if p != self.pid)
        busy = (total - total0 - (idle - idle0)) / tick
        others = busy - self.self_s - self.server_s - self.children_s
        self.other_load = max(0.0, min(1.0, others / max(1e-9, (total - total0) / tick)))


def measured(args: argparse.Namespace, pid: int | None,
             attempt: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """``attempt(number)`` after waiting for idle CPUs, again (up to --retries times) while other
    processes used more than BUSY_SHARE of the CPUs; the quietest attempt is kept."""
    best: dict[str, Any] | None = None
    for tries in range(1, args.retries + 2):
        if args.max_wait > 0:
            wait_for_idle(args.max_wait, window_s=1.0)
        with CpuShare(pid) as use:
            result = attempt(tries - 1)
        result.update(other_load=use.other_load, bench_cpu_s=use.self_s, attempts=tries,
                      server_cpu_s=use.server_s, children_cpu_s=use.children_s,
                      switches_per_token=use.switches / max(1, result.get("tokens", 0)))
        if best is None or result["other_load"] < best["other_load"]:
            best = {**result}
        if result["other_load"] <= BUSY_SHARE:
            break
    assert best is not None
    best["attempts"] = tries
    return best


def side_main(kind: str, options: dict[str, Any], conn: Any) -> None:
    """A child process for one in-process side: the ceiling, decoding in the child's main
    thread, or hearth's Runtime. Each gets a process of its own because llama.cpp's OpenMP
    threads slow down (they sleep at every barrier instead of spinning) once a second thread
    of the same process has run a decode while the first still lives."""
    if kind == "ceiling":
        ceiling = Ceiling(Path(options["model_path"]), options["threads"])
        conn.send({"n_layer": ceiling.n_layer, "kv_width": ceiling.kv_width})
        run: Callable[[list[str]], dict[str, Any]] = ceiling.run
        close = ceiling.close
    else:
        from hearth.runtime import Runtime
        from hearth.store import ModelStore

        runtime = Runtime(ModelStore(Path(options["home"])), num_parallel=options["parallel"])
        conn.send({})
        run = functools.partial(concurrent_in_process, runtime, options["model"])
        close = runtime.close
    try:
        while (prompts := conn.recv()) is not None:
            try:
                conn.send(run(prompts))
            except Exception as exc:  # reported to the parent, which carries on
                conn.send({"exception": f"{type(exc).__name__}: {exc}"})
    finally:
        close()


class SideProcess:
    """``side_main`` in a spawned child; ``run(prompts)`` there, stopped by its PID at the end."""

    def __init__(self, kind: str, **options: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=side_main, args=(kind, options, child),
                                       name=f"concurrency-{kind}", daemon=True)
        self.process.start()
        child.close()
        try:
            self.info: dict[str, Any] = self.conn.recv()
        except EOFError:
            self.close()
            raise RuntimeError(f"the {kind} process exited {self.process.exitcode}") from None

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def run(self, prompts: list[str]) -> dict[str, Any]:
        self.conn.send(prompts)
        result = self.conn.recv()
        if "exception" in result:
            raise RuntimeError(result["exception"])
        return result

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM to its PID
            self.process.join(timeout=10)


def throughput_rounds(args: argparse.Namespace, model: str, hearth: ServerProcess,
                      peer: PeerServer, ceiling: SideProcess,
                      in_process: SideProcess | None) -> dict[str, Any]:
    sides: dict[str, tuple[int | None, Callable[[list[str]], dict[str, Any]]]] = {
        "hearth": (hearth.pid, lambda ps: concurrent_completions(hearth.base, model, ps)),
        # llama_cpp.server serves its one model under whatever name is asked.
        "peer": (peer.pid, lambda ps: concurrent_completions(peer.base, model, ps)),
        "ceiling": (ceiling.pid, ceiling.run),
    }
    if in_process is not None:
        sides["in_process"] = (in_process.pid, in_process.run)
    # Warm-up: one request each (hearth loads its model on the first one).
    warmup = {name: run(prompts_for(1, "000")) for name, (_, run) in sides.items()}
    names = list(sides)
    rows: list[dict[str, Any]] = []
    for round_index in range(args.rounds):
        for clients_index, n in enumerate(args.clients):
            shift = (round_index + clients_index) % len(names)
            order = names[shift:] + names[:shift]
            row: dict[str, Any] = {"round": round_index + 1, "clients": n, "order": order}
            for name in order:
                pid, run = sides[name]
                # The same prompts for every side; a rerun gets new ones of the same length.
                def attempt(number: int, run: Any = run, n: int = n,
                            code: str = f"{round_index + 1}{clients_index}") -> dict[str, Any]:
                    return run(prompts_for(n, f"{code}{number}"))

                result = measured(args, pid, attempt)
                row[name] = result
            rows.append(row)
            progress = ", ".join(
                f"{k} {row[k]['tok_s']:.1f} tok/s ({row[k]['tokens']} tok, other "
                f"{row[k]['other_load']:.0%}, try {row[k]['attempts']})" for k in names)
            print(f"round {round_index + 1}, {n:>2} clients: {progress}", file=sys.stderr)
    summary: dict[str, Any] = {}
    for n in args.clients:
        mine = [r for r in rows if r["clients"] == n]
        entry = {name: median([r[name]["tok_s"] for r in mine]) for name in names}
        entry["hearth_over_peer"] = median([r["hearth"]["tok_s"] / r["peer"]["tok_s"]
                                            for r in mine if r["peer"]["tok_s"]])
        entry["hearth_over_ceiling"] = median([r["hearth"]["tok_s"] / r["ceiling"]["tok_s"]
                                               for r in mine if r["ceiling"]["tok_s"]])
        if "in_process" in names:
            entry["in_process_over_ceiling"] = median(
                [r["in_process"]["tok_s"] / r["ceiling"]["tok_s"] for r in mine
                 if r["ceiling"]["tok_s"]])
        entry["expected_tokens"] = n * NUM_PREDICT
        entry["tokens"] = {name: sorted({r[name]["tokens"] for r in mine}) for name in names}
        entry["errors"] = sum(len(r[name]["errors"]) for r in mine for name in names)
        entry["max_other_load"] = max(r[name]["other_load"] for r in mine for name in names)
        entry["busy_runs"] = sum(r[name]["other_load"] > BUSY_SHARE for r in mine for name in names)
        entry["cpu_s"] = {name: {key: median([r[name][key] for r in mine]) for key in
                                 ("server_cpu_s", "children_cpu_s", "bench_cpu_s", "wall_s",
                                  "switches_per_token")}
                          for name in names}
        summary[str(n)] = entry
    return {"warmup": warmup, "per_round": rows, "median": summary}


# -- part 3: memory ------------------------------------------------------------------------------

def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def server_memory(server: ServerProcess, model_path: Path, shape: dict[str, int], parallel: int,
                  num_ctx: int) -> dict[str, Any]:
    processes = []
    for pid in [server.pid, *descendants(server.pid)]:
        with contextlib.suppress(OSError):
            processes.append({"pid": pid, "vm_hwm": status_kib(pid, "VmHWM") * 1024,
                              "vm_rss": status_kib(pid, "VmRSS") * 1024})
    model_bytes = model_path.stat().st_size
    kv_bytes = parallel * num_ctx * 2 * shape["n_layer"] * shape["kv_width"] * 2
    budget = model_bytes + kv_bytes + MEMORY_OVERHEAD
    peak = sum(p["vm_hwm"] for p in processes)
    return {"processes": processes, "peak_bytes": peak, "model_bytes": model_bytes,
            "kv_bytes": kv_bytes, "overhead_bytes": MEMORY_OVERHEAD, "budget_bytes": budget,
            "n_layer": shape["n_layer"], "kv_width": shape["kv_width"], "num_ctx": num_ctx,
            "under_budget": peak <= budget}


# -- part 2: time to first token of turn 5 -------------------------------------------------------

SYSTEM_PROMPT = (
    "You are Hearth, a patient and friendly assistant for a small community garden. You answer "
    "questions about vegetables, herbs, soil, compost, watering, pests and the weather. Keep "
    "answers practical and short, suggest one thing the gardener can do today, and say so "
    "plainly when you are not sure. The garden has twelve raised beds, a greenhouse, two compost "
    "bins, a rain barrel and a shed full of shared tools. Volunteers come on Tuesday evenings "
    "and Saturday mornings; most of them are beginners. Many of them garden with their "
    "children, so always mention when a plant, a tool or a treatment is not safe for small "
    "hands, and prefer methods that need no money and no special equipment."
)
USER_TURNS = [
    "Hello! I joined the garden last week and I have been given bed number seven, which is in "
    "the sunniest corner next to the greenhouse. The soil looks dry and a bit grey, there are "
    "some old tomato stakes in it and a few weeds with long roots. Last year somebody grew "
    "potatoes there, I think. I would like to grow tomatoes, lettuce, some herbs like basil and "
    "parsley, and maybe a few flowers for the bees. Where should I start, and what should I do "
    "with the soil before I plant anything at all?",
    "Thank you, that helps. I dug out the weeds and added two buckets of compost from the left "
    "bin, the one that looked darker and crumbly. Now I am wondering about the order of "
    "planting. The last frost here is usually in the middle of May, and it is the end of April "
    "now. The greenhouse has some space on the top shelf. Should I start the tomatoes from seed "
    "in the greenhouse or buy small plants from the market on Saturday? And can the lettuce go "
    "straight into the bed already, or is it too cold at night for it?",
    "I bought four tomato plants, two cherry and two plum ones, and sowed a row of lettuce "
    "yesterday. This morning I noticed small holes in the leaves of the basil seedlings in the "
    "greenhouse, and there were a few tiny black insects on the undersides of the leaves. The "
    "volunteer on Tuesday said they might be flea beetles or aphids, but she was not sure. I do "
    "not want to use strong chemicals because the garden is shared and children visit on "
    "Saturdays. What could these insects be and what can I do about them gently?",
    "Good news: the insects are mostly gone after I washed the leaves and moved the basil. Next "
    "week there is a heat wave coming, with temperatures over thirty degrees for five days, and "
    "I will be away from Wednesday to Sunday. The rain barrel is half full. Another volunteer "
    "offered to water once on Friday evening but cannot come more often. How can I make sure "
    "the tomatoes, the lettuce and the herbs survive the heat while I am away, and is there "
    "anything I should do before I leave on Tuesday evening?",
]
TURN_5 = "I am back and everything survived. What should I plant next in the empty spaces?"
TURN_REPLY_TOKENS = 96
TURN_5_PREDICT = 8


class ChatTimer:
    """One streaming ``/api/chat``: time to the first content chunk, the reply, the final chunk."""

    def __init__(self, http: Any, base: str, model: str, messages: list[dict[str, str]],
                 num_predict: int) -> None:
        body = {"model": model, "messages": messages, "stream": True, "keep_alive": -1,
                "options": {"temperature": 0, "seed": 0, "num_predict": num_predict}}
        pieces: list[str] = []
        self.ttft_s = float("nan")
        self.final: dict[str, Any] = {}
        started = time.perf_counter()
        with http.stream("POST", f"{base}/api/chat", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if "error" in item:
                    raise RuntimeError(f"/api/chat: {item['error']}")
                text = (item.get("message") or {}).get("content") or ""
                if text and not pieces:
                    self.ttft_s = time.perf_counter() - started
                pieces.append(text)
                if item.get("done"):
                    self.final = item
        self.reply = "".join(pieces)

    @property
    def prompt_tokens(self) -> int:
        return (self.final.get("prompt_eval_count") or 0) + (self.final.get("prompt_cache_count")
                                                              or 0)

    def summary(self) -> dict[str, Any]:
        return {"ttft_s": self.ttft_s, "prompt_tokens": self.prompt_tokens,
                "prompt_eval_count": self.final.get("prompt_eval_count"),
                "prompt_cache_count": self.final.get("prompt_cache_count") or 0,
                "prompt_eval_duration_s": (self.final.get("prompt_eval_duration") or 0) / 1e9,
                "load_duration_s": (self.final.get("load_duration") or 0) / 1e9}


def wait_unloaded(http: Any, base: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not http.get(f"{base}/api/ps").json().get("models"):
            return
        time.sleep(0.1)
    raise RuntimeError("/api/stop: the model was still loaded after 60 s")


def ttft_benchmark(args: argparse.Namespace, model: str, server: ServerProcess) -> dict[str, Any]:
    import httpx

    base = server.base
    with httpx.Client(timeout=httpx.Timeout(600.0)) as http:
        history: list[dict[str, str]] = [{"role": "system", "content": SYSTEM_PROMPT}]
        turn4 = None
        replies = []
        for text in USER_TURNS:
            history.append({"role": "user", "content": text})
            turn4 = ChatTimer(http, base, model, history, TURN_REPLY_TOKENS)
            history.append({"role": "assistant", "content": turn4.reply})
            replies.append(turn4.final.get("eval_count"))
        assert turn4 is not None
        turn4_messages = history[:-1]
        turn5_messages = [*history, {"role": "user", "content": TURN_5}]
        unrelated = [{"role": "system", "content": "You translate short English phrases into "
                      "French."}, {"role": "user", "content": "Good morning."}]

        def warm_attempt(_: int) -> dict[str, Any]:
            # The slot holds turns 1-4 again, as the last request of the history left it.
            ChatTimer(http, base, model, turn4_messages, TURN_REPLY_TOKENS)
            return timed_turn5()

        def cold_attempt(_: int) -> dict[str, Any]:
            # Unload, reload with an unrelated chat, then the same turn-5 request.
            http.post(f"{base}/api/stop", json={"model": model}).raise_for_status()
            wait_unloaded(http, base)
            ChatTimer(http, base, model, unrelated, 4)
            return timed_turn5()

        def timed_turn5() -> dict[str, Any]:
            chat = ChatTimer(http, base, model, turn5_messages, TURN_5_PREDICT)
            return {**chat.summary(), "reply": chat.reply}

        reps = []
        for rep in range(args.ttft_reps):
            warm_row = measured(args, server.pid, warm_attempt)
            cold_row = measured(args, server.pid, cold_attempt)
            warm, cold = warm_row["ttft_s"], cold_row["ttft_s"]
            reps.append({"rep": rep + 1, "warm": warm_row, "cold": cold_row, "ratio": warm / cold,
                         "same_reply": warm_row["reply"] == cold_row["reply"]})
            print(f"ttft rep {rep + 1}: warm {warm * 1000:.1f} ms "
                  f"(cached {warm_row['prompt_cache_count']}), cold {cold * 1000:.1f} ms "
                  f"(cached {cold_row['prompt_cache_count']})", file=sys.stderr)
    return {
        "history_tokens": turn4.prompt_tokens + (turn4.final.get("eval_count") or 0),
        "turn5_prompt_tokens": reps[0]["warm"]["prompt_tokens"],
        "reply_tokens": replies,
        "per_rep": reps,
        "warm_ttft_s": median([r["warm"]["ttft_s"] for r in reps]),
        "cold_ttft_s": median([r["cold"]["ttft_s"] for r in reps]),
        "ratio": median([r["ratio"] for r in reps]),
        "warm_cached": median([r["warm"]["prompt_cache_count"] for r in reps]),
        "cold_cached": median([r["cold"]["prompt_cache_count"] for r in reps]),
    }


# -- report --------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(results: dict[str, Any]) -> None:
    t = results["throughput"]["median"]
    print(f"concurrency, {results['model']} ({results['model_path']}), {results['threads']} "
          f"thread(s), {NUM_PREDICT} new tokens per request, temperature 0, hearth "
          f"HEARTH_NUM_PARALLEL={results['parallel']}, {results['rounds']} rounds interleaved "
          "(medians)")
    print(f"hearth: {results['hearth_command']}")
    print(f"peer:   {results['peer_command']}")
    print()
    print("1. aggregate generated tokens/s, N clients at once, POST /v1/completions "
          "(ceiling: N sequences in one llama_decode batch, no server)")
    inproc = "in_process" in next(iter(t.values()))
    print(f"{'clients':>7}  {'hearth':>8}  {'peer':>8}  {'ceiling':>8}  {'hearth/peer':>11}  "
          f"{'hearth/ceiling':>14}  {'tokens h/p/c (of)':>24}  {'other load':>10}"
          + (f"  {'in-process':>10}  {'in-proc/ceiling':>15}" if inproc else ""))
    for n, e in t.items():
        toks = "/".join(",".join(str(x) for x in e["tokens"][k]) for k in
                        ("hearth", "peer", "ceiling"))
        print(f"{n:>7}  {e['hearth']:>8.1f}  {e['peer']:>8.1f}  {e['ceiling']:>8.1f}  "
              f"{e['hearth_over_peer']:>11.2f}  {e['hearth_over_ceiling']:>14.2f}  "
              f"{toks + ' (' + str(e['expected_tokens']) + ')':>24}  "
              f"{'max ' + format(e['max_other_load'], '.0%'):>10}"
              + (f"  {e['in_process']:>10.1f}  {e['in_process_over_ceiling']:>15.2f}"
                 if inproc else ""))
    if inproc:
        print("in-process (diagnostic): the same requests through hearth's Runtime called "
              "directly (its batching engine on a thread), no HTTP and no runner process")
    p = results["parallel"]
    if any(int(n) > p for n in t):
        print(f"with more clients than {p} slots, {p} decode together and the rest wait their "
              f"turn (e.g. 16 clients: {p} decode, {16 - p} wait)")
    checks = []
    if "1" in t:
        checks.append(("hearth/peer at 1", t["1"]["hearth_over_peer"], ">=", TARGET_PEER_AT_1))
    if "8" in t:
        checks.append(("hearth/peer at 8", t["8"]["hearth_over_peer"], ">=", TARGET_PEER_AT_8))
        checks.append(("hearth/ceiling at 8", t["8"]["hearth_over_ceiling"], ">=",
                       TARGET_CEILING_AT_8))
    for label, value, op, target in checks:
        print(f"{label}: {value:.2f} (target {op} {target}: {verdict(value >= target)})")
    print("per run (medians): CPU seconds of the serving process + its children (hearth: the "
          "server + its runner), wall seconds, voluntary context switches per generated token "
          "(decoding threads that sleep at barriers instead of spinning)")
    for n, e in t.items():
        parts = []
        for name in ("hearth", "peer", "ceiling", *(["in_process"] if inproc else [])):
            c = e["cpu_s"][name]
            cpu = (f"{c['server_cpu_s']:.2f}+{c['children_cpu_s']:.2f}" if c["children_cpu_s"]
                   else f"{c['server_cpu_s']:.2f}")
            parts.append(f"{name} {cpu} s, wall {c['wall_s']:.2f} s, "
                         f"{c['switches_per_token']:.0f} sw/tok")
        print(f"{n:>7}  " + " | ".join(parts))
    busy = sum(e["busy_runs"] for e in t.values())
    if busy:
        print(f"{busy} measurement(s) kept despite other processes using > {BUSY_SHARE:.0%} of "
              f"the CPUs after {results['retries']} retries: those figures are unreliable")
    errors = sum(e["errors"] for e in t.values())
    if errors:
        print(f"failed requests: {errors} (see --json)")
    c = results["ttft"]
    print()
    print(f"2. time to first token of turn 5, streaming /api/chat; history before turn 5 "
          f"{c['history_tokens']} tokens, turn-5 prompt {c['turn5_prompt_tokens']} tokens; "
          f"{len(c['per_rep'])} repetitions (medians)")
    print(f"{'':>6}  {'TTFT ms':>8}  {'prompt cached':>13}  {'computed':>8}  {'other load':>10}")
    for kind in ("warm", "cold"):
        rows = [r[kind] for r in c["per_rep"]]
        print(f"{kind:>6}  {c[kind + '_ttft_s'] * 1000:>8.1f}  "
              f"{median([r['prompt_cache_count'] for r in rows]):>13.0f}  "
              f"{median([r['prompt_eval_count'] or 0 for r in rows]):>8.0f}  "
              f"{'max ' + format(max(r['other_load'] for r in rows), '.0%'):>10}")
    print(f"warm/cold: {c['ratio']:.3f} (target <= {TARGET_TTFT_RATIO}: "
          f"{verdict(c['ratio'] <= TARGET_TTFT_RATIO)}); same reply warm and cold: "
          f"{'yes' if all(r['same_reply'] for r in c['per_rep']) else 'NO'}")
    m = results["memory"]
    mb = 1e6
    print()
    print(f"3. peak resident memory (VmHWM) of hearth serve + runner after serving "
          f"{m['streams']} streams at once: {m['peak_bytes'] / mb:.0f} MB ("
          + ", ".join(f"pid {x['pid']} {x['vm_hwm'] / mb:.0f} MB" for x in m["processes"]) + ")")
    print(f"budget: model {m['model_bytes'] / mb:.0f} MB + KV {p} x {m['num_ctx']} x 2 x "
          f"{m['n_layer']} x {m['kv_width']} x 2 B = {m['kv_bytes'] / mb:.0f} MB + "
          f"{m['overhead_bytes'] / mb:.0f} MB = {m['budget_bytes'] / mb:.0f} MB: "
          f"{'under' if m['under_budget'] else 'OVER'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-file", help="GGUF to use (default: pull smollm2 into --home)")
    parser.add_argument("--home", help="HEARTH_HOME to use (default: a temp folder)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=8, help="HEARTH_NUM_PARALLEL for hearth")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--clients", default="1,4,8,16", help="comma-separated client counts")
    parser.add_argument("--ttft-reps", type=int, default=3)
    parser.add_argument("--max-wait", type=float, default=120.0, metavar="SECONDS",
                        help="before each measurement, wait up to this long for idle CPUs")
    parser.add_argument("--no-in-process", dest="in_process", action="store_false",
                        help="skip the diagnostic side: hearth's Runtime called directly")
    parser.add_argument("--retries", type=int, default=3,
                        help="times to rerun a measurement during which other processes were busy")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    args.clients = [int(x) for x in args.clients.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the servers are stopped by PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from hearth import config

    # hearth serve reads these from its environment (ServerProcess copies os.environ).
    os.environ["HEARTH_NUM_THREAD"] = str(args.threads)
    os.environ["HEARTH_KEEP_ALIVE"] = "-1"  # no unload between rounds
    num_ctx = config.context_length()
    results: dict[str, Any] = {"benchmark": "concurrency", "threads": args.threads,
                               "parallel": args.parallel, "rounds": args.rounds,
                               "retries": args.retries, "busy_share": BUSY_SHARE,
                               "num_predict": NUM_PREDICT, "clients": args.clients}
    with BenchHome(args.home) as home:
        model, model_path = home.ensure_model(args.model_file)
        results.update(model=model, model_path=str(model_path))
        results["hearth_command"] = (f"HEARTH_HOME={home.path} HEARTH_HOST=127.0.0.1:PORT "
                                     f"HEARTH_NUM_PARALLEL={args.parallel} HEARTH_NUM_THREAD="
                                     f"{args.threads} HEARTH_KEEP_ALIVE=-1 hearth serve")
        with contextlib.ExitStack() as stack:
            ceiling = SideProcess("ceiling", model_path=str(model_path), threads=args.threads)
            stack.callback(ceiling.close)
            in_process = None
            if args.in_process:
                in_process = SideProcess("in_process", home=str(home.path), model=model,
                                         parallel=args.parallel)
                stack.callback(in_process.close)
            hearth = ServerProcess(home.path, args.parallel)

            def stop_hearth() -> None:
                results["server_exit"] = hearth.stop()
                results["leftover_processes"] = hearth.leftovers
                hearth.remove_log()

            stack.callback(stop_hearth)
            try:
                peer = PeerServer(model_path, args.threads)
                stack.callback(peer.stop)
                results["peer_command"] = " ".join(["python", *peer.command[1:]])
                results["throughput"] = throughput_rounds(args, model, hearth, peer, ceiling,
                                                          in_process)
                # Idle from here on: their memory back, nothing of theirs running.
                peer.stop()
                ceiling.close()
                if in_process is not None:
                    in_process.close()
                results["memory"] = server_memory(hearth, model_path, ceiling.info,
                                                  args.parallel, num_ctx)
                results["memory"]["streams"] = min(max(args.clients), args.parallel)
                results["ttft"] = ttft_benchmark(args, model, hearth)
            except BaseException:
                print(f"hearth serve log (tail):\n{hearth.log_tail()}", file=sys.stderr)
                raise
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
        print(f"concurrency: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(0)
