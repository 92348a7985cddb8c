"""The runtime: the service the CLI uses in-process and the server wraps in HTTP.

Rooms: ``facade.py`` (``Runtime``, which backend answers a name), ``local.py`` (the local
backend: requests to prompts to engine chunks), ``loader.py`` (license, options, adapters, the
engine from ``engine.factory``, held by the scheduler), ``generation.py`` (chunks to wire
responses), ``library.py`` (list, pull, create, push, copy, delete), ``create.py`` (a model from a
Modelfile), ``status.py`` (``ps``), ``model_info.py`` (how stored models look on the wire),
``catalog_facts.py`` (catalog search with provider routes), ``loaded.py`` (what is held per
loaded model and request).
"""

from hearth.runtime.facade import Runtime

__all__ = ["Runtime"]
