"""The supervisor of one runner child process, shared by every kind of runner (generation,
embedding): start it, send commands, route its replies to whoever waits on an id, and notice
when it dies.

A dead runner (segfault, abort, out-of-memory kill) fails every request it had with a clear
error and reports ``alive = False``; the scheduler then drops it, and the next request for the
model starts a new runner.

A hung runner is made a dead one: the load must answer within HEARTH_LOAD_TIMEOUT, and once
loaded a heartbeat asks every few seconds how long the current step has run; a runner that stays
silent, or stuck in one step, for HEARTH_RUNNER_TIMEOUT is killed, with that as the reason its
requests are given.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from hearth.errors import EngineError
from hearth.exits import describe_exit

# Replies routed by request id; everything else ("events") goes to the message handler.
Handler = Callable[[dict[str, Any]], None]


def error_from_reply(reply: dict[str, Any]) -> Exception:
    """The runner's ``{"op": "error", "error": "ContextOverflow", ...}`` as that hearth error, so a
    caller sees the same error (and HTTP status) as with the engine in its own process."""
    from hearth import errors

    message = reply.get("message", "the model runner failed")
    kind = getattr(errors, str(reply.get("error", "")), None)
    if isinstance(kind, type) and issubclass(kind, errors.HearthError):
        try:
            return kind(message)
        except TypeError:
            pass
    return EngineError(message)


def child_env() -> dict[str, str]:
    """The environment for a Python child that runs hearth code: this one, with this process's
    import path when none is set (a checkout run without installing)."""
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    return env


# How often a loaded runner is asked how it is doing.
HEARTBEAT_SECONDS = 2.0


class RunnerProcess:
    def __init__(self, label: str) -> None:
        from hearth import config

        self.label = label  # the model's name in messages
        self.load_timeout = config.load_timeout()
        self.hang_timeout = config.runner_timeout()
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._load_reply: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._loaded = False
        self._last_heard = time.monotonic()
        self._busy_for = 0.0  # how long the runner's current step had run at its last pong
        self.steps = 0  # decode steps the runner had begun at its last pong
        self._kill_reason = ""
        self._closing = False  # an asked-for end is no death worth a warning
        self.dead_reason = ""
        self.on_message: Handler = lambda message: None
        self.on_death: Callable[[str], None] = lambda reason: None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hearth.engine.runner"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=child_env(),
            text=True, encoding="utf-8", bufsize=1,
        )
        self.pid = self.process.pid
        threading.Thread(target=self._read, name=f"hearth-runner-{self.pid}", daemon=True).start()

    def next_id(self) -> int:
        """Ids for every command that expects an answer, one sequence per runner, so a reply
        can never reach the wrong waiter."""
        return next(self._ids)

    # -- start-up ---------------------------------------------------------------------------------

    def read_load_reply(self) -> dict[str, Any]:
        """The runner's answer to ``load``, within HEARTH_LOAD_TIMEOUT; on any failure the child
        is gone when this raises."""
        try:
            reply = self._load_reply.get(timeout=self.load_timeout)
        except queue.Empty:
            self.stop()
            raise EngineError(f"the model runner did not finish loading {self.label} within "
                              f"{self.load_timeout:g} s (HEARTH_LOAD_TIMEOUT); it was stopped") from None
        if reply is None:
            self.stop()
            raise EngineError(f"the model runner failed to load {self.label} "
                              f"({describe_exit(self.process.returncode)}); run `hearth doctor`")
        if reply.get("op") != "loaded":
            self.stop()
            raise error_from_reply(reply)
        self._loaded = True
        self._last_heard = time.monotonic()
        threading.Thread(target=self._heartbeat, name=f"hearth-heartbeat-{self.pid}", daemon=True).start()
        return reply

    # -- health -----------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        while self.alive:
            time.sleep(min(HEARTBEAT_SECONDS, self.hang_timeout / 2))
            if not self.alive:
                return
            silent = time.monotonic() - self._last_heard
            if silent > self.hang_timeout or self._busy_for > self.hang_timeout:
                what = (f"stuck in one decode step for {self._busy_for:.0f} s" if self._busy_for > self.hang_timeout
                        else f"silent for {silent:.0f} s")
                self.kill(f"the model runner for {self.label} stopped responding ({what}, over "
                          f"HEARTH_RUNNER_TIMEOUT={self.hang_timeout:g} s); it was stopped and the model "
                          "will be loaded again on the next request")
                return
            with contextlib.suppress(EngineError):
                self.send({"op": "ping", "id": None})

    def kill(self, reason: str) -> None:
        """End a runner that cannot be trusted any more; its requests fail with ``reason``."""
        with self._lock:
            self._kill_reason = self._kill_reason or reason
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()

    # -- traffic ----------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            with self._write_lock:
                self.process.stdin.write(json.dumps(message, separators=(",", ":")) + "\n")
                self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise EngineError(self.dead_reason or f"the model runner is gone: "
                              f"{describe_exit(self.process.poll())}") from exc

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a command with an ``id`` and wait for the reply with that id (or the death; a
        hung runner is killed by the heartbeat, which ends this wait too)."""
        replies: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            if self.dead_reason:
                raise EngineError(self.dead_reason)
            self._waiting[message["id"]] = replies
        try:
            self.send(message)
            reply = replies.get()
        finally:
            with self._lock:
                self._waiting.pop(message["id"], None)
        if reply.get("op") == "error":
            raise error_from_reply(reply)
        return reply

    def _read(self) -> None:
        assert self.process.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us by close()
            for line in self.process.stdout:
                self._last_heard = time.monotonic()
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if not self._loaded and message.get("op") in ("loaded", "error") and message.get("id") is None:
                    self._load_reply.put(message)
                    continue
                if message.get("op") == "pong":
                    self._busy_for = float(message.get("busy_for") or 0.0)
                    self.steps = int(message.get("steps") or 0)
                    continue
                with self._lock:
                    waiting = self._waiting.get(message.get("id")) if "id" in message else None
                if waiting is not None:
                    waiting.put(message)
                else:
                    self.on_message(message)
        # The pipe closed: the runner is gone. Every waiting request learns why.
        code = self.process.wait()
        self._load_reply.put(None)
        reason = self._kill_reason or (
            f"the model runner stopped unexpectedly while running {self.label} "
            f"({describe_exit(code)}); the model will be loaded again on the next request; "
            "if this repeats, run `hearth doctor`")
        if not self._closing:
            logging.getLogger("hearth.runner").warning("runner %s: %s", self.pid, reason)
        with self._lock:
            self.dead_reason = reason
            waiting_all, self._waiting = self._waiting, {}
        for replies in waiting_all.values():
            replies.put({"op": "error", "message": reason})
        self.on_death(reason)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self.dead_reason

    def close(self) -> None:
        """Ask the runner to finish, kill it if it does not, and close the pipes."""
        self._closing = True
        if self.process.poll() is None:
            try:
                self.send({"op": "close"})
                self.process.wait(timeout=30)
            except (EngineError, subprocess.TimeoutExpired):
                pass
        self.stop()

    def stop(self) -> None:
        """End the runner now (if it still runs) and close the pipes."""
        self._closing = self._closing or not self._kill_reason
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def send_quietly(self, message: dict[str, Any]) -> None:
        """Send if the runner still lives; a cancel to a dead runner has nothing left to stop."""
        if self.alive:
            with contextlib.suppress(EngineError):
                self.send(message)
