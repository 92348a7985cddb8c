"""A model runner: one child process per loaded model, holding its llama.cpp context.

Started by ``runner_client.RunnerEngine`` as ``python -m hearth.engine.runner``. It speaks
JSON lines: commands on stdin, events on a private copy of stdout (fd 1 itself is pointed at
stderr, so nothing llama.cpp prints can corrupt the protocol). If the server dies, stdin
closes and the runner exits; if the runner dies, the server fails its requests and loads the
model again on the next one.

Commands: ``{"op": "load", "path", "settings", "n_parallel"}`` (first), ``{"op": "generate",
"id", "tokens", "sampling", "grammar"}``, ``{"op": "cancel", "id"}``, ``{"op": "close"}``.
Events: ``{"op": "loaded", "load_ns", "context"}``, ``{"op": "events", "events": [Event, ...]}``
(everything one decode step produced, in one line: see ``outbox.py``), ``{"op": "error", "message"}``.
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


def main() -> int:
    channel = open_protocol_channel()
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with lock:
            channel.write(line + "\n")

    from hearth.engine.batch import BatchDecoder, Event, Job, event_to_wire
    from hearth.engine.grammar import compile_grammar
    from hearth.engine.outbox import EventOutbox
    from hearth.engine.settings import LoadSettings, SamplingSettings
    from hearth.errors import HearthError

    decoder: BatchDecoder | None = None
    loop: threading.Thread | None = None
    outbox = EventOutbox(lambda events: send({"op": "events", "events": [event_to_wire(e) for e in events]}))
    emit = outbox.add

    for line in sys.stdin:
        try:
            command = json.loads(line)
        except ValueError:
            continue
        op = command.get("op")
        try:
            if op == "load":
                settings = dict(command["settings"])
                settings["adapters"] = tuple((str(p), float(s)) for p, s in settings.get("adapters", ()))
                decoder = BatchDecoder(Path(command["path"]), LoadSettings(**settings),
                                       int(command["n_parallel"]))
                decoder.after_step = outbox.step_finished
                loop = threading.Thread(target=decoder.run, name="hearth-decoder", daemon=True)
                loop.start()
                send({"op": "loaded", "load_ns": decoder.load_ns, "context": decoder.slot_context})
            elif op == "generate" and decoder is not None:
                sampling = dict(command["sampling"])
                sampling["stop"] = tuple(sampling.get("stop") or ())
                job = Job(int(command["id"]), list(command["tokens"]), SamplingSettings(**sampling),
                          compile_grammar(command.get("grammar")), emit)
                try:
                    decoder.submit(job)
                except HearthError as exc:
                    emit(Event(job.request_id, done=True, reason="error", error=exc.message))
                    outbox.step_finished()
            elif op == "cancel" and decoder is not None:
                decoder.cancel(int(command["id"]))
                outbox.step_finished()  # a job cancelled while it waited has no step to flush it
            elif op == "close":
                break
        except HearthError as exc:
            send({"op": "error", "id": command.get("id"), "message": exc.message})
            if op == "load":
                return 1
    if decoder is not None:
        decoder.close()
    if loop is not None:
        loop.join(timeout=30)
    outbox.step_finished(idle=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
