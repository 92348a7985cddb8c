"""The runtime: the service the CLI uses in-process and the server wraps in HTTP.

Rooms: ``facade.py`` (``Runtime``, which backend answers a name), ``local.py`` (the local
backend: requests to prompts to engine chunks), ``loader.py`` (license, options, adapters, the
engine from ``engine.factory``, held by the scheduler), ``generation.py`` (chunks to wire
responses), ``library.py`` (list, pull, create, push, copy, delete), ``create.py`` (a model from a
Modelfile), ``status.py`` (``ps``), ``model_info.py`` (how stored models look on the wire),
``facts.py`` (license, fit and catalog facts for the CLI and the server), ``quality.py``
(perplexity), ``installed.py`` (the quick list for ``hearth list``), ``loaded.py`` (what is held
per loaded model and request).

``Runtime`` is imported on first use: ``hearth list`` reads ``installed.py`` without loading the
wire types and the rest.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Runtime"]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from hearth.runtime.facade import Runtime

        return Runtime
    raise AttributeError(f"module 'hearth.runtime' has no attribute {name!r}")
