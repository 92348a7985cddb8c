"""The batching engine in this process: a ``BatchDecoder`` on its own thread.

``hearth run`` uses this (inside the CLI's forked crash guard); the server and the Python API
put the same decoder in a runner child process instead (``runner_client.py``), so a crash costs
one model, not the caller.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hearth.engine.batch import BatchDecoder
from hearth.engine.chunks import EngineChunk, chunk_from_event
from hearth.engine.jobs import Event, Job
from hearth.engine.outbox import EventOutbox
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.prompt.context import check_fits

POLL_SECONDS = 0.05


def stream_events(events: queue.Queue[Event], cancel: Callable[[], None],
                  cancelled: Callable[[], bool] | None) -> Iterator[EngineChunk]:
    """Turn a request's events into engine chunks; cancel the request if the caller stops
    listening (generator closed) or raises its ``cancelled`` flag."""
    finished = False
    asked_to_cancel = False
    try:
        while True:
            try:
                event = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if cancelled is not None and not asked_to_cancel and cancelled():
                    cancel()
                    asked_to_cancel = True
                continue
            chunk = chunk_from_event(event)
            if event.done:
                finished = True
            yield chunk
            if finished:
                return
    finally:
        if not finished:
            cancel()


class LocalBatchEngine:
    def __init__(self, path: Path, settings: LoadSettings, n_parallel: int = 1) -> None:
        self.decoder = BatchDecoder(path, settings, n_parallel)
        self.vocab = self.decoder.vocab
        self.settings = settings
        self.n_parallel = n_parallel
        self.context_length = self.decoder.slot_context
        self.load_ns = self.decoder.load_ns
        self.pid = None
        self._ids = itertools.count(1)
        # The consumer thread is woken once per burst, not per token (see outbox.py).
        self._queues: dict[int, queue.Queue[Event]] = {}
        self._outbox = EventOutbox(self._deliver)
        self.decoder.after_step = self._outbox.step_finished
        self._thread = threading.Thread(target=self.decoder.run, name="hearth-decoder", daemon=True)
        self._thread.start()

    def _deliver(self, events: list[Event]) -> None:
        for event in events:
            target = self._queues.get(event.request_id)
            if event.done:
                self._queues.pop(event.request_id, None)
            if target is not None:
                target.put(event)

    def _cancel(self, request_id: int) -> None:
        self.decoder.cancel(request_id)
        self._outbox.step_finished()  # a job cancelled while it waited has no step to flush it

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def check_fits(self, tokens: list[int]) -> None:
        check_fits(tokens, self.context_length)

    def generate(self, tokens: list[int], sampling: SamplingSettings, *, grammar: str | dict[str, Any] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Iterator[EngineChunk]:
        from hearth.engine.grammar import compile_grammar

        self.check_fits(tokens)
        request_id = next(self._ids)
        events: queue.Queue[Event] = queue.Queue()
        job = Job(request_id, list(tokens), sampling, compile_grammar(grammar), self._outbox.add,
                  should_stop=cancelled)
        self._queues[request_id] = events
        try:
            self.decoder.submit(job)
        except BaseException:
            self._queues.pop(request_id, None)
            raise
        yield from stream_events(events, lambda: self._cancel(request_id), cancelled)

    def close(self) -> None:
        self.decoder.close()
        self._thread.join(timeout=30)
        self._outbox.step_finished(idle=True)
