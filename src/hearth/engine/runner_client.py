"""The caller's side of a model runner (see ``runner.py``): engines whose model lives in a child
process supervised by ``runner_process.RunnerProcess``.

``RunnerEngine`` generates (events routed to the waiting requests by id); ``RunnerEmbeddingEngine``
embeds (one request, one reply). Either way a crash in llama.cpp fails the requests in flight
with a clear error instead of taking the caller's process down.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hearth.engine.chunks import EngineChunk
from hearth.engine.jobs import Event
from hearth.engine.local_engine import stream_events
from hearth.engine.runner_process import RunnerProcess
from hearth.engine.runner_protocol import event_from_wire, load_command, sampling_to_wire
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.engine.vocabulary import Vocabulary
from hearth.errors import EngineError
from hearth.prompt.context import check_fits

__all__ = ["RunnerEmbeddingEngine", "RunnerEngine"]


class RunnerEngine:
    def __init__(self, path: Path, settings: LoadSettings, n_parallel: int,
                 label: str | None = None) -> None:
        self.settings = settings
        self.n_parallel = n_parallel
        self._ids = itertools.count(1)
        self._pending: dict[int, queue.Queue[Event]] = {}
        self._lock = threading.Lock()
        self.runner = RunnerProcess(label or path.name)
        self.pid = self.runner.pid
        self.vocab: Vocabulary | None = None
        try:
            self.runner.send(load_command(path, settings, n_parallel=n_parallel))
            # Tokenizing here (vocabulary only, no weights) saves a round trip per request; it is
            # read while the runner loads the weights, so the two waits overlap.
            self.vocab = Vocabulary.load(path)
            reply = self.runner.read_load_reply()
        except BaseException:
            if self.vocab is not None:
                self.vocab.close()
            self.runner.stop()
            raise
        self.load_ns = int(reply["load_ns"])
        self.context_length = int(reply["context"])
        self.runner.on_message = self._route
        self.runner.on_death = self._fail_all
        self.runner.start_reading()

    def _route(self, message: dict[str, Any]) -> None:
        if message.get("op") == "error" and message.get("id") is not None:
            # A request the runner refused (e.g. a grammar it cannot compile): end it.
            events = [{"request_id": int(message["id"]), "done": True, "reason": "error",
                       "error": message.get("message", "the model runner failed")}]
        elif message.get("op") == "events":
            events = message["events"]
        else:
            return
        for wire in events:
            event = event_from_wire(wire)
            with self._lock:
                target = self._pending.get(event.request_id)
                if event.done:
                    self._pending.pop(event.request_id, None)
            if target is not None:
                target.put(event)

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for request_id, target in pending.items():
            target.put(Event(request_id, done=True, reason="error", error=reason))

    @property
    def alive(self) -> bool:
        return self.runner.alive

    def check_fits(self, tokens: list[int]) -> None:
        check_fits(tokens, self.context_length)

    def generate(self, tokens: list[int], sampling: SamplingSettings, *, grammar: str | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Iterator[EngineChunk]:
        self.check_fits(tokens)
        if not self.alive:
            raise EngineError(self.runner.dead_reason or "the model runner is gone")
        request_id = next(self._ids)
        events: queue.Queue[Event] = queue.Queue()
        with self._lock:
            self._pending[request_id] = events
        self.runner.send({"op": "generate", "id": request_id, "tokens": list(tokens),
                          "sampling": sampling_to_wire(sampling), "grammar": grammar})

        def cancel() -> None:
            self.runner.send_quietly({"op": "cancel", "id": request_id})

        yield from stream_events(events, cancel, cancelled)

    def close(self) -> None:
        self.runner.close()
        if self.vocab is not None:
            self.vocab.close()


class RunnerEmbeddingEngine:
    """An embedding context in a runner process (the server's and the Python API's embeddings)."""

    n_parallel = 1

    def __init__(self, path: Path, settings: LoadSettings, *, pooling_type: int | None = None,
                 label: str | None = None) -> None:
        self.settings = settings
        self._ids = itertools.count(1)
        self.runner = RunnerProcess(label or path.name)
        self.pid = self.runner.pid
        try:
            self.runner.send(load_command(path, settings, kind="embedding", pooling_type=pooling_type))
            reply = self.runner.read_load_reply()
        except BaseException:
            self.runner.stop()
            raise
        self.load_ns = int(reply["load_ns"])
        self.context_length = int(reply["context"])
        self.runner.start_reading()

    @property
    def alive(self) -> bool:
        return self.runner.alive

    def embed(self, texts: list[str], *, truncate: bool = True) -> tuple[list[list[float]], int]:
        reply = self.runner.request({"op": "embed", "id": next(self._ids), "texts": list(texts),
                                     "truncate": truncate})
        return reply["vectors"], int(reply["count"])

    def close(self) -> None:
        self.runner.close()
