"""A look at the start of a remote GGUF before downloading it: its license and context length.

A plain URL states no license, but the GGUF header usually does (``general.license``, written
near the start, before the large tokenizer arrays). One ranged request for the first bytes is
enough to read it, so the license check can run before the download, as for every other
source. This is a best effort: anything odd gives "unknown", never an error; the whole file is
checked by ``gguf/reader.py`` after the download as always.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PEEK_BYTES = 256 << 10

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


@dataclass
class HeaderPeek:
    license_id: str | None = None
    context_length: int | None = None
    architecture: str | None = None
    # The first bytes arrived and are not a GGUF header: no point downloading the rest.
    not_gguf: bool = False


class _OutOfBytes(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise _OutOfBytes
        piece = self.data[self.pos:self.pos + count]
        self.pos += count
        return piece

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> bytes:
        return self.take(self.u64())

    def skip_value(self, value_type: int) -> None:
        if value_type == _STRING:
            self.string()
        elif value_type == _ARRAY:
            item_type, count = self.u32(), self.u64()
            if item_type in _SCALAR_SIZES:
                self.take(_SCALAR_SIZES[item_type] * count)
            else:
                for _ in range(count):
                    self.skip_value(item_type)
        elif value_type in _SCALAR_SIZES:
            self.take(_SCALAR_SIZES[value_type])
        else:
            raise _OutOfBytes  # unknown type: stop reading


def peek_header(data: bytes) -> HeaderPeek:
    """What the first bytes of a GGUF file say (fields it cannot reach stay None)."""
    found = HeaderPeek()
    reader = _Reader(data)
    try:
        if reader.take(4) != b"GGUF":
            found.not_gguf = True
            return found
        if reader.u32() not in (2, 3):
            return found
        reader.u64()  # tensor count
        contexts: dict[str, int] = {}
        for _ in range(reader.u64()):
            key = reader.string().decode("utf-8", errors="replace")
            value_type = reader.u32()
            if value_type == _STRING and key in ("general.license", "general.architecture"):
                value = reader.string().decode("utf-8", errors="replace").strip()[:200]
                if key == "general.license":
                    found.license_id = value or None
                else:
                    found.architecture = value or None
            elif key.endswith(".context_length") and value_type in (4, 10):
                contexts[key] = reader.u32() if value_type == 4 else reader.u64()
            else:
                reader.skip_value(value_type)
    except _OutOfBytes:
        pass
    if found.architecture and f"{found.architecture}.context_length" in contexts:
        found.context_length = contexts[f"{found.architecture}.context_length"] or None
    elif contexts:
        found.context_length = next(iter(contexts.values())) or None
    return found


def peek_remote(url: str, headers: dict[str, str] | None = None) -> HeaderPeek:
    """The header of the GGUF at ``url`` from one ranged request (empty when that fails)."""
    from hearth.hub.http_fetch import open_range

    try:
        opened = open_range(url, headers, start=0, end=PEEK_BYTES - 1, timeout=15)
    except Exception:  # noqa: BLE001 - a best effort; the download reports real trouble
        return HeaderPeek()
    try:
        data = opened.response.read(PEEK_BYTES)
    except Exception:  # noqa: BLE001
        return HeaderPeek()
    finally:
        opened.close()
    return peek_header(data)
