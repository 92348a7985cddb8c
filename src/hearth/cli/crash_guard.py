"""Commands that run llama.cpp in this process do their work in a forked child, so that a crash
in native code (a segfault, an abort, the out-of-memory killer) ends as one line that names the
model, the operation and the signal, and exit status 1, instead of a bare "Segmentation fault".
An unexpected Python exception in the child (llama-cpp-python failing on input it did not
expect) is one line too, naming the exception; its traceback is printed only with ``--debug``.

Why a fork and not a runner process as the server uses: the fork happens after argument parsing
and before anything heavy is imported or loaded, so the child keeps the terminal, stdin and
everything the command already parsed, and the user waits for no second Python start or model
load (``benchmarks/engine_isolation.py`` measures it). The parent only waits. Ctrl-C and Ctrl-\\
reach the child from the terminal (the parent ignores them, from before the fork, so no key can
hit it in between); a SIGTERM or SIGHUP sent to the parent alone is passed on. The child dies
with the parent (Linux: PR_SET_PDEATHSIG; elsewhere it watches its parent), so killing
``hearth`` never leaves an orphan decoding in the background, and it leaves with ``os._exit``
so that nothing of the caller's runs twice.

``HEARTH_CRASH_GUARD=0`` runs the command in this process instead (for a debugger).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable

from hearth.exits import signal_name

# Signals a user or a supervisor sends to stop a command: the child stopping on one of them is
# not a crash, and the parent exits the way a shell expects (128 + the signal number).
STOP_SIGNALS = {signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE}
FROM_THE_TERMINAL = (signal.SIGINT, signal.SIGQUIT)  # sent to the whole foreground group
FORWARDED = (signal.SIGTERM, signal.SIGHUP)  # may be sent to the parent alone
PR_SET_PDEATHSIG = 1


def crash_message(work: str, signal_number: int) -> str:
    hint = " (out of memory?)" if signal_number == signal.SIGKILL else ""
    return (f"hearth: the engine crashed while {work}: killed by {signal_name(signal_number)}{hint}; "
            "run `hearth doctor`")


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    else:
        def watch() -> None:
            while not threading.Event().wait(1.0):
                if os.getppid() != parent:
                    os._exit(1)

        threading.Thread(target=watch, name="hearth-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def failure_message(work: str, exc: BaseException) -> str:
    """One line for an unexpected exception (not a ``HearthError``) in the child."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    detail = detail.replace("\r", "\\r").replace("\n", "\\n")
    return f"hearth: the engine failed while {work}: {detail} (run with --debug for the traceback)"


def _child(work: Callable[[], int], parent: int, handlers: dict[int, object], describe: str) -> None:
    """Run the work and leave: the exit status is all the parent needs."""
    from hearth import config

    for number, handler in handlers.items():
        signal.signal(number, handler)  # type: ignore[arg-type]
    code = 1
    try:
        _die_with_parent(parent)
        code = work()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = 130
    except BaseException as exc:  # a bug, or llama-cpp-python failing in Python: one line
        if config.debug():
            traceback.print_exc()
        else:
            print(failure_message(describe, exc), file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _wait(pid: int) -> int:
    def forward(number: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)

    previous = {number: signal.signal(number, forward) for number in FORWARDED}
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return 1
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return os.waitstatus_to_exitcode(status)


def run_guarded(work: Callable[[], int], describe: str) -> int:
    """``work()``'s exit status, run in a forked child where that is possible and wanted."""
    from hearth import config

    if not hasattr(os, "fork") or not config.crash_guard():
        return work()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    handlers = {number: signal.signal(number, signal.SIG_IGN) for number in FROM_THE_TERMINAL}
    pid = os.fork()
    if pid == 0:
        _child(work, parent, handlers, describe)
    try:
        code = _wait(pid)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
    if code >= 0:
        return code
    if -code in STOP_SIGNALS:
        return 128 - code
    print(crash_message(describe, -code), file=sys.stderr)
    return 1
