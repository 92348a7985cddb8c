"""A model runner: one child process per loaded model, holding its llama.cpp context.

Started by ``runner_process.RunnerProcess`` as ``python -m hearth.engine.runner``. It speaks the
JSON lines of ``runner_protocol.py``: commands on stdin, replies on a private copy of stdout (fd
1 itself is pointed at stderr, so nothing llama.cpp prints can corrupt the protocol). If the
parent dies, stdin closes and the runner exits; if the runner dies, the parent fails its requests
and loads the model again on the next one.

A generation runner batches requests in a ``BatchDecoder`` on its own thread; an embedding runner
answers one ``embed`` at a time on the command loop. Either answers ``ping`` with how long its
current step has run, so the supervisor can tell a slow runner from a hung one, and a decoder
thread that dies takes the whole runner with it: a runner that accepts jobs it will never answer
is worse than one that is gone.

``HEARTH_RUNNER_FAULT`` (tests only) makes a runner misbehave on purpose: ``hang-load``,
``hang-step``, ``slow-steps``, ``ignore-cancel``, ``decode-error``, ``decoder-dies``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
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

        self.send = send
        self.outbox = EventOutbox(lambda events: send({"op": "events",
                                                       "events": [event_to_wire(e) for e in events]}))
        self.decoder = BatchDecoder(Path(command["path"]), settings_from_wire(command["settings"]),
                                    int(command["n_parallel"]))
        inject_faults(self.decoder)
        self.decoder.after_step = self.outbox.step_finished
        self.loop = threading.Thread(target=self._run_decoder, name="hearth-decoder", daemon=True)
        self.loop.start()
        vocab = self.decoder.vocab
        send({"op": "loaded", "load_ns": self.decoder.load_ns, "context": self.decoder.slot_context,
              "vocab": {"size": vocab.size, "bos_text": vocab.bos_text, "eos_text": vocab.eos_text}})

    def _run_decoder(self) -> None:
        try:
            self.decoder.run()
        except BaseException as exc:  # noqa: BLE001 - reported, then the runner ends
            sys.stderr.write(f"hearth runner: the decoder thread died: {type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
            os._exit(70)  # the supervisor sees the exit and fails every request in flight

    def busy_for(self) -> float:
        started = self.decoder.step_started
        return time.monotonic() - started if started else 0.0

    def handle(self, op: str, command: dict[str, Any]) -> None:
        from hearth.engine.grammar import compile_grammar
        from hearth.engine.jobs import Event, Job
        from hearth.engine.runner_protocol import sampling_from_wire
        from hearth.errors import HearthError

        if op in VOCAB_OPS:
            self.send(answer_vocab_op(self.decoder.vocab, op, command))
        elif op == "generate":
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

    def busy_for(self) -> float:
        return 0.0  # embeddings run on the command loop: a hung one leaves pings unanswered

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

FAULT = os.environ.get("HEARTH_RUNNER_FAULT", "")
VOCAB_OPS = {"tokenize", "detokenize", "fill_in_middle"}


def answer_vocab_op(vocab: Any, op: str, command: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer lives here, with the model: a vocabulary llama.cpp chokes on kills this
    process, not the server's."""
    if op == "tokenize":
        tokens = vocab.tokenize(str(command["text"]), add_special=bool(command["add_special"]),
                                parse_special=bool(command["parse_special"]))
        return {"op": "tokens", "id": command["id"], "tokens": tokens}
    if op == "detokenize":
        return {"op": "text", "id": command["id"], "text": vocab.detokenize(list(command["tokens"]))}
    tokens = vocab.fill_in_middle(str(command["prefix"]), str(command["suffix"]))
    return {"op": "tokens", "id": command["id"], "tokens": tokens}


def inject_faults(decoder: Any) -> None:
    """Test-only misbehaviour (HEARTH_RUNNER_FAULT), to prove the supervisor copes with it."""
    if FAULT == "hang-step":
        original = decoder._decode

        def hang() -> int:
            time.sleep(3600)
            return original()

        decoder._decode = hang
    elif FAULT == "slow-steps":
        original = decoder._decode

        def slow_step() -> int:
            time.sleep(0.05)
            return original()

        decoder._decode = slow_step
    elif FAULT == "decode-error":
        decoder._decode = lambda: -3
    elif FAULT == "decoder-dies":
        def die() -> int:
            raise SystemExit("decoder thread ends")  # not an Exception: escapes the step guard

        decoder._decode = die
    elif FAULT == "ignore-cancel":
        # Slow steps and deaf to cancels: a request that will not let go of its slot.
        original = decoder._decode
        decoder.cancel = lambda request_id: None

        def slow() -> int:
            time.sleep(0.2)
            return original()

        decoder._decode = slow


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
            if op == "ping":
                send({"op": "pong", "id": command.get("id"),
                      "busy_for": runner.busy_for() if runner is not None else 0.0,
                      "steps": getattr(getattr(runner, "decoder", None), "steps", 0)})
            elif op == "load" and runner is None:
                kind = RUNNER_KINDS.get(command.get("kind", "generate"))
                if kind is None:
                    raise EngineError(f"unknown runner kind {command.get('kind')!r}")
                if FAULT == "hang-load":
                    time.sleep(3600)
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
        except Exception as exc:  # noqa: BLE001 - one bad command fails alone; the runner lives
            if op == "load":
                raise
            send({"op": "error", "id": command.get("id"), "error": "EngineError",
                  "message": f"the model runner could not handle {op!r}: {type(exc).__name__}: {exc}"})
    if runner is not None:
        runner.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
