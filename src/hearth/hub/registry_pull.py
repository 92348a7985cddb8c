"""Pull a model from an OCI / Ollama registry: manifest, then blobs, then our manifest last.

Everything the registry says is input to check: the manifest must be a schema 2 image
manifest whose every digest is ``sha256:`` + 64 hex digits (checked before any URL or path is
built from it), the blobs must hash to their digests (``hub/transfer.py`` verifies while it
writes), and the weights must be a well-formed GGUF before the model gets its name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hearth import config
from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.errors import DigestMismatch, DownloadFailed, InvalidRequest, ModelNotFound
from hearth.hub.registry_client import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    RegistryClient,
    RegistryRef,
    registry_ref,
)
from hearth.hub.registry_layers import known_layers, usable_layers
from hearth.names import ModelName
from hearth.store import Layer, Manifest, MediaType, ModelStore, StoredModel
from hearth.store.blobs import DIGEST_RE

MAX_SMALL_BLOB = 4 << 20  # config and license blobs read into memory for the plan
IMAGE_INDEX_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
})


@dataclass
class RegistryPlan:
    """What a pull will fetch, known before any large download: enough for the license and
    fit checks (``hub/pull.py``) to run first."""

    name: ModelName
    ref: RegistryRef
    manifest: Manifest
    config: dict[str, Any] = field(default_factory=dict)
    license_text: str | None = None
    layers: list[Layer] = field(default_factory=list)  # the ones hearth will download and keep
    notes: list[str] = field(default_factory=list)  # what is left out, and why

    @property
    def size(self) -> int:
        return self.manifest.config.size + sum(layer.size for layer in self.layers)

    @property
    def license_id(self) -> str | None:
        """The config's id (hearth pushed it), else the license layer's text recognised (Ollama's
        configs carry none), else None: unknown, never guessed."""
        value = self.config.get("license_id")
        if isinstance(value, str) and value:
            return value
        if self.license_text:
            from hearth.licenses.resolve import recognise_text

            terms = recognise_text(self.license_text)
            return terms.id if terms else None
        return None

    @property
    def context_length(self) -> int | None:
        value = self.config.get("context_length")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.name.short, "source": f"registry:{self.ref}", "size": self.size,
                "license_id": self.license_id, "context_length": self.context_length,
                "layers": len(self.manifest.layers)}


def fetch_manifest(client: RegistryClient, name: ModelName) -> Manifest:
    ref = client.ref
    response = client.send("GET", ref.manifest_url(), headers={"Accept": MANIFEST_ACCEPT},
                           limit=MAX_MANIFEST_BYTES + 1)
    if response.status == 404:
        raise ModelNotFound(name, f"the registry at {ref.host} has no {ref.repository}:{ref.tag}")
    if response.status != 200:
        raise client.failure(f"reading the manifest of {ref}", response)
    data = response.body
    if len(data) > MAX_MANIFEST_BYTES:
        raise DownloadFailed(f"the manifest of {ref} is larger than {MAX_MANIFEST_BYTES} bytes")
    promised = response.header("Docker-Content-Digest")
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if DIGEST_RE.fullmatch(promised) and promised != actual:
        raise DigestMismatch(f"the manifest of {ref} hashes to {actual}, the registry said {promised}")
    return parse_manifest(data, ref)


def parse_manifest(data: bytes, ref: RegistryRef) -> Manifest:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raw = None
    if isinstance(raw, dict) and raw.get("mediaType") in IMAGE_INDEX_TYPES:
        raise DownloadFailed(f"{ref} is a multi-platform image index, not a model")
    try:
        manifest = Manifest.from_bytes(data)
    except InvalidRequest as exc:
        # Digests are validated here, before any URL or path is built from them.
        raise DownloadFailed(f"the registry sent an invalid manifest for {ref}: {exc.message}") from None
    if manifest.layer(MediaType.MODEL) is None:
        raise DownloadFailed(f"{ref} is not a model: its manifest has no {MediaType.MODEL} layer")
    return manifest


def fetch_small_blob(client: RegistryClient, layer: Layer) -> bytes:
    """A config or license blob, read into memory and checked against its digest."""
    if layer.size > MAX_SMALL_BLOB:
        raise DownloadFailed(f"blob {layer.digest} of {client.ref} is too large ({layer.size} bytes) "
                             f"for a {layer.media_type} layer")
    response = client.send("GET", client.ref.blob_url(layer.digest), limit=MAX_SMALL_BLOB + 1)
    if response.status == 404:
        raise DownloadFailed(f"the registry at {client.ref.host} has no blob {layer.digest} "
                             f"(listed in the manifest of {client.ref})")
    if response.status != 200:
        raise client.failure(f"reading blob {layer.digest}", response)
    actual = "sha256:" + hashlib.sha256(response.body).hexdigest()
    if actual != layer.digest:
        raise DigestMismatch(f"blob {layer.digest} of {client.ref} hashes to {actual}; nothing was stored")
    return response.body


def build_plan(client: RegistryClient, name: ModelName) -> RegistryPlan:
    manifest = fetch_manifest(client, name)
    try:
        parsed = json.loads(fetch_small_blob(client, manifest.config))
    except (ValueError, UnicodeDecodeError):
        parsed = {}
    layers, notes = known_layers(manifest.layers)
    plan = RegistryPlan(name, client.ref, manifest, parsed if isinstance(parsed, dict) else {},
                        layers=layers, notes=notes)
    license_layer = manifest.layer(MediaType.LICENSE)
    if license_layer is not None:
        plan.license_text = fetch_small_blob(client, license_layer).decode("utf-8", errors="replace")
    return plan


def _check_blobs_exist(client: RegistryClient, layers: list[Layer]) -> None:
    """Ask for every missing blob before downloading any, so a manifest that lists a blob the
    registry lacks fails at once instead of after gigabytes."""
    for layer in layers:
        response = client.send("HEAD", client.ref.blob_url(layer.digest))
        if response.status == 404:
            raise DownloadFailed(f"the registry at {client.ref.host} has no blob {layer.digest} "
                                 f"(listed in the manifest of {client.ref}); nothing was stored")
        if response.status >= 400:
            raise client.failure(f"checking blob {layer.digest}", response)


def _download_layers(store: ModelStore, client: RegistryClient, layers: list[Layer], progress: ProgressFn,
                     max_speed: float | None, cancelled: Any) -> None:
    from hearth.hub.transfer import download_to_blob

    missing = [layer for layer in _unique(layers) if not store.blobs.has(layer.digest)]
    _check_blobs_exist(client, missing)
    for layer in _unique(layers):
        status = f"pulling {layer.digest[7:19]}"
        if store.blobs.has(layer.digest):
            progress(ProgressResponse(status=status, digest=layer.digest, total=layer.size,
                                      completed=layer.size))
            continue
        download_to_blob(store, client.ref.blob_url(layer.digest), expected_digest=layer.digest,
                         size=layer.size, headers=client.auth_headers(), progress=progress,
                         status=status, max_speed=max_speed, cancelled=cancelled)


def _unique(layers: list[Layer]) -> list[Layer]:
    seen: set[str] = set()
    return [layer for layer in layers if not (layer.digest in seen or seen.add(layer.digest))]


def fetch_registry_model(store: ModelStore, name: ModelName, progress: ProgressFn = no_progress, *,
                         max_speed: float | None = None, cancelled: Any = None, plan_only: bool = False,
                         insecure: bool = False, plan: RegistryPlan | None = None,
                         ) -> StoredModel | RegistryPlan:
    """``plan_only``: read the manifest and the small config/license blobs and return a
    ``RegistryPlan``; otherwise download (reusing ``plan`` when given) and return the model."""
    from hearth.store.importer import model_config, verify_model_blob

    if config.offline():
        raise DownloadFailed(f"cannot pull '{name}': downloads are disabled (HEARTH_OFFLINE=1)")
    if plan is None:
        client = RegistryClient(registry_ref(name, insecure=insecure))
        progress(ProgressResponse(status="pulling manifest"))
        plan = build_plan(client, name)
    else:
        client = RegistryClient(plan.ref)
    if plan_only:
        return plan
    _download_layers(store, client, plan.layers, progress, max_speed, cancelled)
    progress(ProgressResponse(status="verifying sha256 digest"))
    layers, notes = usable_layers(store, plan.layers)
    for note in [*plan.notes, *notes]:
        progress(ProgressResponse(status=note))
    info = verify_model_blob(store, plan.manifest.layer(MediaType.MODEL).digest)  # type: ignore[union-attr]
    # The registry's config wins; hearth's fields fill what it lacks (Ollama's configs have no
    # license id or context length). A config hearth pushed comes back unchanged, digest and all.
    merged = {**model_config(info, license_id=plan.license_id, source=f"registry:{plan.ref}"),
              **plan.config}
    progress(ProgressResponse(status="writing manifest"))
    model = store.save(name, merged, layers)
    progress(ProgressResponse(status="success"))
    return model
