"""Closed models in the catalog (GPT, Gemini, Mistral Medium): their weights are not
published, so asking hearth to pull, show or run one locally gets an explanation of how to
reach it through a provider instead of a bare "not found"."""

from __future__ import annotations

from typing import Any

from hearth.catalog.entries import catalog_entry
from hearth.errors import ClosedModel, HearthError
from hearth.names import ModelName


def provider_routes(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """``[("openai/gpt-4o", "OPENAI_API_KEY"), ...]``: the remote names that reach the entry's
    model and the variable holding each provider's key ("" when unknown)."""
    models = entry.get("provider_models", {})
    routes = []
    for provider in entry.get("providers", []):
        model_id = models.get(provider)
        if model_id:
            routes.append((f"{provider}/{model_id}", _key_variable(provider)))
    return routes


def _key_variable(provider: str) -> str:
    try:
        from hearth.providers.directory import find_provider

        found = find_provider(provider)
    except HearthError:  # a broken providers.toml must not hide the explanation
        return ""
    return found.api_key_env if found is not None else ""


def provider_hint(entry: dict[str, Any]) -> str:
    """``hearth run openai/gpt-4o (needs OPENAI_API_KEY) or ...``; "" without providers."""
    parts = []
    for remote, key in provider_routes(entry):
        parts.append(f"'hearth run {remote}'" + (f" (needs {key})" if key else ""))
    return " or ".join(parts)


def closed_model_error(name: str | ModelName) -> ClosedModel | None:
    """The error to raise for a closed catalog model, or None for anything else.

    Only short library names count (``gpt-4o``, ``gpt-4o:latest``): a model the user stored
    under such a name is found in the store before this is asked.
    """
    try:
        parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
    except HearthError:
        return None
    entry = catalog_entry(parsed)
    if entry is None or entry.get("weights") != "closed":
        return None
    who = entry.get("publisher") or "its publisher"
    message = (f"'{parsed.model}' is a closed model from {who}: its weights are not published, so "
               "hearth cannot download or run it on this machine")
    hint = provider_hint(entry)
    if hint:
        message += f". Reach it through a provider instead: {hint}"
    return ClosedModel(message)
