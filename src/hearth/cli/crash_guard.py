"""Commands that run llama.cpp in this process do their work in a forked child, so that a crash
in native code (a segfault, an abort, the out-of-memory killer) ends as one line that names the
model, the operation and the signal, and exit status 1, instead of a bare "Segmentation fault".

Why a fork and not a runner process as the server uses: the fork happens after argument parsing
and before anything is imported or loaded, so it costs about a millisecond, and the child keeps
the terminal, stdin and everything the command already parsed; a runner would add a second
Python start and a model load that the user waits for on every ``hearth run``. The parent only
waits: Ctrl-C reaches the child through the terminal, and a SIGTERM or SIGHUP sent to the parent
is passed on. The child dies with the parent (Linux: PR_SET_PDEATHSIG), so killing ``hearth``
never leaves an orphan decoding in the background.

``HEARTH_CRASH_GUARD=0`` runs the command in this process instead (for a debugger).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable

# Signals a user or a supervisor sends to stop a command: the child stopping on one of them is
# not a crash, and the parent exits the way a shell expects (128 + the signal number).
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE}
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
PR_SET_PDEATHSIG = 1


def crash_message(work: str, signal_number: int) -> str:
    try:
        name = signal.Signals(signal_number).name
    except ValueError:
        name = f"signal {signal_number}"
    hint = " (out of memory?)" if signal_number == signal.SIGKILL else ""
    return f"hearth: the engine crashed while {work}: killed by {name}{hint}; run `hearth doctor`"


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


def _wait(pid: int) -> int:
    def forward(number: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal sends it to the child as well
    for number in FORWARDED:
        signal.signal(number, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 1
        if not os.WIFSTOPPED(status):
            return os.waitstatus_to_exitcode(status)


def run_guarded(work: Callable[[], int], describe: str) -> int:
    """``work()``'s exit status, run in a forked child where that is possible and wanted."""
    from hearth import config

    if not hasattr(os, "fork") or not config.crash_guard():
        return work()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _die_with_parent(parent)
        return work()  # the child returns through main() and exits as the command would
    code = _wait(pid)
    if code >= 0:
        return code
    if -code in STOP_SIGNALS:
        return 128 - code
    print(crash_message(describe, -code), file=sys.stderr)
    return 1
