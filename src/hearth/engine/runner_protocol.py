"""The runner wire protocol: JSON lines between the server side (``runner_client.py``) and a
runner child (``runner.py``), one message per line, each with an ``op``.

Commands (to the runner): ``load`` (first; ``kind`` "generate" or "embedding"), ``generate``
(``id``, ``tokens``, ``sampling``, ``grammar``), ``cancel`` (``id``), ``embed`` (``id``,
``texts``, ``truncate``), ``close``.
Replies: ``loaded`` (``load_ns``, ``context``), ``events`` (a decode step's events in one line:
see ``outbox.py``), ``embedded`` (``id``, ``vectors``, ``count``), ``error`` (``id`` or none for
the load, ``message``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hearth.engine.chunks import GenerationStats
from hearth.engine.settings import LoadSettings, SamplingSettings


def load_command(path: Path, settings: LoadSettings, *, kind: str = "generate", n_parallel: int = 1,
                 pooling_type: int | None = None) -> dict[str, Any]:
    return {"op": "load", "kind": kind, "path": str(path), "settings": dataclasses.asdict(settings),
            "n_parallel": n_parallel, "pooling_type": pooling_type}


def settings_from_wire(data: dict[str, Any]) -> LoadSettings:
    values = dict(data)
    values["adapters"] = tuple((str(p), float(s)) for p, s in values.get("adapters", ()))
    return LoadSettings(**values)


def sampling_to_wire(sampling: SamplingSettings) -> dict[str, Any]:
    return dataclasses.asdict(sampling)


def sampling_from_wire(data: dict[str, Any]) -> SamplingSettings:
    values = dict(data)
    values["stop"] = tuple(values.get("stop") or ())
    return SamplingSettings(**values)


def event_to_wire(event: Any) -> dict[str, Any]:
    """A decoder ``Event`` as a small JSON-ready dict: defaults are left out (pipe traffic)."""
    wire: dict[str, Any] = {"request_id": event.request_id}
    if event.text:
        wire["text"] = event.text
    if event.done:
        wire["done"] = True
        wire["reason"] = event.reason
        if event.stats is not None:
            wire["stats"] = vars(event.stats).copy()
        if event.error is not None:
            wire["error"] = event.error
    return wire


def event_from_wire(wire: dict[str, Any]) -> Any:
    from hearth.engine.jobs import Event

    wire = dict(wire)
    stats = wire.pop("stats", None)
    return Event(**wire, stats=GenerationStats(**stats) if stats else None)
