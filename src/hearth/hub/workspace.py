"""Scratch folders for downloads, inside HEARTH_HOME so that `hearth prune` finds what an
interrupted pull left behind (the folder name carries the owner's pid)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from hearth.store.blobs import TEMP_PREFIX, store_error


@contextlib.contextmanager
def scratch_folder(home: Path) -> Iterator[Path]:
    root = home / "tmp"
    path = root / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise store_error("create", path, exc) from exc
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def folder_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
