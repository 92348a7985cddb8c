"""Search Hugging Face for GGUF repositories, quickly or not at all.

``hearth search`` shows these after the catalog. The hub is asked only when it can answer
fast: never with HEARTH_OFFLINE=1, not when a one-second connection to the endpoint fails, and
never for longer than ``timeout`` seconds in all (huggingface_hub retries with back-off on its
own, so the call runs on a daemon thread that is abandoned when time is up).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hearth import config

DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass
class HubSearch:
    models: list[dict[str, Any]] = field(default_factory=list)
    skipped: str = ""  # why the hub was not searched ("" when it was)
    endpoint: str = ""


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _reachable(endpoint: str, timeout: float) -> bool:
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _license_of(tags: list[str] | None) -> str:
    for tag in tags or []:
        if isinstance(tag, str) and tag.startswith("license:"):
            return tag.split(":", 1)[1]
    return ""


def _as_dict(info: Any) -> dict[str, Any]:
    repo = str(info.id)
    return {
        "repo": repo,
        "downloads": info.downloads,
        "likes": info.likes,
        "license": _license_of(info.tags),
        "pull": f"hf.co/{repo}",
    }


def search_hugging_face(query: str, *, limit: int = 10, timeout: float = 5.0) -> HubSearch:
    endpoint = hub_endpoint()
    if config.offline():
        return HubSearch(skipped="HEARTH_OFFLINE=1", endpoint=endpoint)
    if not query.strip():
        return HubSearch(skipped="no query", endpoint=endpoint)
    if not _reachable(endpoint, min(1.0, timeout)):
        return HubSearch(skipped=f"{endpoint} is unreachable", endpoint=endpoint)
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            from huggingface_hub import HfApi

            found = HfApi(endpoint=endpoint).list_models(search=query, filter="gguf", limit=limit,
                                                         sort="downloads")
            outcome["models"] = [_as_dict(info) for info in found]
        except Exception as exc:  # noqa: BLE001 - any hub failure just means "no hub results"
            outcome["error"] = type(exc).__name__

    worker = threading.Thread(target=ask, name="hub-search", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return HubSearch(skipped=f"{endpoint} did not answer within {timeout:g}s", endpoint=endpoint)
    if "error" in outcome:
        return HubSearch(skipped=f"{endpoint} failed ({outcome['error']})", endpoint=endpoint)
    return HubSearch(models=outcome.get("models", []), endpoint=endpoint)
