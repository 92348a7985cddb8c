"""Server speed: streaming ``/api/generate`` against the engine in-process, and ``/api/tags`` load.

1. Decode through HTTP: a real ``hearth serve`` subprocess on a free loopback port (its model
   runs in a runner child process), one client streaming ``POST /api/generate`` (NDJSON, read
   with httpx), against ``Runtime.generate`` in this process (the same batching engine on a
   thread) on the same model, request and ``num_parallel``. Both take ``eval_count`` and
   ``eval_duration`` from the final chunk (the engine's own figure), and a client-side rate: the
   final chunk's ``eval_count`` over the time between the first content chunk and the final chunk
   as the client saw them, which adds what streaming costs. Rounds interleave the two sides, the
   order alternating; the verdict is the median of the per-round ratios server/in-process.
2. ``GET /api/tags`` with 200 requests in flight at once, each on its own connection, in waves,
   from two clients: a minimal asyncio HTTP/1.1 client and ``httpx.AsyncClient``. Every request
   must answer 200 with the model listed. Latency percentiles and requests/s, with one client
   serial (``/api/tags`` and ``/api/version``) and ``Runtime.list_models`` in-process for
   comparison, and the CPU the server and the client used.

    .venv/bin/python benchmarks/server_speed.py [--rounds 5] [--threads N] [--json]
        [--concurrency 200] [--waves 5] [--num-parallel N] [--model-file PATH | --home DIR]

Informational: it always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_model import BenchHome, hearth_command, hearth_env, median, wait_for_idle
from loopback_server import LoopbackServer, free_port

TARGET_RATIO = 0.95
DEFAULT_PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
# Above this share of the CPUs used by other processes during a run, the round is rerun/flagged.
BUSY_SHARE = 0.10


# -- CPU accounting ------------------------------------------------------------------------------

def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return idle, sum(fields)


def process_table() -> dict[int, tuple[int, float]]:
    """Every process: pid -> (parent pid, user + system CPU seconds of all its threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                data = handle.read()
        except OSError:
            continue  # gone meanwhile
        fields = data[data.rindex(")") + 2:].split()  # fields[0] is field 3 ("state")
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


def descendants(root: int, table: dict[int, tuple[int, float]] | None = None) -> list[int]:
    table = process_table() if table is None else table
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        children = [child for child, (parent, _) in table.items() if parent == pid]
        found += children
        todo += children
    return found


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuUse:
    """Who used the CPUs while a block ran: this process, the server, and everyone else.

    ``bench_model.OtherLoad`` counts finished children only; the server and the model runners
    here keep running, so their CPU time is read from /proc. ``other_load`` is the fraction of all
    CPU time (every core) used by processes that are not this one or its descendants.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.other_load = 0.0
        self.bench_s = 0.0  # this process: the client, or the in-process engine
        self.server_s = 0.0  # the server and its runner
        self.server_http_s = 0.0  # the server process alone: HTTP and streaming, no decoding
        self.runner_s = 0.0  # this process's own runner children (isolated in-process side)
        self.wall_s = 0.0

    def _sample(self) -> dict[str, float] | None:
        try:
            idle, total = _cpu_times()
            table = process_table()
        except (OSError, ValueError, IndexError):
            return None
        me, server = os.getpid(), self.server_pid
        server_tree = [server, *descendants(server, table)] if server in table else []
        ours = [me, *descendants(me, table)]
        return {
            "time": time.perf_counter(), "idle": idle, "total": total, "self": self_cpu_s(),
            "ours": sum(table[pid][1] for pid in ours if pid in table),
            "server": sum(table[pid][1] for pid in server_tree),
            "server_http": table[server][1] if server in table else 0.0,
            "own_proc": table[me][1],
        }

    def __enter__(self) -> CpuUse:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end, start = self._sample(), self._start
        if start is None or end is None:
            return
        delta = {key: end[key] - start[key] for key in end}
        tick = os.sysconf("SC_CLK_TCK")
        self.wall_s = delta["time"]
        self.bench_s = delta["self"]
        self.server_s = delta["server"]
        self.server_http_s = delta["server_http"]
        self.runner_s = max(0.0, delta["ours"] - delta["own_proc"] - delta["server"])
        total = delta["total"] / tick
        if total > 0:
            busy_other = total - delta["idle"] / tick - delta["ours"]
            self.other_load = max(0.0, min(1.0, busy_other / total))


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2:].split()[0] != "Z"


# -- the server ----------------------------------------------------------------------------------

class ServerProcess(LoopbackServer):
    """``hearth serve`` on a free loopback port; stopped with SIGTERM (by PID) on exit."""

    name = "hearth serve"
    ready_path = "/api/version"
    log_prefix = "hearth-serve-"

    def __init__(self, home: Path, num_parallel: int) -> None:
        self.leftovers: list[int] = []
        port = free_port()
        env = hearth_env(home)
        env["HEARTH_HOST"] = f"127.0.0.1:{port}"
        env["HEARTH_NUM_PARALLEL"] = str(num_parallel)
        print(f"$ HEARTH_HOME={home} HEARTH_HOST={env['HEARTH_HOST']} "
              f"HEARTH_NUM_PARALLEL={num_parallel} hearth serve --log-level warning",
              file=sys.stderr)
        super().__init__([hearth_command(), "serve", "--log-level", "warning"], port, env)

    def stop(self) -> int | None:
        """SIGTERM, up to 20 s to drain and unload, then SIGKILL. Returns the exit status.

        Its model runners should exit with it; any still running 10 s later is stopped by its
        PID and listed in ``self.leftovers``."""
        children = descendants(self.pid) if self.process.poll() is None else []
        code = self.terminate()
        deadline = time.monotonic() + 10
        alive = children
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if _running(pid)]
        self.leftovers = alive
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        return code


# -- part 1: decode, server against in-process ---------------------------------------------------

def generate_payload(args: argparse.Namespace, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": args.prompt,
        "raw": False,
        "stream": True,
        "keep_alive": -1,  # neither side unloads between rounds
        "options": {"temperature": 0, "seed": 0, "num_predict": args.num_predict,
                    "num_thread": args.threads},
    }


class StreamTimer:
    """Arrival times of one stream's chunks, and the final chunk's figures."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first = 0.0
        self.last = 0.0
        self.chunks = 0
        self.pieces: list[str] = []
        self.final: dict[str, Any] | None = None

    def see(self, item: dict[str, Any]) -> None:
        now = time.perf_counter()
        if "error" in item:
            raise RuntimeError(f"stream ended with an error: {item['error']}")
        if item.get("done"):
            self.final = item
            self.last = now
        text = item.get("response") or ""
        if text:
            self.chunks += 1
            self.pieces.append(text)
            self.first = self.first or now

    def result(self, use: CpuUse) -> dict[str, Any]:
        final = self.final
        if final is None:
            raise RuntimeError("the stream ended without a final (done) chunk")
        count = final.get("eval_count") or 0
        duration_s = (final.get("eval_duration") or 0) / 1e9
        client_s = self.last - self.first if self.first else 0.0
        return {
            "rate": count / duration_s if duration_s > 0 else 0.0,
            "client_rate": count / client_s if client_s > 0 else 0.0,
            "count": count,
            "chunks": self.chunks,
            "eval_s": duration_s,
            "client_s": client_s,
            "first_chunk_s": (self.first - self.started) if self.first else 0.0,
            "prompt_tokens": final.get("prompt_eval_count") or 0,
            "done_reason": final.get("done_reason"),
            "wall_s": use.wall_s,
            "other_load": use.other_load,
            "bench_cpu_s": use.bench_s,
            "server_cpu_s": use.server_s,
            "server_http_cpu_s": use.server_http_s,
            "runner_cpu_s": use.runner_s,
            "text": "".join(self.pieces),
        }


def run_server(client: Any, server: ServerProcess, payload: dict[str, Any]) -> dict[str, Any]:
    with CpuUse(server.pid) as use:
        timer = StreamTimer()
        with client.stream("POST", f"{server.base}/api/generate", json=payload) as response:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"POST /api/generate answered {response.status_code}: "
                                   f"{response.text[:300]}")
            for line in response.iter_lines():
                if line:
                    timer.see(json.loads(line))
    return timer.result(use)


def run_in_process(runtime: Any, payload: dict[str, Any], server_pid: int) -> dict[str, Any]:
    from hearth.api.types import GenerateRequest

    with CpuUse(server_pid) as use:
        timer = StreamTimer()
        for chunk in runtime.generate(GenerateRequest(**payload)):
            timer.see(chunk.model_dump(exclude_none=True))
    return timer.result(use)


SIDES = ("server", "in_process", "runner")
SIDE_LABELS = {"server": "hearth serve over HTTP", "in_process": "Runtime in-process",
               "runner": "Runtime in-process with a runner child (isolated=True)"}


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def decode_rounds(args: argparse.Namespace, model: str, home: Path,
                  server: ServerProcess) -> dict[str, Any]:
    """Rounds of one stream on each side, the order rotating so that each side goes first.

    Besides the server and the engine in this process, a third side runs the engine in a runner
    child process of this one, without HTTP (the server's ``Runtime(isolated=True)``): it tells
    what of the difference is the runner's pipe and what is the HTTP server.
    """
    import httpx

    from hearth.runtime import Runtime
    from hearth.store import ModelStore

    payload = generate_payload(args, model)
    # The server's settings: its runner decodes with num_parallel slots, so these do too.
    runtimes = {"in_process": Runtime(ModelStore(home), num_parallel=args.num_parallel),
                "runner": Runtime(ModelStore(home), isolated=True, num_parallel=args.num_parallel)}
    rows: list[dict[str, Any]] = []
    # No read timeout: a round on a busy machine may stall, and that must show, not fail.
    with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client:

        def run(side: str) -> dict[str, Any]:
            if side == "server":
                return run_server(client, server, payload)
            return run_in_process(runtimes[side], payload, server.pid)

        try:
            warm = {side: run(side) for side in SIDES}  # loads the model on every side
            print("warm-up: " + ", ".join(f"{side} {warm[side]['rate']:.2f} tok/s"
                                          for side in SIDES), file=sys.stderr)
            for index in range(args.rounds):
                order = SIDES[index % 3:] + SIDES[:index % 3]
                for attempt in range(args.retries + 1):
                    runs = {}
                    for side in order:
                        if args.max_wait > 0:
                            wait_for_idle(args.max_wait)
                        runs[side] = run(side)
                    if max(r["other_load"] for r in runs.values()) <= BUSY_SHARE:
                        break
                    print(f"round {index + 1}: other processes were busy, "
                          f"{'retrying' if attempt < args.retries else 'keeping it'}",
                          file=sys.stderr)
                s, p, r = runs["server"], runs["in_process"], runs["runner"]
                rows.append({
                    "round": index + 1, "first": order[0], "attempts": attempt + 1, **runs,
                    "ratio": ratio(s["rate"], p["rate"]),
                    "client_ratio": ratio(s["client_rate"], p["client_rate"]),
                    "runner_ratio": ratio(r["rate"], p["rate"]),
                    "server_runner_ratio": ratio(s["rate"], r["rate"]),
                })
                print(f"round {index + 1}: " + ", ".join(
                    f"{side} {runs[side]['rate']:.2f} tok/s (client {runs[side]['client_rate']:.2f})"
                    for side in SIDES), file=sys.stderr)
        finally:
            for runtime in runtimes.values():
                runtime.close()

    def col(side: str, key: str) -> float:
        return median([row[side][key] for row in rows])

    texts = {row[side]["text"] for row in rows for side in SIDES}
    medians: dict[str, float] = {}
    for side in SIDES:
        for key in ("rate", "client_rate", "first_chunk_s", "bench_cpu_s", "server_cpu_s",
                    "server_http_cpu_s", "runner_cpu_s", "other_load"):
            medians[f"{side}_{key}"] = col(side, key)
    for key in ("ratio", "client_ratio", "runner_ratio", "server_runner_ratio"):
        medians[key] = median([row[key] for row in rows])
    return {"per_round": rows, "same_text": len(texts) == 1, "median": medians}


# -- part 2: /api/tags under load ----------------------------------------------------------------

def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_summary(latencies: list[float], seconds: float, errors: int) -> dict[str, Any]:
    count = len(latencies) + errors
    return {
        "requests": count,
        "errors": errors,
        "seconds": seconds,
        "requests_per_s": count / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p90_ms": percentile(latencies, 0.90) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
    }


def tags_ok(status: int, body: bytes, model: str) -> str | None:
    """None for a good answer, else what was wrong with it."""
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    try:
        names = [m.get("name", "") for m in json.loads(body)["models"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"not a tags answer: {body[:200]!r}"
    if not any(name.split(":")[0] == model for name in names):
        return f"model {model} not listed: {names}"
    return None


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, a lighter load generator than
    httpx: with 200 connections httpx's pool costs the client several times the CPU the server
    spends, and on 2 cores that CPU is taken from the server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None
            self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                              "Accept: application/json\r\n\r\n".encode())
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            length = None
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError("answer without Content-Length")
            return status, await self.reader.readexactly(length)
        except BaseException:
            await self.close()  # the next request opens a new connection
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def tags_load(client_kind: str, base: str, port: int, model: str, concurrency: int,
                    waves: int) -> dict[str, Any]:
    """``waves`` times: ``concurrency`` GET /api/tags at once, each on its own connection."""
    import httpx

    latencies: list[float] = []
    problems: list[str] = []
    per_wave: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))
    raw = [RawConnection(port) for _ in range(concurrency)]

    async def one(index: int, out: list[float], bad: list[str]) -> None:
        started = time.perf_counter()
        try:
            if client_kind == "raw":
                status, body = await asyncio.wait_for(raw[index].get("/api/tags"), 60.0)
            else:
                response = await client.get(f"{base}/api/tags")
                status, body = response.status_code, response.content
            problem = tags_ok(status, body, model)
        except Exception as exc:  # every failure counts as an error, none stops the load
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            bad.append(problem)
        else:
            out.append(time.perf_counter() - started)

    try:
        started_all = time.perf_counter()
        for wave in range(waves):
            wave_latencies: list[float] = []
            wave_bad: list[str] = []
            started = time.perf_counter()
            await asyncio.gather(*(one(i, wave_latencies, wave_bad) for i in range(concurrency)))
            summary = latency_summary(wave_latencies, time.perf_counter() - started, len(wave_bad))
            summary["wave"] = wave + 1
            per_wave.append(summary)
            latencies += wave_latencies
            problems += wave_bad
        total = latency_summary(latencies, time.perf_counter() - started_all, len(problems))
    finally:
        await client.aclose()
        for connection in raw:
            await connection.close()
    total["per_wave"] = per_wave
    total["first_errors"] = problems[:5]
    return total


def serial_gets(base: str, path: str, model: str, count: int) -> dict[str, Any]:
    """``count`` GETs one after the other on one keep-alive connection."""
    import httpx

    latencies: list[float] = []
    errors = 0
    with httpx.Client(timeout=httpx.Timeout(60.0)) as client:
        started_all = time.perf_counter()
        for _ in range(count):
            started = time.perf_counter()
            try:
                response = client.get(f"{base}{path}")
                if path == "/api/tags":
                    bad = tags_ok(response.status_code, response.content, model)
                else:
                    bad = None if response.status_code == 200 else f"HTTP {response.status_code}"
            except httpx.HTTPError:
                bad = "exception"
            if bad:
                errors += 1
            else:
                latencies.append(time.perf_counter() - started)
        return latency_summary(latencies, time.perf_counter() - started_all, errors)


def list_models_in_process(home: Path, count: int) -> dict[str, Any]:
    from hearth.runtime import Runtime
    from hearth.store import ModelStore

    runtime = Runtime(ModelStore(home))
    runtime.list_models().model_dump_json()
    latencies = []
    started_all = time.perf_counter()
    for _ in range(count):
        started = time.perf_counter()
        runtime.list_models().model_dump_json()
        latencies.append(time.perf_counter() - started)
    runtime.close()
    return latency_summary(latencies, time.perf_counter() - started_all, 0)


def run_wrk(base: str, concurrency: int, seconds: int) -> dict[str, Any] | None:
    """Optional: ``wrk`` on /api/tags where it is installed (never installed by this script)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    threads = max(1, min(os.cpu_count() or 1, concurrency))
    command = [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency",
               f"{base}/api/tags"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found: dict[str, Any] = {"command": " ".join(command[:-1] + ["URL"]), "rc": done.returncode}
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout)
    found["requests_per_s"] = float(rate.group(1)) if rate else None
    for label, key in (("50%", "p50"), ("90%", "p90"), ("99%", "p99")):
        match = re.search(rf"^\s*{re.escape(label)}\s+(\S+)", done.stdout, re.MULTILINE)
        found[key] = match.group(1) if match else None
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    socket_errors = re.search(r"Socket errors:.*", done.stdout)
    found["non_2xx"] = int(errors.group(1)) if errors else 0
    found["socket_errors"] = socket_errors.group(0) if socket_errors else None
    return found


def tags_benchmark(args: argparse.Namespace, model: str, home: Path,
                   server: ServerProcess) -> dict[str, Any]:
    if args.max_wait > 0:
        wait_for_idle(args.max_wait)
    results: dict[str, Any] = {"in_process": list_models_in_process(home, args.serial),
                               "serial": serial_gets(server.base, "/api/tags", model, args.serial),
                               # The HTTP stack alone: no store access, no worker thread.
                               "serial_version": serial_gets(server.base, "/api/version", model,
                                                             args.serial)}
    for kind in ("raw", "httpx"):
        if args.max_wait > 0:
            wait_for_idle(args.max_wait)
        with CpuUse(server.pid) as use:
            load = asyncio.run(tags_load(kind, server.base, server.port, model, args.concurrency,
                                         args.waves))
        load.update(other_load=use.other_load, server_cpu_s=use.server_s,
                    bench_cpu_s=use.bench_s, wall_s=use.wall_s)
        results[f"concurrent_{kind}"] = load
    results["wrk"] = None if args.no_wrk else run_wrk(server.base, args.concurrency, 10)
    return results


# -- report --------------------------------------------------------------------------------------

def report(results: dict[str, Any]) -> None:
    d = results["decode"]
    print(f"server speed, {results['model']} ({results['model_path']}), "
          f"{results['threads']} thread(s), {results['num_predict']} new tokens, num_parallel "
          f"{results['num_parallel']}, {results['rounds']} rounds interleaved; hearth serve "
          f"answered after {results['server_startup_s']:.2f}s")
    print()
    print("1. streaming /api/generate, one client: tok/s = eval_count / eval_duration of the final "
          "chunk;")
    print("   client: eval_count / time between the first content chunk and the final chunk as "
          "they arrived")
    print(f"{'round':>5}  {'first':<10}  {'server':>7}  {'in-proc':>7}  {'runner':>7}  "
          f"{'ratio s/i':>9}  {'client s/i':>13}  {'ratio':>6}  {'ratio r/i':>9}  "
          f"{'other load':>10}  {'tries':>5}")
    for row in d["per_round"]:
        s, p, r = row["server"], row["in_process"], row["runner"]
        other = max(row[side]["other_load"] for side in SIDES)
        print(f"{row['round']:>5}  {row['first']:<10}  {s['rate']:>7.2f}  {p['rate']:>7.2f}  "
              f"{r['rate']:>7.2f}  {row['ratio']:>9.3f}  "
              f"{s['client_rate']:>6.1f}/{p['client_rate']:<6.1f}  {row['client_ratio']:>6.3f}  "
              f"{row['runner_ratio']:>9.3f}  {other:>10.0%}  {row['attempts']:>5}")
    m = d["median"]
    print(f"{'median':>5}  {'':<10}  {m['server_rate']:>7.2f}  {m['in_process_rate']:>7.2f}  "
          f"{m['runner_rate']:>7.2f}  {m['ratio']:>9.3f}  "
          f"{m['server_client_rate']:>6.1f}/{m['in_process_client_rate']:<6.1f}  "
          f"{m['client_ratio']:>6.3f}  {m['runner_ratio']:>9.3f}")
    print("   (server: " + SIDE_LABELS["server"] + "; in-proc: " + SIDE_LABELS["in_process"]
          + "; runner: " + SIDE_LABELS["runner"] + ")")
    verdict = "meets" if m["ratio"] >= TARGET_RATIO else "BELOW"
    print(f"median ratio server/in-process = {m['ratio']:.3f} ({verdict} the target >= "
          f"{TARGET_RATIO}); client-side {m['client_ratio']:.3f}; runner/in-process "
          f"{m['runner_ratio']:.3f}; server/runner {m['server_runner_ratio']:.3f}")
    print(f"same generated text on every side and round: {'yes' if d['same_text'] else 'NO'}")
    print(f"median time to first chunk: server {m['server_first_chunk_s'] * 1000:.0f} ms, "
          f"in-process {m['in_process_first_chunk_s'] * 1000:.0f} ms, runner "
          f"{m['runner_first_chunk_s'] * 1000:.0f} ms")
    print(f"median CPU per stream: server {m['server_server_cpu_s']:.2f}s (runner + "
          f"{m['server_server_http_cpu_s']:.3f}s in the HTTP process) + client "
          f"{m['server_bench_cpu_s']:.3f}s; in-process {m['in_process_bench_cpu_s']:.2f}s; "
          f"runner side {m['runner_runner_cpu_s']:.2f}s + {m['runner_bench_cpu_s']:.3f}s here")
    busy = [row["round"] for row in d["per_round"]
            if max(row[side]["other_load"] for side in SIDES) > BUSY_SHARE]
    if busy:
        print(f"rounds {busy} ran while other processes used > {BUSY_SHARE:.0%} of the CPUs; "
              "their figures are unreliable")
    t = results["tags"]
    n = results["concurrency"]
    print()
    print(f"2. GET /api/tags: {n} requests in flight at once (one connection each), "
          f"{results['waves']} waves; the raw client is a minimal asyncio HTTP/1.1 client")
    print(f"{'how':<36}  {'requests':>8}  {'errors':>6}  {'req/s':>7}  {'p50 ms':>7}  "
          f"{'p90 ms':>7}  {'p99 ms':>7}  {'max ms':>7}  {'CPU srv/client':>14}  {'other':>5}")
    rows = []
    for kind, label in (("raw", "raw asyncio"), ("httpx", "httpx.AsyncClient")):
        load = t[f"concurrent_{kind}"]
        rows.append((f"{n} concurrent, {label}", load))
        rows += [(f"  wave {w['wave']}", w) for w in load["per_wave"]]
    rows += [("1 client serial, httpx.Client", t["serial"]),
             ("  same, GET /api/version", t["serial_version"]),
             ("Runtime.list_models in-process", t["in_process"])]
    for label, r in rows:
        line = (f"{label:<36}  {r['requests']:>8}  {r['errors']:>6}  {r['requests_per_s']:>7.0f}  "
                f"{r['p50_ms']:>7.1f}  {r['p90_ms']:>7.1f}  {r['p99_ms']:>7.1f}  {r['max_ms']:>7.1f}")
        if "server_cpu_s" in r:
            cpu = f"{r['server_cpu_s']:.2f}/{r['bench_cpu_s']:.2f} s"
            line += f"  {cpu:>14}  {r['other_load']:>5.0%}"
        print(line)
    errors = t["concurrent_raw"]["errors"] + t["concurrent_httpx"]["errors"]
    print(f"errors under load: {errors}"
          + (f" {t['concurrent_raw']['first_errors'] + t['concurrent_httpx']['first_errors']}"
             if errors else " (none)"))
    wrk = t["wrk"]
    if wrk is not None:
        print(f"wrk ({wrk['command']}): {wrk['requests_per_s']} req/s, p50 {wrk['p50']}, "
              f"p90 {wrk['p90']}, p99 {wrk['p99']}, non-2xx {wrk['non_2xx']}, "
              f"{wrk['socket_errors'] or 'no socket errors'}")
    else:
        print("wrk: not run (not installed, or --no-wrk)")
    status = results["server_exit"]
    how = f"killed by signal {-status}" if status is not None and status < 0 else f"exit {status}"
    left = results["leftover_processes"]
    print(f"server stopped with SIGTERM ({how}); "
          + (f"its processes {left} outlived it by 10 s (stopped by PID)" if left
             else "no runner process outlived it"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-file", help="GGUF to use (default: pull smollm2 into --home)")
    parser.add_argument("--home", help="HEARTH_HOME to use (default: a temp folder)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--num-predict", type=int, default=128)
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--num-parallel", type=int, default=None,
                        help="slots per loaded model, both sides (default: HEARTH_NUM_PARALLEL, "
                             "as hearth serve uses)")
    parser.add_argument("--max-wait", type=float, default=60.0, metavar="SECONDS",
                        help="before each run, wait up to this long for idle CPUs (0: never wait)")
    parser.add_argument("--retries", type=int, default=2,
                        help="times to rerun a round during which other processes were busy")
    parser.add_argument("--concurrency", type=int, default=200,
                        help="/api/tags requests in flight at once")
    parser.add_argument("--waves", type=int, default=5, help="waves of --concurrency requests")
    parser.add_argument("--serial", type=int, default=200,
                        help="/api/tags requests one at a time, for comparison")
    parser.add_argument("--no-wrk", action="store_true", help="skip wrk even where installed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.num_parallel is None:
        from hearth import config

        args.num_parallel = config.num_parallel()
    with BenchHome(args.home) as home:
        model, model_path = home.ensure_model(args.model_file)
        server = ServerProcess(home.path, args.num_parallel)
        try:
            decode = decode_rounds(args, model, home.path, server)
            tags = tags_benchmark(args, model, home.path, server)
        except BaseException:
            print(f"server log (tail):\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            server_exit = server.stop()
            server.remove_log()
    results = {
        "benchmark": "server_speed",
        "model": model,
        "model_path": str(model_path),
        "threads": args.threads,
        "num_predict": args.num_predict,
        "num_parallel": args.num_parallel,
        "prompt": args.prompt,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "waves": args.waves,
        "target_ratio": TARGET_RATIO,
        "server_startup_s": server.startup_s,
        "server_exit": server_exit,
        "leftover_processes": server.leftovers,
        "decode": decode,
        "tags": tags,
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 0


if __name__ == "__main__":
    # Not a pass/fail test: say what went wrong and still exit 0.
    try:
        main()
    except SystemExit as exc:  # bench_model exits with a message when the model is unusable
        if exc.code not in (0, None):
            print(f"server_speed: {exc.code}", file=sys.stderr)
    except Exception as exc:
        print(f"server_speed: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(0)
