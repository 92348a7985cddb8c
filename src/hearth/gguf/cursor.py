"""Reads over a file that check every length against the file's size before reading."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from hearth.errors import InvalidModelFile

MAX_STRING_LENGTH = 1 << 30  # llama.cpp's GGUF_MAX_STRING_LENGTH

_READ_CHUNK = 1 << 20
_U64 = struct.Struct("<Q")


class ByteCursor:
    """Sequential reads over a file, each one checked against the file's size first."""

    def __init__(self, fh: BinaryIO, path: Path, size: int) -> None:
        self.fh = fh
        self.path = path
        self.size = size
        self.pos = 0
        self.buf = b""
        self.buf_start = 0
        # What is being read, for error messages; set by the parser as it goes.
        self.context = "the header"

    def error(self, problem: str) -> InvalidModelFile:
        return InvalidModelFile(self.path, problem)

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def _window(self, n: int) -> int:
        """Offset into ``self.buf`` of the ``n`` bytes at ``self.pos``, read in if needed."""
        if n > self.size - self.pos:
            raise self.error(
                f"truncated: the file ends at byte {self.size}, inside {self.context} "
                f"({n} bytes needed at byte {self.pos})"
            )
        offset = self.pos - self.buf_start
        if offset >= 0 and offset + n <= len(self.buf):
            return offset
        try:
            self.fh.seek(self.pos)
            self.buf = self.fh.read(max(n, _READ_CHUNK))
        except OSError as exc:
            raise self.error(f"cannot read {self.context} at byte {self.pos}: {exc}") from exc
        self.buf_start = self.pos
        if len(self.buf) < n:
            raise self.error(
                f"truncated: the file shrank to {self.pos + len(self.buf)} bytes while "
                f"reading {self.context}"
            )
        return 0

    def unpack(self, fmt: struct.Struct) -> Any:
        offset = self._window(fmt.size)
        self.pos += fmt.size
        return fmt.unpack_from(self.buf, offset)[0]

    def unpack_many(self, fmt: str, count: int, item_size: int) -> tuple[Any, ...]:
        offset = self._window(count * item_size)
        self.pos += count * item_size
        return struct.unpack_from(f"<{count}{fmt}", self.buf, offset)

    def raw(self, n: int) -> bytes:
        offset = self._window(n)
        self.pos += n
        return self.buf[offset : offset + n]

    def skip(self, n: int) -> None:
        if n > self.size - self.pos:
            self._window(n)  # raises the truncation error
        self.pos += n

    def string_length(self) -> int:
        start = self.pos
        n = self.unpack(_U64)
        if n > self.size - self.pos:
            raise self.error(
                f"string length {n} at byte {start} ({self.context}) is more than the "
                f"{self.size - self.pos} bytes left in the file (truncated or corrupt)"
            )
        if n > MAX_STRING_LENGTH:
            raise self.error(
                f"string length {n} at byte {start} ({self.context}) is over llama.cpp's "
                f"{MAX_STRING_LENGTH}-byte limit"
            )
        return n

    def string_bytes(self) -> bytes:
        return self.raw(self.string_length())

    def skip_strings(self, count: int) -> None:
        """Walk ``count`` strings, checking each length, without decoding them.

        This is the hot loop for tokenizer arrays (~100k strings in a typical model), so it
        works on the buffer with local variables instead of calling the methods above.
        """
        unpack = _U64.unpack_from
        size = self.size
        base_context = self.context
        buf, start, pos = self.buf, self.buf_start, self.pos
        for index in range(count):
            offset = pos - start
            if offset < 0 or offset + 8 > len(buf):
                self.pos = pos
                self.context = f"{base_context}, string {index}"
                offset = self._window(8)
                buf, start = self.buf, self.buf_start
            (n,) = unpack(buf, offset)
            if n > size - pos - 8 or n > MAX_STRING_LENGTH:
                self.pos = pos
                self.context = f"{base_context}, string {index}"
                self.string_length()  # raises the precise error
            pos += 8 + n
        self.pos = pos
        self.context = base_context
