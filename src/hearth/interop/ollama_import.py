"""``hearth import --ollama [DIR]``: bring the models of an existing Ollama store into hearth.

Ollama keeps the layout hearth keeps (``manifests/<host>/<namespace>/<model>/<tag>`` and
``blobs/sha256-<hex>``), so a model moves over as its blobs plus a manifest:

- Names stay as they are (``registry.ollama.ai/library/llama3.2:latest``), the name a registry
  pull of the same model gets; ``short_names`` maps ``registry.ollama.ai/library/X:T`` to
  ``X:T`` instead. A name already in hearth's store is skipped, never overwritten.
- Every path part is checked as a model name and every digest as ``sha256:<64 hex>`` before it
  becomes part of a path; a manifest that fails is reported and skipped.
- Every blob is hashed (sha256) before it is used: a damaged one fails its model, and nothing of
  that model enters the store. Blobs are hard-linked when both stores share a file system
  (no second copy on disk; blobs are never modified in place by either tool), else copied.
- The weights are checked as a GGUF like any other import. Ollama's Go-syntax TEMPLATE layers
  are left out (hearth renders the GGUF's own Jinja chat template); parameters hearth does not
  know are dropped; other unknown layers (vision projectors) are left out and named.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.errors import DigestMismatch, HearthError, InvalidRequest
from hearth.hub.registry_layers import is_jinja_template, known_parameters
from hearth.names import ModelName
from hearth.store import Layer, Manifest, MediaType, ModelStore, validate_digest
from hearth.store.blobs import TEMP_PREFIX, fsync_dir
from hearth.store.importer import model_config

OLLAMA_HOST = "registry.ollama.ai"
# Layers hearth uses as Ollama wrote them (TEMPLATE and PARAMS are checked one by one).
KEPT_AS_IS = {MediaType.MODEL, MediaType.LICENSE, MediaType.SYSTEM, MediaType.MESSAGES,
              MediaType.ADAPTER}


@dataclass
class ImportOutcome:
    source: str  # the manifest's path under manifests/
    status: str  # "imported", "skipped" or "failed"
    name: str = ""
    detail: str = ""
    linked: int = 0
    copied: int = 0
    notes: list[str] = field(default_factory=list)


def default_ollama_dir() -> Path:
    """$OLLAMA_MODELS, else ~/.ollama/models, else the Linux service's /usr/share/ollama copy."""
    if os.environ.get("OLLAMA_MODELS"):
        return Path(os.environ["OLLAMA_MODELS"]).expanduser()
    home = Path.home() / ".ollama" / "models"
    service = Path("/usr/share/ollama/.ollama/models")
    return service if not home.is_dir() and service.is_dir() else home


def import_ollama_store(store: ModelStore, root: Path, progress: ProgressFn = no_progress, *,
                        short_names: bool = False) -> list[ImportOutcome]:
    manifests = root / "manifests"
    if not manifests.is_dir() or not (root / "blobs").is_dir():
        raise InvalidRequest(f"{root} is not an Ollama model store (no manifests/ and blobs/ in it)")
    outcomes = []
    for path in sorted(_manifest_files(manifests)):
        relative = path.relative_to(manifests).as_posix()
        outcome = ImportOutcome(source=relative, status="failed")
        try:
            _import_one(store, root, path, outcome, progress, short_names)
        except HearthError as exc:
            outcome.status, outcome.detail = "failed", exc.message
        except OSError as exc:
            outcome.status, outcome.detail = "failed", f"cannot read: {exc.strerror or exc}"
        outcomes.append(outcome)
    return outcomes


def _manifest_files(manifests: Path) -> Iterator[Path]:
    for dirpath, dirs, files in os.walk(manifests):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for filename in files:
            if not filename.startswith("."):
                yield Path(dirpath) / filename


def hearth_name(relative: str, short_names: bool) -> ModelName:
    parts = relative.split("/")
    if len(parts) != 4:
        raise InvalidRequest(f"'{relative}' is not a manifest path (host/namespace/model/tag)")
    host, namespace, model, tag = parts
    name = ModelName.parse(f"{host}/{namespace}/{model}:{tag}")
    if short_names and name.host == OLLAMA_HOST and name.namespace == "library":
        return ModelName.parse(f"{name.model}:{name.tag}")
    return name


def _import_one(store: ModelStore, root: Path, path: Path, outcome: ImportOutcome,
                progress: ProgressFn, short_names: bool) -> None:
    from hearth.gguf import read_gguf

    name = hearth_name(outcome.source, short_names)
    outcome.name = name.short
    if path.stat().st_size > 1 << 20:
        raise InvalidRequest("the manifest is over 1 MiB, which no model manifest is")
    manifest = Manifest.from_bytes(path.read_bytes())
    if store.exists(name):
        outcome.status, outcome.detail = "skipped", "already in hearth's store"
        return
    models = manifest.layers_of(MediaType.MODEL)
    if len(models) != 1:
        raise InvalidRequest(f"the manifest has {len(models)} weights layers; one is needed")
    for layer in [manifest.config, *manifest.layers]:
        _check_blob(root, layer)
    layers, new_params, notes = _chosen_layers(root, manifest)
    outcome.notes = notes
    staged: dict[str, Path] = {}  # digest -> its temp file in hearth's blob folder
    try:
        for layer in layers:
            if store.blobs.has(layer.digest) or layer.digest in staged:
                continue
            staged[layer.digest], how = _stage_blob(store, _blob_path(root, layer.digest), layer,
                                                    progress)
            outcome.linked += how == "linked"
            outcome.copied += how == "copied"
        weights = models[0].digest
        info = read_gguf(staged.get(weights) or store.blobs.path(weights))
        for digest, temp in staged.items():
            os.replace(temp, store.blobs.path(digest))
        if staged:
            fsync_dir(store.blobs.root)
    finally:
        for temp in staged.values():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    if new_params is not None:
        layers.append(store.layer_from_bytes(MediaType.PARAMS, new_params))
    store.save(name, model_config(info, source=f"ollama:{outcome.source}"), layers)
    outcome.status = "imported"


def _blob_path(root: Path, digest: str) -> Path:
    return root / "blobs" / validate_digest(digest).replace(":", "-")


def _check_blob(root: Path, layer: Layer) -> None:
    path = _blob_path(root, layer.digest)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidRequest(f"blob {layer.digest} is missing from the Ollama store") from None
    if size != layer.size:
        raise DigestMismatch(f"blob {layer.digest} has {size} bytes, the manifest says {layer.size}")


def _chosen_layers(root: Path, manifest: Manifest) -> tuple[list[Layer], bytes | None, list[str]]:
    """The layers to keep as they are, a new parameters blob when Ollama's had to be trimmed,
    and notes on what was left out."""
    layers: list[Layer] = []
    new_params: bytes | None = None
    notes: list[str] = []
    for layer in manifest.layers:
        if layer.media_type in KEPT_AS_IS:
            layers.append(layer)
        elif layer.media_type == MediaType.TEMPLATE:
            if is_jinja_template(_blob_path(root, layer.digest).read_text("utf-8", errors="replace")):
                layers.append(layer)
            else:
                notes.append("Ollama (Go) template left out: the GGUF's own chat template is used")
        elif layer.media_type == MediaType.PARAMS:
            kept, dropped = known_parameters(_blob_path(root, layer.digest).read_bytes())
            if not dropped:
                layers.append(layer)
            else:
                notes.append(f"parameters hearth does not know left out: {', '.join(dropped)}")
                if kept:
                    new_params = json.dumps(kept).encode()
        else:
            notes.append(f"layer {layer.media_type} left out (hearth does not use it)")
    return layers, new_params, notes


def _stage_blob(store: ModelStore, source: Path, layer: Layer,
                progress: ProgressFn) -> tuple[Path, str]:
    """The blob under a temp name in hearth's blob folder, its sha256 checked: ``(temp, how)``.
    A hard link is hashed through the link, so what is checked is what hearth keeps."""
    store.blobs.root.mkdir(parents=True, exist_ok=True)
    temp = store.blobs.root / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    try:
        os.link(source, temp)
        how = "linked"
    except OSError:  # another file system, or hard links not allowed here: copy
        how = "copied"
    status = f"verifying {layer.digest[:19]}" if how == "linked" else f"copying {layer.digest[:19]}"

    def report(done: int) -> None:
        progress(ProgressResponse(status=status, digest=layer.digest, total=layer.size,
                                  completed=done))

    try:
        if how == "linked":
            actual = _sha256(temp, None, report)
        else:
            with open(temp, "xb") as out:
                actual = _sha256(source, out, report)
                out.flush()
                os.fsync(out.fileno())
        if actual != layer.digest:
            raise DigestMismatch(f"blob {layer.digest} in the Ollama store does not match its "
                                 "digest (damaged); the model was not imported")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return temp, how


def _sha256(path: Path, copy_to: BinaryIO | None, report: Callable[[int], None]) -> str:
    """``sha256:HEX`` of the file; ``report`` gets the bytes read so far."""
    from hearth.store.blobs import file_sha256

    done = [0]

    def count(size: int) -> None:
        done[0] += size
        report(done[0])

    return "sha256:" + file_sha256(path, copy_to=copy_to, on_bytes=count)
