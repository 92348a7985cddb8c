"""Write a GGUF file with some string metadata replaced or added, copying everything else byte
for byte: the other metadata pairs, the tensor table and the tensor data (which moves only to
the next aligned offset after the new metadata). No numpy, one sequential pass over the data."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hearth.gguf.layout import read_layout
from hearth.store.blobs import file_sha256

CHUNK = 1 << 20
_STRING_TYPE = 8


def encode_string_pair(key: str, value: str) -> bytes:
    key_bytes, value_bytes = key.encode("utf-8"), value.encode("utf-8")
    return (struct.pack("<Q", len(key_bytes)) + key_bytes + struct.pack("<I", _STRING_TYPE)
            + struct.pack("<Q", len(value_bytes)) + value_bytes)


def rewrite_metadata(source: Path, out: BinaryIO, changes: dict[str, str],
                     on_bytes: Callable[[int], None] | None = None) -> tuple[str, str]:
    """Write ``source`` to ``out`` with ``changes`` applied. Returns the sha256 (hex) of the
    source as read, to check against its digest, and of the bytes written."""
    layout = read_layout(source)
    source_hash, written_hash = hashlib.sha256(), hashlib.sha256()

    def emit(data: bytes) -> None:
        out.write(data)
        written_hash.update(data)

    with source.open("rb") as handle:
        header = handle.read(layout.data_offset)
        source_hash.update(header)
        if on_bytes:
            on_bytes(len(header))
        present = {entry.key for entry in layout.entries}
        added = [key for key in changes if key not in present]
        emit(header[:8] + struct.pack("<QQ", layout.tensor_count, len(layout.entries) + len(added)))
        for entry in layout.entries:
            if entry.key in changes:
                emit(encode_string_pair(entry.key, changes[entry.key]))
            else:
                emit(header[entry.start:entry.end])
        for key in added:
            emit(encode_string_pair(key, changes[key]))
        emit(header[layout.tensor_infos_start:layout.tensor_infos_end])
        written = out.tell()
        if layout.tensor_count:
            emit(b"\0" * (-written % layout.alignment))
        while chunk := handle.read(CHUNK):
            source_hash.update(chunk)
            emit(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return source_hash.hexdigest(), written_hash.hexdigest()


def copy_file(source: Path, out: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> str:
    """Copy ``source`` to ``out``; returns the sha256 (hex) of the bytes copied."""
    return file_sha256(source, copy_to=out, on_bytes=on_bytes)
