"""Run the server with uvicorn; on SIGINT/SIGTERM end live streams with an error chunk,
then unload every model before exiting."""

from __future__ import annotations

import logging
import sys
from typing import Any

from hearth import config
from hearth.server.guard import host_name, is_loopback
from hearth.server.responses import SHUTDOWN_MESSAGE


def split_host(address: str) -> tuple[str, int]:
    from hearth.errors import InvalidRequest

    if address.startswith("["):
        host, _, port = address[1:].partition("]:")
    else:
        host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"invalid address '{address}': expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def warn_license_violations(runtime: Any) -> None:
    """HEARTH_LICENSE_POLICY: name at startup the installed models every request will refuse
    (a malformed policy file stops the server here with a clear error)."""
    from hearth.licenses.audit import non_compliant
    from hearth.licenses.policy import current_policy, unrecognised_warning

    warning = unrecognised_warning(current_policy())
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    for row in non_compliant(runtime.store):
        print(f"warning: '{row.model}' ({row.license or 'no license stated'}) fails the license "
              f"policy: {row.reason}; requests for it will be refused (403)", file=sys.stderr)


def serve(address: str | None = None, log_level: str = "info") -> int:
    import uvicorn

    from hearth.runtime import Runtime
    from hearth.server.app import create_app

    host, port = split_host(address or config.host())
    if not is_loopback(host_name(host)) and not config.api_key():
        print(f"warning: listening on {host}, reachable from other machines, without HEARTH_API_KEY: "
              "anyone who can reach it can use your models", file=sys.stderr)
    # Each loaded model in its own runner process; requests to it decoded together.
    runtime = Runtime(isolated=True, serving=True, num_parallel=config.num_parallel())
    warn_license_violations(runtime)
    runtime.scheduler.start_reaper()
    app = create_app(runtime, bind_host=host)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # Streams stop at their next token and end with an error line; then uvicorn drains.
            app.state.streams.cancel_all(SHUTDOWN_MESSAGE)
            super().handle_exit(sig, frame)
            # uvicorn would raise the signal again once it has stopped, killing the process
            # before the models are unloaded; a requested shutdown is a clean exit here.
            self._captured_signals.clear()

    server = Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                   timeout_graceful_shutdown=10, access_log=False))
    try:
        server.run()
    finally:
        runtime.close()
    return 0
