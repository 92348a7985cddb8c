"""Where each part of a GGUF header lies in the file, so that metadata can be rewritten without
touching (or even reading) the tensor data: tensor offsets are relative to the data section,
so a new metadata section only moves the data section to the next aligned offset.

The file is checked by ``read_gguf`` first; this walk reuses the same bounds-checked readers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hearth.gguf.cursor import ByteCursor
from hearth.gguf.reader import (
    HEADER_SIZE,
    _read_metadata,
    _read_tensor_infos,
)


@dataclass(frozen=True)
class MetadataSpan:
    key: str
    start: int  # file offset of the key's length field
    end: int  # one past the value's last byte


@dataclass(frozen=True)
class HeaderLayout:
    version: int
    tensor_count: int
    entries: tuple[MetadataSpan, ...]
    tensor_infos_start: int
    tensor_infos_end: int
    data_offset: int
    alignment: int
    file_size: int


def read_layout(path: str | os.PathLike[str]) -> HeaderLayout:
    from hearth.gguf import read_gguf

    path = Path(path)
    info = read_gguf(path)  # every check first; what follows cannot fail on a checked file
    with path.open("rb") as handle:
        cur = ByteCursor(handle, path, os.fstat(handle.fileno()).st_size)
        cur.skip(8)  # magic, version
        tensor_count = int.from_bytes(cur.raw(8), "little")
        kv_count = int.from_bytes(cur.raw(8), "little")
        assert cur.pos == HEADER_SIZE
        entries = []
        for _ in range(kv_count):
            start = cur.pos
            metadata, _alignment = _read_metadata(cur, 1)
            entries.append(MetadataSpan(next(iter(metadata)), start, cur.pos))
        tensors_start = cur.pos
        _read_tensor_infos(cur, tensor_count)
        tensors_end = cur.pos
    return HeaderLayout(
        version=info.version,
        tensor_count=tensor_count,
        entries=tuple(entries),
        tensor_infos_start=tensors_start,
        tensor_infos_end=tensors_end,
        data_offset=info.data_offset,
        alignment=info.alignment,
        file_size=info.file_size,
    )
