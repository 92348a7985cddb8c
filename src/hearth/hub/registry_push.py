"""Push a stored model to an OCI / Ollama registry: blobs first, the manifest last.

Each blob is skipped when the registry already has it (HEAD), else uploaded in one PUT, or in
PATCH chunks when it is large (a dropped chunk is resumed from the offset the registry
reports). The manifest goes up only after every blob it names is there, so the tag never
points at missing data.
"""

from __future__ import annotations

import hashlib
import io
import urllib.parse
from typing import BinaryIO

from hearth import config
from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.errors import DigestMismatch, InvalidRequest, PushFailed, StoreError
from hearth.hub.registry_client import (
    RegistryClient,
    RegistryResponse,
    is_registry_host,
    registry_ref,
)
from hearth.names import ModelName
from hearth.store import Layer, ModelStore
from hearth.store.manifests import MANIFEST_MEDIA_TYPE
from hearth.store.models import as_name

CHUNK_SIZE = 64 << 20  # blobs larger than this go up in PATCH chunks of this size
CHUNK_RETRIES = 3
PROGRESS_STEP = 1 << 20


class _CountingReader(io.RawIOBase):
    """A file body that reports bytes as the HTTP library reads them."""

    def __init__(self, source: BinaryIO, on_bytes) -> None:
        self.source = source
        self.on_bytes = on_bytes
        self.start = source.tell()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        if data:
            self.on_bytes(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        # Only rewinding (a retry after an auth challenge) is needed.
        self.on_bytes(None)
        return self.source.seek(self.start + offset, whence)


class _BlobProgress:
    def __init__(self, progress: ProgressFn, layer: Layer, done: int = 0) -> None:
        self.progress, self.layer = progress, layer
        self.status = f"pushing {layer.digest[7:19]}"
        self.done = self.base = done
        self.reported = -1

    def add(self, count: int | None) -> None:
        if count is None:  # the body is being sent again
            self.done = self.base
            return
        self.done += count
        if self.done - self.reported >= PROGRESS_STEP or self.done >= self.layer.size:
            self.report()

    def commit(self) -> None:
        self.base = self.done

    def report(self) -> None:
        self.reported = self.done
        self.progress(ProgressResponse(status=self.status, digest=self.layer.digest,
                                       total=self.layer.size, completed=min(self.done, self.layer.size)))


def _with_digest(location: str, digest: str) -> str:
    separator = "&" if urllib.parse.urlsplit(location).query else "?"
    return f"{location}{separator}{urllib.parse.urlencode({'digest': digest})}"


def _location(client: RegistryClient, response: RegistryResponse, what: str) -> str:
    location = response.header("Location")
    if not location:
        raise PushFailed(f"{what}: the registry at {client.ref.host} sent no upload location")
    return urllib.parse.urljoin(client.ref.base_url + "/", location)


def _upload_chunked(client: RegistryClient, location: str, handle: BinaryIO, counter: _BlobProgress,
                    chunk_size: int) -> str:
    layer = counter.layer
    offset = 0
    retries = 0
    while offset < layer.size:
        handle.seek(offset)
        chunk = handle.read(min(chunk_size, layer.size - offset))
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                   "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
        body = _CountingReader(io.BytesIO(chunk), counter.add)
        try:
            response = client.send("PATCH", location, headers=headers, data=body)
        except PushFailed:
            response = None
        if response is not None and response.status == 202:
            location = _location(client, response, f"uploading {layer.digest}")
            offset += len(chunk)
            counter.commit()
            retries = 0
            continue
        if retries >= CHUNK_RETRIES:
            raise (client.failure(f"uploading {layer.digest}", response) if response is not None
                   else PushFailed(f"uploading {layer.digest} to {client.ref.host} kept failing"))
        retries += 1
        offset, location = _resume_point(client, location, layer)
        counter.done = counter.base = offset
    return location


def _resume_point(client: RegistryClient, location: str, layer: Layer) -> tuple[int, str]:
    """Where a broken chunked upload stands: the registry's ``Range: 0-N`` says N+1 bytes arrived.
    A registry that lost the upload, or whose upload state moved past what we know (the chunk
    arrived but its answer did not), gets a fresh upload from byte 0."""
    status = client.send("GET", location)
    if status.status != 204:
        return 0, _start_upload(client, layer)
    _, _, end = status.header("Range").partition("-")
    offset = int(end) + 1 if end.isdigit() else 0
    return offset, _location(client, status, f"resuming {layer.digest}") if status.header("Location") else location


def _start_upload(client: RegistryClient, layer: Layer) -> str:
    start = client.send("POST", client.ref.uploads_url(), headers={"Content-Length": "0"}, data=b"")
    if start.status != 202:
        raise client.failure(f"starting the upload of {layer.digest}", start)
    return _location(client, start, f"uploading {layer.digest}")


def upload_blob(client: RegistryClient, store: ModelStore, layer: Layer, progress: ProgressFn,
                chunk_size: int = CHUNK_SIZE) -> bool:
    """Upload one blob unless the registry has it; True when bytes were sent."""
    counter = _BlobProgress(progress, layer)
    exists = client.send("HEAD", client.ref.blob_url(layer.digest))
    if exists.status in (200, 307):
        counter.done = layer.size
        counter.report()
        return False
    counter.report()
    location = _start_upload(client, layer)
    path = store.blobs.path(layer.digest)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise StoreError(f"blob {layer.digest} is missing or unreadable: {exc.strerror}") from exc
    with handle:
        if layer.size > chunk_size:
            location = _upload_chunked(client, location, handle, counter, chunk_size)
            headers, body = {"Content-Length": "0"}, b""
        else:
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(layer.size)}
            body = _CountingReader(handle, counter.add)
        done = client.send("PUT", _with_digest(location, layer.digest), headers=headers, data=body)
    if done.status != 201:
        raise client.failure(f"uploading {layer.digest}", done)
    if counter.reported != layer.size:
        counter.done = layer.size
        counter.report()
    return True


def push_target(source: ModelName, destination: str | ModelName | None) -> ModelName:
    target = as_name(destination) if destination is not None else source
    if not is_registry_host(target.host):
        raise InvalidRequest(
            f"'{target}' names no registry; push to HOST[:PORT]/NAMESPACE/MODEL[:TAG], e.g. "
            f"'hearth push {source.short} localhost:5000/{source.namespace}/{source.model}:{source.tag}'"
        )
    return target


def push_model(store: ModelStore, name: str | ModelName, progress: ProgressFn = no_progress, *,
               destination: str | ModelName | None = None, insecure: bool = False,
               chunk_size: int = CHUNK_SIZE) -> ModelName:
    """Push the stored model ``name`` to ``destination`` (default: its own name, which must then
    name a registry). Returns the name it was pushed as."""
    source = as_name(name)
    model = store.get(source)
    target = push_target(source, destination)
    if config.offline():
        raise PushFailed(f"cannot push '{target}': network use is disabled (HEARTH_OFFLINE=1)")
    for digest in sorted(model.manifest.digests()):
        if not store.blobs.has(digest):
            raise StoreError(f"cannot push '{source}': blob {digest} is missing from the store")
    client = RegistryClient(registry_ref(target, insecure=insecure), error=PushFailed,
                            action="pull,push")
    progress(ProgressResponse(status="retrieving manifest"))
    seen: set[str] = set()
    for layer in [*model.manifest.layers, model.manifest.config]:
        if layer.digest not in seen:
            seen.add(layer.digest)
            upload_blob(client, store, layer, progress, chunk_size)
    progress(ProgressResponse(status="pushing manifest"))
    data = model.manifest_bytes
    answer = client.send("PUT", client.ref.manifest_url(), data=data,
                         headers={"Content-Type": MANIFEST_MEDIA_TYPE, "Content-Length": str(len(data))})
    if answer.status not in (200, 201):
        raise client.failure(f"pushing the manifest of {client.ref}", answer)
    promised = answer.header("Docker-Content-Digest")
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if promised and promised != actual:
        raise DigestMismatch(f"the registry stored the manifest of {client.ref} as {promised}, "
                             f"expected {actual}")
    progress(ProgressResponse(status="success"))
    return target
