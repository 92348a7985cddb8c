"""Models as the user sees them: a name, its manifest, and the blobs it references."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hearth import config
from hearth.errors import InvalidRequest, ModelNotFound, StoreError
from hearth.names import ModelName
from hearth.store.blobs import BlobStore, is_stale_temp
from hearth.store.manifests import Layer, Manifest, ManifestStore, MediaType


def as_name(name: str | ModelName) -> ModelName:
    return name if isinstance(name, ModelName) else ModelName.parse(name)


@dataclass
class StoredModel:
    name: ModelName
    manifest: Manifest
    manifest_bytes: bytes
    modified_at: datetime
    blobs: BlobStore

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest_bytes).hexdigest()

    @property
    def short_id(self) -> str:
        return self.digest[7:19]

    @property
    def size(self) -> int:
        return self.manifest.total_size

    @property
    def model_layer(self) -> Layer:
        layer = self.manifest.layer(MediaType.MODEL)
        if layer is None:
            raise StoreError(f"model '{self.name}' has no weights layer")
        return layer

    @property
    def model_path(self) -> Path:
        path = self.blobs.path(self.model_layer.digest)
        if not path.is_file():
            raise StoreError(
                f"the weights of '{self.name}' are missing from the store; pull or create it again"
            )
        return path

    def _text(self, media_type: str) -> str | None:
        layer = self.manifest.layer(media_type)
        if layer is None:
            return None
        return self.blobs.read_bytes(layer.digest).decode("utf-8", errors="replace")

    def _json(self, media_type: str, default: Any) -> Any:
        text = self._text(media_type)
        if text is None:
            return default
        try:
            return json.loads(text)
        except ValueError as exc:
            raise StoreError(f"layer {media_type} of '{self.name}' is not valid JSON") from exc

    @property
    def config(self) -> dict[str, Any]:
        try:
            data = json.loads(self.blobs.read_bytes(self.manifest.config.digest))
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    @property
    def licenses(self) -> list[str]:
        return [
            self.blobs.read_bytes(layer.digest).decode("utf-8", errors="replace")
            for layer in self.manifest.layers_of(MediaType.LICENSE)
        ]

    @property
    def template(self) -> str | None:
        return self._text(MediaType.TEMPLATE)

    @property
    def system(self) -> str | None:
        return self._text(MediaType.SYSTEM)

    @property
    def parameters(self) -> dict[str, Any]:
        data = self._json(MediaType.PARAMS, {})
        return data if isinstance(data, dict) else {}

    @property
    def messages(self) -> list[dict[str, Any]]:
        data = self._json(MediaType.MESSAGES, [])
        return data if isinstance(data, list) else []

    @property
    def adapters(self) -> list[tuple[Path, float]]:
        """LoRA adapter files and their scales (scales live in the config blob)."""
        scales = {item.get("digest"): float(item.get("scale", 1.0))
                  for item in self.config.get("adapters", []) if isinstance(item, dict)}
        return [(self.blobs.path(layer.digest), scales.get(layer.digest, 1.0))
                for layer in self.manifest.layers_of(MediaType.ADAPTER)]


@dataclass
class PruneReport:
    blobs_removed: int = 0
    temp_files_removed: int = 0
    bytes_freed: int = 0


class ModelStore:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home or config.home()
        self.root = self.home / "models"
        self.blobs = BlobStore(self.root / "blobs")
        self.manifests = ManifestStore(self.root / "manifests")

    def _load(self, name: ModelName, path: Path) -> StoredModel:
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        except OSError as exc:
            raise StoreError(f"cannot read the manifest of '{name}': {exc.strerror}") from exc
        try:
            manifest = Manifest.from_bytes(data)
        except InvalidRequest as exc:
            raise StoreError(
                f"the manifest of '{name}' is damaged ({exc.message}); remove it with 'hearth rm {name}'"
            ) from exc
        modified = datetime.fromtimestamp(mtime, tz=timezone.utc)
        return StoredModel(name, manifest, data, modified, self.blobs)

    def get(self, name: str | ModelName) -> StoredModel:
        parsed = as_name(name)
        return self._load(parsed, self.manifests.path(parsed))

    def exists(self, name: str | ModelName) -> bool:
        return self.manifests.exists(as_name(name))

    def list(self) -> list[StoredModel]:
        models = []
        for name, path in self.manifests.names():
            try:
                models.append(self._load(name, path))
            except (StoreError, ModelNotFound):
                continue
        models.sort(key=lambda m: m.modified_at, reverse=True)
        return models

    def layer_from_bytes(self, media_type: str, data: bytes) -> Layer:
        digest, size = self.blobs.put_bytes(data)
        return Layer(media_type, digest, size)

    def save(self, name: str | ModelName, config_data: dict[str, Any], layers: list[Layer]) -> StoredModel:
        """Write a manifest for layers whose blobs are already stored. The manifest goes last,
        so a model becomes visible only once every blob it needs is in place."""
        parsed = as_name(name)
        for layer in layers:
            if not self.blobs.has(layer.digest):
                raise StoreError(f"cannot save '{parsed}': blob {layer.digest} is not in the store")
        config_layer = self.layer_from_bytes(
            MediaType.CONFIG, json.dumps(config_data, sort_keys=True).encode()
        )
        self.manifests.put(parsed, Manifest(config_layer, layers))
        return self.get(parsed)

    def copy(self, source: str | ModelName, destination: str | ModelName) -> StoredModel:
        src, dst = as_name(source), as_name(destination)
        model = self.get(src)
        self.manifests.put(dst, model.manifest)
        return self.get(dst)

    def referenced_digests(self) -> set[str]:
        used: set[str] = set()
        for model in self.list():
            used |= model.manifest.digests()
        return used

    def delete(self, name: str | ModelName) -> list[str]:
        """Remove a name; blobs go only when no other manifest still references them."""
        parsed = as_name(name)
        try:
            model = self.get(parsed)
        except StoreError:
            # A damaged manifest must still be removable; its blobs are left for `prune`.
            self.manifests.delete(parsed)
            return []
        self.manifests.delete(parsed)
        still_used = self.referenced_digests()
        removed = []
        for digest in sorted(model.manifest.digests() - still_used):
            self.blobs.delete(digest)
            removed.append(digest)
        return removed

    def prune(self) -> PruneReport:
        report = PruneReport()
        used = self.referenced_digests()
        for digest in list(self.blobs.digests()):
            if digest in used:
                continue
            with contextlib.suppress(OSError):
                report.bytes_freed += self.blobs.size(digest)
            self.blobs.delete(digest)
            report.blobs_removed += 1
        scratch = self.home / "tmp"
        stale_scratch = [p for p in scratch.iterdir() if is_stale_temp(p)] if scratch.is_dir() else []
        for temp in self.blobs.stale_temp_files() + self.manifests.stale_temp_files() + stale_scratch:
            try:
                if temp.is_dir():
                    report.bytes_freed += folder_bytes(temp)
                    shutil.rmtree(temp)
                else:
                    report.bytes_freed += temp.stat().st_size
                    temp.unlink()
                report.temp_files_removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot remove {temp}: {exc.strerror}") from exc
        report.temp_files_removed += _remove_unheld_locks(scratch)
        return report


def _remove_unheld_locks(scratch: Path) -> int:
    """Lock files a killed pull left in ``tmp/`` (``hub/locks.py``). One nobody holds can go: a
    pull that opened it just before is not fooled, it notices the file is gone and locks anew."""
    import fcntl

    removed = 0
    for path in scratch.glob("*.lock") if scratch.is_dir() else []:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # held by a live pull
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
