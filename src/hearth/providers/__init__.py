"""Remote OpenAI-compatible providers (Groq, OpenAI, OpenRouter, Together, Mistral, Gemini, or
any base URL declared in HEARTH_HOME/providers.toml) behind the runtime's own methods.

A remote model is named ``PROVIDER/MODEL``; ``registry.resolve`` decides whether a name is
one. Data leaves the machine only for such a name, and never while HEARTH_OFFLINE=1.

- ``registry.py``: presets + providers.toml, keys, PROVIDER/MODEL names
- ``transport.py``: HTTP, retries, error mapping, server-sent events
- ``translate.py``: hearth requests as OpenAI bodies, streamed chunks read back
- ``remote.py``: ``RemoteModels``, what the runtime and the gateway call
- ``limits.py``: calls in flight per provider; ``weights.py``: open or closed weights
"""

from __future__ import annotations

from hearth.providers.directory import (
    Provider,
    RemoteTarget,
    find_provider,
    load_providers,
    resolve,
)

__all__ = ["Provider", "RemoteTarget", "find_provider", "load_providers", "resolve"]
