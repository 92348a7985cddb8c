"""How a child process ended, in words: the one place that names signals for messages (the CLI's
crash line, a dead runner, the engine self-test)."""

from __future__ import annotations

import signal


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; ``signal 99`` for a number the platform does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(code: int | None) -> str:
    """A ``Popen.returncode`` in words: ``killed by SIGKILL``, ``exited with status 3``."""
    if code is None:
        return "it stopped answering"
    if code < 0:
        return f"killed by {signal_name(-code)}"
    return f"exited with status {code}"
