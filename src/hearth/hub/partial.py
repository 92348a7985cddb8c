"""Partial downloads in ``HEARTH_HOME/tmp`` that a later pull of the same file resumes.

A partial is named ``.tmp-<pid>-dl-<key>`` (the key is the expected digest, or a hash of the
URL) with a JSON sidecar: the file's total size, the server's validator (ETag/Last-Modified)
and, for parallel downloads, how far each part got. The pid in the name tells ``hearth
prune`` whether its owner still runs; a new pull claims a partial by renaming it to its own pid
(under the download lock, so only one pull can claim it).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from hearth.store.blobs import TEMP_PREFIX, store_error


class PartialDownload:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta

    @property
    def meta_path(self) -> Path:
        return meta_path_of(self.path)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def save_meta(self) -> None:
        # Not fsynced: the data it describes is not either; a crash of the OS may cost a restart.
        try:
            self.meta_path.write_text(json.dumps(self.meta))
        except OSError as exc:
            raise store_error("write", self.meta_path, exc) from exc

    def reset(self, meta: dict[str, Any]) -> None:
        """Start over (the server's file changed, or what we had was wrong)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.meta = meta
        self.save_meta()

    def discard(self) -> None:
        for path in (self.path, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def forget_meta(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()


def meta_path_of(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def claim_partial(tmp_dir: Path, key: str) -> PartialDownload:
    """The partial for ``key``, renamed to this process; a fresh empty one if there is none.
    Call it only while holding the download lock for ``key``."""
    own = tmp_dir / f"{TEMP_PREFIX}{os.getpid()}-dl-{key}"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store_error("create", tmp_dir, exc) from exc
    found = [p for p in tmp_dir.glob(f"{TEMP_PREFIX}*-dl-{key}") if p.is_file()]
    found.sort(key=lambda p: p.stat().st_size, reverse=True)
    for extra in found[1:]:
        for path in (extra, meta_path_of(extra)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if found and found[0] != own:
        try:
            os.replace(found[0], own)
            with contextlib.suppress(FileNotFoundError):
                os.replace(meta_path_of(found[0]), meta_path_of(own))
        except OSError as exc:
            raise store_error("claim", found[0], exc) from exc
    meta: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(meta_path_of(own).read_text())
        if isinstance(loaded, dict):
            meta = loaded
    return PartialDownload(own, meta)
