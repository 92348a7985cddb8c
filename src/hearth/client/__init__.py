"""Talking to a running ``hearth serve``: ``Client`` (``methods.py``) has the runtime's methods;
``transport.py`` is the HTTP underneath."""

from hearth.client.methods import Client
from hearth.client.transport import PROBE_TIMEOUT, ServerGone, ServerReportedError

__all__ = ["PROBE_TIMEOUT", "Client", "ServerGone", "ServerReportedError"]
