"""The server's side of a model runner (see ``runner.py``): start it, send it requests, route
its events to the waiting requests, and notice when it dies.

A dead runner (segfault, abort, out-of-memory kill) fails every request it had with a clear
error and reports ``alive = False``; the scheduler then drops it, and the next request for
the model starts a new runner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hearth.engine.batch import Event, event_from_wire
from hearth.engine.chunks import EngineChunk
from hearth.engine.local_engine import check_fits, stream_events
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.engine.vocabulary import Vocabulary
from hearth.errors import EngineError


def describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class RunnerEngine:
    def __init__(self, path: Path, settings: LoadSettings, n_parallel: int,
                 label: str | None = None) -> None:
        self.label = label or path.name  # the model's name in messages
        self.settings = settings
        self.n_parallel = n_parallel
        self._ids = itertools.count(1)
        self._pending: dict[int, queue.Queue[Event]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._dead_reason = ""
        env = dict(os.environ)
        env.setdefault("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hearth.engine.runner"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env,
            text=True, encoding="utf-8", bufsize=1,
        )
        self.pid = self.process.pid
        self._send({"op": "load", "path": str(path), "settings": dataclasses.asdict(settings),
                    "n_parallel": n_parallel})
        # Tokenizing here (vocabulary only, no weights) saves a round trip per request; it is
        # read while the runner loads the weights, so the two waits overlap.
        self.vocab = Vocabulary.load(path)
        try:
            reply = self._read_reply()
        except BaseException:
            self.vocab.close()
            raise
        self.load_ns = int(reply["load_ns"])
        self.context_length = int(reply["context"])
        self._reader = threading.Thread(target=self._read_events, name=f"hearth-runner-{self.pid}",
                                        daemon=True)
        self._reader.start()

    def _read_reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(timeout=30)
            raise EngineError(f"the model runner failed to load {self.label} ({describe_exit(code)}); "
                              "run `hearth doctor`")
        reply = json.loads(line)
        if reply.get("op") == "error":
            self.process.wait(timeout=30)
            raise EngineError(reply.get("message", "the model runner failed to load the model"))
        return reply

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            with self._write_lock:
                self.process.stdin.write(json.dumps(message, separators=(",", ":")) + "\n")
                self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise EngineError(f"the model runner is gone: {describe_exit(self.process.poll())}") from exc

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("op") != "events":
                continue
            for wire in message["events"]:
                event = event_from_wire(wire)
                with self._lock:
                    target = self._pending.get(event.request_id)
                    if event.done:
                        self._pending.pop(event.request_id, None)
                if target is not None:
                    target.put(event)
        # The pipe closed: the runner is gone. Every waiting request learns why.
        code = self.process.wait()
        self._dead_reason = (f"the model runner stopped unexpectedly while running {self.label} "
                             f"({describe_exit(code)}); the model will be loaded again on the next "
                             "request; if this repeats, run `hearth doctor`")
        with self._lock:
            pending, self._pending = self._pending, {}
        for request_id, target in pending.items():
            target.put(Event(request_id, done=True, reason="error", error=self._dead_reason))

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self._dead_reason

    def check_fits(self, tokens: list[int]) -> None:
        check_fits(tokens, self.context_length)

    def generate(self, tokens: list[int], sampling: SamplingSettings, *, grammar: str | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Iterator[EngineChunk]:
        self.check_fits(tokens)
        if not self.alive:
            raise EngineError(self._dead_reason or "the model runner is gone")
        request_id = next(self._ids)
        events: queue.Queue[Event] = queue.Queue()
        with self._lock:
            self._pending[request_id] = events
        self._send({"op": "generate", "id": request_id, "tokens": list(tokens),
                    "sampling": dataclasses.asdict(sampling), "grammar": grammar})

        def cancel() -> None:
            if self.alive:
                with contextlib.suppress(EngineError):
                    self._send({"op": "cancel", "id": request_id})

        yield from stream_events(events, cancel, cancelled)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self._send({"op": "close"})
                self.process.wait(timeout=30)
            except (EngineError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.vocab.close()
