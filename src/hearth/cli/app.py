"""``hearth app``: the web app in the browser, for people who would rather not use a terminal.

Uses the server that answers at HEARTH_HOST; when none does, starts ``hearth serve`` in the
background (detached, so it outlives this command; its output goes to
HEARTH_HOME/logs/server.log), waits until it answers, then opens the app's page. The started
server's pid is kept in HEARTH_HOME/app-server.pid so that ``hearth app --stop`` can end it
(by that pid, and only when that process is still a ``hearth serve``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

# subprocess and pathlib are imported where used: `hearth --help` stays fast.
START_TIMEOUT = 60.0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "app",
        help="open the web app in the browser (starts the server if needed)",
        description="Open hearth's web app (chat, models, downloads, server status) in the browser. "
        "Uses the server at HEARTH_HOST, or starts `hearth serve` in the background when none answers; "
        "that server keeps running after this command ends (its pid is printed; its log is "
        "HEARTH_HOME/logs/server.log) until `hearth app --stop`.",
    )
    parser.add_argument("--no-browser", action="store_true", help="only print the app's URL, open nothing")
    parser.add_argument("--stop", action="store_true",
                        help="stop the server an earlier `hearth app` started in the background")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for a started server to answer (default {START_TIMEOUT:g})")
    parser.set_defaults(handler=handle)


def app_url(address: str) -> str:
    """The page's URL for a HOST:PORT address; a wildcard bind is reached on loopback."""
    from hearth.server.serve import split_host

    host, port = split_host(address)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def server_answers() -> bool:
    from hearth.client import Client

    return Client.if_running() is not None


def log_path() -> Path:
    from hearth import config

    return config.home() / "logs" / "server.log"


def start_server(log: Path) -> Any:
    """``hearth serve`` as a background process that keeps running after this command ends."""
    import subprocess

    log.parent.mkdir(parents=True, exist_ok=True)
    detach: dict[str, Any] = {}
    if os.name == "nt":
        detach["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        # Its own session: closing this terminal or pressing Ctrl+C here does not stop it.
        detach["start_new_session"] = True
    with open(log, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", "hearth", "serve"], stdout=output,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, close_fds=True, **detach)


def wait_until_ready(process: Any, log: Path, timeout: float) -> None:
    import time

    from hearth.errors import ServerStartFailed

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_answers():
            return
        if process.poll() is not None:
            raise ServerStartFailed(f"hearth serve exited with status {process.returncode}: "
                                    f"{last_line(log)} (full log: {log})")
        time.sleep(0.2)
    raise ServerStartFailed(f"hearth serve did not answer within {timeout:g}s; it may still be starting "
                            f"(log: {log})")


def last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "nothing logged"


def pid_path() -> Path:
    from hearth import config

    return config.home() / "app-server.pid"


def is_hearth_server(pid: int) -> bool:
    """Whether ``pid`` is still a ``hearth serve`` (a pid may be reused by another program)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return False
    return b"hearth" in b" ".join(words) and b"serve" in words


def stop_server(timeout: float = 30.0) -> int:
    import signal
    import time

    path = pid_path()
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        print("no server started by `hearth app` is known here (a `hearth serve` you started "
              "yourself stops with Ctrl+C in its terminal)", file=sys.stderr)
        return 1
    if not is_hearth_server(pid):
        path.unlink(missing_ok=True)
        print(f"the server `hearth app` started (pid {pid}) is no longer running")
        return 0
    os.kill(pid, signal.SIGTERM)  # hearth serve ends its streams and unloads its models
    deadline = time.monotonic() + timeout
    while is_hearth_server(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_hearth_server(pid):
        print(f"hearth serve (pid {pid}) did not stop within {timeout:g}s", file=sys.stderr)
        return 1
    path.unlink(missing_ok=True)
    print(f"stopped hearth serve (pid {pid})")
    return 0


def handle(args: argparse.Namespace) -> int:
    from hearth import config

    if args.stop:
        return stop_server()
    url = app_url(config.host())
    if server_answers():
        print(f"hearth server already running at {config.host()}")
    else:
        log = log_path()
        process = start_server(log)
        wait_until_ready(process, log, args.timeout)
        pid_path().write_text(f"{process.pid}\n")
        print(f"started hearth serve at {config.host()} (pid {process.pid}, log {log}); "
              "`hearth app --stop` stops it")
    print(f"web app: {url}")
    if not args.no_browser:
        import webbrowser

        if not webbrowser.open(url):
            print("could not open a browser here; open the address above in one", file=sys.stderr)
    return 0
