"""The caller's side of a model runner (see ``runner.py``): engines whose model lives in a child
process supervised by ``runner_process.RunnerProcess``.

``RunnerEngine`` generates (events routed to the waiting requests by id); ``RunnerEmbeddingEngine``
embeds (one request, one reply). Either way a crash in llama.cpp fails the requests in flight
with a clear error instead of taking the caller's process down.
"""

from __future__ import annotations

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
from hearth.engine.vocabulary import check_unicode
from hearth.errors import EngineError
from hearth.prompt.context import check_fits

__all__ = ["RunnerEmbeddingEngine", "RunnerEngine"]


# A cancel is honoured at the decoder's next step. A cancelled request still running after
# this long, while the runner went on stepping (so it is not merely slow: a slow or hung step
# is the heartbeat's business), is one the runner will not let go of: the runner is killed so
# the slot cannot stay held forever.
CANCEL_GRACE_SECONDS = 10.0
STEPS_TO_HONOUR_A_CANCEL = 3


class RunnerEngine:
    def __init__(self, path: Path, settings: LoadSettings, n_parallel: int,
                 label: str | None = None) -> None:
        self.settings = settings
        self.n_parallel = n_parallel
        self._pending: dict[int, queue.Queue[Event]] = {}
        self._lock = threading.Lock()
        self.runner = RunnerProcess(label or path.name)
        self.pid = self.runner.pid
        self.runner.on_message = self._route
        self.runner.on_death = self._fail_all
        try:
            self.runner.send(load_command(path, settings, n_parallel=n_parallel))
            reply = self.runner.read_load_reply()
        except BaseException:
            self.runner.stop()
            raise
        self.load_ns = int(reply["load_ns"])
        self.context_length = int(reply["context"])
        # The tokenizer is the runner's: a vocabulary llama.cpp cannot read costs that process.
        self.vocab = RunnerVocab(self.runner, reply.get("vocab") or {})

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

    def generate(self, tokens: list[int], sampling: SamplingSettings, *, grammar: str | dict[str, Any] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Iterator[EngineChunk]:
        self.check_fits(tokens)
        if not self.alive:
            raise EngineError(self.runner.dead_reason or "the model runner is gone")
        request_id = self.runner.next_id()
        events: queue.Queue[Event] = queue.Queue()
        with self._lock:
            self._pending[request_id] = events
        try:
            self.runner.send({"op": "generate", "id": request_id, "tokens": list(tokens),
                              "sampling": sampling_to_wire(sampling), "grammar": grammar})
        except BaseException:
            with self._lock:
                self._pending.pop(request_id, None)
            raise

        def cancel() -> None:
            self.runner.send_quietly({"op": "cancel", "id": request_id})
            self._watch_cancel(request_id, self.runner.steps, 0.0)

        yield from stream_events(events, cancel, cancelled)

    def _watch_cancel(self, request_id: int, steps_then: int, waited: float) -> None:
        grace = min(CANCEL_GRACE_SECONDS, self.runner.hang_timeout)
        timer = threading.Timer(grace, self._end_if_stuck, args=(request_id, steps_then, waited + grace))
        timer.daemon = True
        timer.start()

    def _end_if_stuck(self, request_id: int, steps_then: int, waited: float) -> None:
        with self._lock:
            pending = request_id in self._pending
        if not pending or not self.runner.alive:
            return
        if self.runner.steps < steps_then + STEPS_TO_HONOUR_A_CANCEL:
            self._watch_cancel(request_id, steps_then, waited)  # slow, not deaf: look again later
            return
        self.runner.kill(f"the model runner for {self.runner.label} did not let go of a cancelled "
                         f"request within {waited:g} s while it went on decoding; it was stopped and "
                         "the model will be loaded again on the next request")

    def close(self) -> None:
        self.runner.close()


class RunnerVocab:
    """The ``Vocab`` of a model in a runner: each call is one round trip on its pipe (well
    under a millisecond), and the special-token texts come with the load reply."""

    def __init__(self, runner: RunnerProcess, facts: dict[str, Any]) -> None:
        self._runner = runner
        self.size = int(facts.get("size", 0))
        self.bos_text = str(facts.get("bos_text", ""))
        self.eos_text = str(facts.get("eos_text", ""))

    def _ask(self, op: str, **fields: Any) -> dict[str, Any]:
        return self._runner.request({"op": op, "id": self._runner.next_id(), **fields})

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        check_unicode(text)
        return list(self._ask("tokenize", text=text, add_special=add_special,
                              parse_special=parse_special)["tokens"])

    def detokenize(self, tokens: list[int]) -> str:
        return str(self._ask("detokenize", tokens=list(tokens))["text"])

    def fill_in_middle(self, prefix: str, suffix: str) -> list[int] | None:
        check_unicode(prefix)
        check_unicode(suffix)
        tokens = self._ask("fill_in_middle", prefix=prefix, suffix=suffix)["tokens"]
        return None if tokens is None else list(tokens)

    def close(self) -> None:
        """Nothing of its own to free: the runner holds the vocabulary."""


class RunnerEmbeddingEngine:
    """An embedding context in a runner process (the server's and the Python API's embeddings)."""

    n_parallel = 1

    def __init__(self, path: Path, settings: LoadSettings, *, pooling_type: int | None = None,
                 label: str | None = None) -> None:
        self.settings = settings
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

    @property
    def alive(self) -> bool:
        return self.runner.alive

    def embed(self, texts: list[str], *, truncate: bool = True) -> tuple[list[list[float]], int]:
        for text in texts:
            check_unicode(text)
        reply = self.runner.request({"op": "embed", "id": self.runner.next_id(), "texts": list(texts),
                                     "truncate": truncate})
        return reply["vectors"], int(reply["count"])

    def close(self) -> None:
        self.runner.close()
