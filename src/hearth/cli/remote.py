"""The terminal's side of remote models: announcing every prompt that leaves the machine,
``--fallback PROVIDER/MODEL``, ``hearth list --remote`` and ``hearth show`` for remote models."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from hearth.errors import HearthError, InvalidRequest


def remote_target(model: str) -> Any:
    """The provider and id when ``model`` is PROVIDER/MODEL, else None (no network)."""
    if "/" not in model:
        return None
    from hearth.providers.directory import resolve

    return resolve(model)


def announce(model: str) -> bool:
    """One line on stderr before a prompt goes to a remote provider; True when it does."""
    from hearth import config

    target = remote_target(model)
    if target is None:
        return False
    provider = target.provider
    # Offline, without its key or outside the allow-list, the call is refused before anything leaves.
    if not config.offline() and (provider.key() or not provider.needs_key) and provider.allows(target.model):
        print(f"→ {provider.name}: this prompt leaves your machine ({provider.endpoint})",
              file=sys.stderr, flush=True)
    return True


def watched(chunks: Iterator[Any], announced: bool) -> Iterator[Any]:
    """Pass chunks on; if a server answered from a provider this CLI did not know of, say so."""
    for chunk in chunks:
        if not announced and getattr(chunk, "remote_host", None):
            announced = True
            print(f"→ {chunk.remote_host}: this prompt left your machine", file=sys.stderr, flush=True)
        yield chunk


def check_fallback(text: str | None) -> str | None:
    if not text:
        return None
    if remote_target(text) is None:
        raise InvalidRequest(f"--fallback must name a remote model as PROVIDER/MODEL (a preset such as "
                             f"groq, or a provider in providers.toml), not '{text}'")
    return text


def fall_back(model: str, fallback: str | None, error: HearthError) -> str:
    """The fallback model after ``model`` failed with ``error``; re-raises when there is none."""
    from hearth import config

    if fallback is None:
        raise error
    if config.offline():
        error.message += f" (--fallback {fallback} not tried: HEARTH_OFFLINE=1 forbids remote calls)"
        raise error
    print(f"{model} cannot answer here ({error.message}); falling back to {fallback}",
          file=sys.stderr, flush=True)
    return fallback


def chat_stream(chat: Callable[[Any], Iterator[Any]], request: Any, fallback: str | None) -> Iterator[Any]:
    """``chat(request)`` announced when remote; on a failure before the first chunk, the same
    request to ``fallback`` (only when one was given)."""
    chunks = watched(chat(request), announce(request.model))
    try:
        first = next(chunks, None)
    except HearthError as exc:
        model = fall_back(request.model, fallback, exc)
        request = request.model_copy(update={"model": model})
        yield from watched(chat(request), announce(model))
        return
    if first is not None:
        yield first
        yield from chunks


# -- hearth list --remote -------------------------------------------------------------------


def handle_list_remote(provider: str) -> int:
    from hearth import config
    from hearth.cli.output import print_columns
    from hearth.errors import RemoteDisabled
    from hearth.providers.remote import RemoteModels

    if config.offline():
        raise RemoteDisabled("cannot list remote models: HEARTH_OFFLINE=1 forbids remote calls")
    remote = RemoteModels()
    if provider:
        names = [provider]
    else:
        ready, keyless = remote.ready_providers()
        names = [p.name for p in ready]
        if keyless:
            missing = ", ".join(f"{p.name} ({p.api_key_env})" for p in keyless)
            print(f"not listed, no API key set: {missing}", file=sys.stderr)
    rows = [["NAME", "OWNED BY", "CONTEXT", "WEIGHTS", "LICENSE"]]
    failed = 0
    for name in names:
        try:
            listed = remote.list_remote(name)
        except HearthError as exc:
            if provider:
                raise
            failed += 1
            print(f"{name}: {exc.message}", file=sys.stderr)
            continue
        for entry in listed:
            context = str(entry.context_length) if entry.context_length else "-"
            rows.append([entry.name, entry.owned_by or "-", context, entry.weights, entry.license or "-"])
    print_columns(rows)
    return 1 if names and failed == len(names) else 0


# -- hearth show for a remote model ----------------------------------------------------------


def print_remote_show(shown: Any) -> None:
    info = shown.model_info
    rows = [
        ("provider", info.get("remote.provider", "")),
        ("endpoint", shown.remote_host or ""),
        ("model id", shown.remote_model or ""),
        ("weights", info.get("remote.weights", "unknown")),
        ("publisher", info.get("general.publisher", "")),
    ]
    print("  Remote model")
    for key, value in rows:
        if value:
            print(f"    {key:<20}{value}")
    print("\n  License")
    print(f"    {shown.license or 'unknown'}")
    print("\n  Privacy")
    print("    prompts to this model leave your machine (HEARTH_OFFLINE=1 refuses them)")
