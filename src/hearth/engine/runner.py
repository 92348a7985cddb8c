"""A model runner: one child process per loaded model, holding its llama.cpp context.

Started by ``runner_process.RunnerProcess`` as ``python -m hearth.engine.runner``. It speaks the
JSON lines of ``runner_protocol.py``: commands on stdin, replies on a private copy of stdout (fd
1 itself is pointed at stderr, so nothing llama.cpp prints can corrupt the protocol). If the
parent dies, stdin closes and the runner exits; if the runner dies, the parent fails its requests
and loads the model again on the next one.

A generation runner batches requests in a ``BatchDecoder`` on its own thread; an embedding runner
answers one ``embed`` at a time on the command loop.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO


def open_protocol_channel() -> TextIO:
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


class GenerationRunner:
    def __init__(self, command: dict[str, Any], send: Any) -> None:
        from hearth.engine.batch import BatchDecoder
        from hearth.engine.outbox import EventOutbox
        from hearth.engine.runner_protocol import event_to_wire, settings_from_wire

        self.outbox = EventOutbox(lambda events: send({"op": "events",
                                                       "events": [event_to_wire(e) for e in events]}))
        self.decoder = BatchDecoder(Path(command["path"]), settings_from_wire(command["settings"]),
                                    int(command["n_parallel"]))
        self.decoder.after_step = self.outbox.step_finished
        self.loop = threading.Thread(target=self.decoder.run, name="hearth-decoder", daemon=True)
        self.loop.start()
        send({"op": "loaded", "load_ns": self.decoder.load_ns, "context": self.decoder.slot_context})

    def handle(self, op: str, command: dict[str, Any]) -> None:
        from hearth.engine.grammar import compile_grammar
        from hearth.engine.jobs import Event, Job
        from hearth.engine.runner_protocol import sampling_from_wire
        from hearth.errors import HearthError

        if op == "generate":
            job = Job(int(command["id"]), list(command["tokens"]), sampling_from_wire(command["sampling"]),
                      compile_grammar(command.get("grammar")), self.outbox.add)
            try:
                self.decoder.submit(job)
            except HearthError as exc:
                self.outbox.add(Event(job.request_id, done=True, reason="error", error=exc.message))
                self.outbox.step_finished()
        elif op == "cancel":
            self.decoder.cancel(int(command["id"]))
            self.outbox.step_finished()  # a job cancelled while it waited has no step to flush it

    def close(self) -> None:
        self.decoder.close()
        self.loop.join(timeout=30)
        self.outbox.step_finished(idle=True)


class EmbeddingRunner:
    def __init__(self, command: dict[str, Any], send: Any) -> None:
        from hearth.engine.embedding import LlamaEmbeddingEngine
        from hearth.engine.runner_protocol import settings_from_wire

        self.send = send
        self.engine = LlamaEmbeddingEngine.load(Path(command["path"]), settings_from_wire(command["settings"]),
                                                pooling_type=command.get("pooling_type"))
        send({"op": "loaded", "load_ns": self.engine.load_ns, "context": self.engine.context_length})

    def handle(self, op: str, command: dict[str, Any]) -> None:
        from hearth.errors import EngineError, HearthError

        if op != "embed":
            return
        try:
            vectors, count = self.engine.embed(list(command["texts"]), truncate=bool(command["truncate"]))
        except HearthError:
            raise
        except Exception as exc:  # noqa: BLE001 - one request's failure, not the runner's death
            raise EngineError(f"embedding failed: {type(exc).__name__}: {exc}") from exc
        self.send({"op": "embedded", "id": command["id"], "vectors": vectors, "count": count})

    def close(self) -> None:
        self.engine.close()


RUNNER_KINDS = {"generate": GenerationRunner, "embedding": EmbeddingRunner}


def main() -> int:
    channel = open_protocol_channel()
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with lock:
            channel.write(line + "\n")

    from hearth.errors import EngineError, HearthError

    runner: GenerationRunner | EmbeddingRunner | None = None
    for line in sys.stdin:
        try:
            command = json.loads(line)
        except ValueError:
            continue
        op = command.get("op")
        try:
            if op == "load" and runner is None:
                kind = RUNNER_KINDS.get(command.get("kind", "generate"))
                if kind is None:
                    raise EngineError(f"unknown runner kind {command.get('kind')!r}")
                runner = kind(command, send)
            elif op == "close":
                break
            elif runner is not None and isinstance(op, str):
                runner.handle(op, command)
        except HearthError as exc:
            send({"op": "error", "id": command.get("id"), "error": type(exc).__name__,
                  "message": exc.message})
            if op == "load":
                return 1
    if runner is not None:
        runner.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
