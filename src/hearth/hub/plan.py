"""What a pull will do, known before the download starts, and the last step every source shares.

Each source (catalog, Hugging Face, URL, local file, registry) turns a name into a
``PullPlan``: the name it will be stored under, the bytes to fetch, the license id and the
context length (for the license and fit checks that run first), and a ``fetch`` function that
downloads and saves. ``save_pulled`` checks the weights are a GGUF and writes the manifest last.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.api.types import ProgressFn, ProgressResponse
from hearth.errors import InvalidModelFile
from hearth.names import ModelName
from hearth.store import Layer, MediaType, ModelStore, StoredModel


@dataclass
class FetchContext:
    store: ModelStore
    progress: ProgressFn
    max_speed: float | None = None
    cancelled: Callable[[], bool] | None = None


@dataclass
class PullPlan:
    name: ModelName
    source: str  # where the bytes come from, recorded in the model's config
    size: int | None
    license_id: str | None
    context_length: int | None
    fetch: Callable[[FetchContext], StoredModel]
    stored_bytes: int = 0  # of ``size``, already in the store
    scratch_factor: float = 1.0  # bytes on disk per byte of model while pulling
    downloads: bool = True  # False for a local file import (no license prompt for your own file)
    named_from_file: bool = False  # the name was made from a file name: tell the user
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def disk_needed(self) -> int:
        if not self.size:
            return 0
        return int(max(0, self.size - self.stored_bytes) * self.scratch_factor)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.name.short, "source": self.source, "size": self.size,
                "license_id": self.license_id, "context_length": self.context_length, **self.details}


def save_pulled(ctx: FetchContext, plan: PullPlan, layers: list[Layer],
                parameters: dict[str, Any] | None = None) -> StoredModel:
    """Check the weights, add the parameters layer, write the manifest last."""
    from hearth.store.importer import model_config, verify_model_blob

    store, progress = ctx.store, ctx.progress
    model_layer = next(layer for layer in layers if layer.media_type == MediaType.MODEL)
    progress(ProgressResponse(status="verifying sha256 digest"))
    try:
        info = verify_model_blob(store, model_layer.digest)
    except InvalidModelFile as exc:
        # The blob's path in the store means nothing to the user; where it came from does.
        where = plan.source.split(":", 1)[1] if ":" in plan.source else plan.name.short
        raise InvalidModelFile(where, f"{exc.problem}; nothing was stored") from None
    if parameters:
        layers.append(store.layer_from_bytes(MediaType.PARAMS, json.dumps(parameters).encode()))
    progress(ProgressResponse(status="writing manifest"))
    model = store.save(plan.name, model_config(info, license_id=plan.license_id, source=plan.source),
                       layers)
    if plan.named_from_file:
        progress(ProgressResponse(status=f"stored as {plan.name.short}"))
    progress(ProgressResponse(status="success"))
    return model


def blob_bytes_present(store: ModelStore, digest: str | None) -> int:
    if digest and store.blobs.has(digest):
        return store.blobs.size(digest)
    return 0
