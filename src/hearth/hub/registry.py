"""OCI / Ollama registries: the names ``hub/pull.py`` sends here, pull and push.

``HOST[:PORT]/NAMESPACE/MODEL:TAG`` with a real host (``localhost:5000``, ``ollama.com``,
``registry.ollama.ai``) is a registry name. The protocol is in ``registry_client.py``, pulling
in ``registry_pull.py``, pushing in ``registry_push.py``.
"""

from __future__ import annotations

from hearth.hub.registry_client import is_registry_host
from hearth.hub.registry_pull import RegistryPlan, fetch_registry_model
from hearth.hub.registry_push import push_model
from hearth.names import ModelName


def is_registry_name(name: ModelName) -> bool:
    """True for names whose host is a registry, not hearth's default host or Hugging Face."""
    return is_registry_host(name.host)


__all__ = ["RegistryPlan", "fetch_registry_model", "is_registry_name", "push_model"]
