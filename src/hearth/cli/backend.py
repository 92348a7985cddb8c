"""Which engine a command talks to: a running ``hearth serve`` (the model stays loaded between
commands) or, when none answers at HEARTH_HOST, the runtime in this process."""

from __future__ import annotations

from typing import Any


def connect() -> Any:
    from hearth.client import Client

    client = Client.if_running()
    if client is not None:
        return client
    from hearth.runtime import Runtime

    return Runtime()
