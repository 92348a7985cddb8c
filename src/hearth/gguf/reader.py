"""Bounds-checked GGUF header reader.

Every length and count in a GGUF header is checked against the bytes the file actually has
before anything is read or allocated, so a corrupt, truncated or hostile file is refused with
a precise ``InvalidModelFile`` instead of reaching llama.cpp (whose loader may crash, hang or
allocate gigabytes on such input). The checks mirror llama.cpp's own ``gguf_init_from_file``
so that a file accepted here is one llama.cpp can at least parse, down to where each tensor's
data lies; ``consistency.py`` then checks the metadata against the tensors.

Layout (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
kv_count x (string key, u32 value type, value), tensor_count x (string name, u32 n_dims,
n_dims x i64 dim, i32 ggml type, u64 offset), padding to ``general.alignment``, tensor data.
A string is a u64 byte length followed by the bytes.
"""

from __future__ import annotations

import itertools
import os
import stat
import struct
from pathlib import Path
from typing import Any

from hearth.errors import InvalidModelFile
from hearth.gguf.consistency import check_consistency
from hearth.gguf.cursor import ByteCursor
from hearth.gguf.filetypes import ggml_type_info
from hearth.gguf.info import VALUE_TYPE_NAMES, ArrayInfo, GGUFInfo, TensorInfo

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
HEADER_SIZE = 24  # magic, version, tensor_count, kv_count

# Limits llama.cpp enforces too (gguf.cpp, ggml.h).
MAX_DIMS = 4
MAX_TENSOR_NAME_BYTES = 63  # GGML_MAX_NAME minus the terminating NUL
MAX_ARRAY_LENGTH = 1 << 30
INT64_MAX = (1 << 63) - 1
# hearth's own bounds, far above real models (a few dozen metadata pairs; the largest MoE files
# a few thousand tensors), so that a hostile header cannot make this reader loop for minutes.
MAX_TENSOR_COUNT = 1 << 16
MAX_KV_COUNT = 1 << 16

# Arrays longer than this become ArrayInfo: their values (vocabularies) are only llama.cpp's
# business, and decoding 50k strings would make `hearth list` slow.
KEEP_ARRAY_VALUES = 1024

# Smallest possible encodings, to refuse counts that the file could never hold.
_MIN_KV_BYTES = 8 + 1 + 4 + 1  # key length, 1-byte key, value type, 1-byte value
_MIN_TENSOR_BYTES = 8 + 1 + 4 + 8 + 4 + 8  # name length, 1-byte name, n_dims, 1 dim, type, offset

_FLOAT32 = 6
_STRING = 8
_ARRAY = 9
# value type -> struct format character of a scalar of that type
_SCALAR_FORMATS: dict[int, str] = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_SCALARS = {t: struct.Struct("<" + f) for t, f in _SCALAR_FORMATS.items()}
_U32 = _SCALARS[4]
_I32 = _SCALARS[5]
_U64 = _SCALARS[10]


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and check a GGUF file's header, metadata and tensor table.

    Raises ``InvalidModelFile`` naming the file and the problem. Tensor data is not read,
    only checked to lie inside the file, one tensor after the other, and the metadata is
    checked against the tensors (``consistency.py``).
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InvalidModelFile(path, "file not found") from None
    except OSError as exc:
        raise InvalidModelFile(path, f"cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidModelFile(path, "not a regular file")
    if st.st_size == 0:
        raise InvalidModelFile(path, "file is empty")
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InvalidModelFile(path, f"cannot read file: {exc.strerror or exc}") from None
    with fh:
        # The size is taken from the open file so that checks and reads agree.
        size = os.fstat(fh.fileno()).st_size
        info = _parse(ByteCursor(fh, path, size))
    check_consistency(info)
    return info


def _parse(cur: ByteCursor) -> GGUFInfo:
    magic = _peek(cur, 4)
    if magic != MAGIC:
        raise cur.error(f"not a GGUF file (magic {magic!r}, expected {MAGIC!r})")
    cur.skip(4)
    cur.context = "the version"
    version = cur.unpack(_U32)
    if version not in SUPPORTED_VERSIONS:
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        hint = " (a big-endian file, which is not supported)" if swapped in (2, 3) else ""
        raise cur.error(f"unsupported GGUF version {version}{hint}; only versions 2 and 3 are")
    cur.context = "the tensor count"
    tensor_count = cur.unpack(_U64)
    cur.context = "the metadata count"
    kv_count = cur.unpack(_U64)
    _check_counts(cur, tensor_count, kv_count)

    metadata, alignment = _read_metadata(cur, kv_count)
    infos = _read_tensor_infos(cur, tensor_count)

    data_offset = cur.pos
    if tensor_count:
        data_offset += -data_offset % alignment
    tensors = [_place_tensor(cur, data_offset, alignment, *info) for info in infos]
    _check_data_layout(cur, tensors, data_offset, alignment)
    return GGUFInfo(
        path=cur.path,
        version=version,
        file_size=cur.size,
        metadata=metadata,
        tensors=tensors,
        data_offset=data_offset,
        alignment=alignment,
    )


def _peek(cur: ByteCursor, n: int) -> bytes:
    try:
        cur.fh.seek(0)
        return cur.fh.read(n)
    except OSError as exc:
        raise cur.error(f"cannot read file: {exc.strerror or exc}") from None


def _check_counts(cur: ByteCursor, tensor_count: int, kv_count: int) -> None:
    need_tensors = tensor_count * _MIN_TENSOR_BYTES
    need_kvs = kv_count * _MIN_KV_BYTES
    if need_tensors > cur.remaining:
        what, need = f"tensor count {tensor_count} is impossible: that many tensors", need_tensors
    elif need_kvs > cur.remaining:
        what, need = f"metadata count {kv_count} is impossible: that many key-value pairs", need_kvs
    elif need_tensors + need_kvs > cur.remaining:
        what, need = (
            f"{tensor_count} tensors and {kv_count} metadata pairs",
            need_tensors + need_kvs,
        )
    elif tensor_count > MAX_TENSOR_COUNT:
        raise cur.error(f"tensor count {tensor_count} is over hearth's limit of {MAX_TENSOR_COUNT}")
    elif kv_count > MAX_KV_COUNT:
        raise cur.error(f"metadata count {kv_count} is over hearth's limit of {MAX_KV_COUNT}")
    else:
        return
    raise cur.error(
        f"{what} need at least {need} bytes of header after byte {cur.pos}, but the file ends "
        f"at byte {cur.size} (truncated or corrupt)"
    )


def _read_metadata(cur: ByteCursor, kv_count: int) -> tuple[dict[str, Any], int]:
    metadata: dict[str, Any] = {}
    alignment = DEFAULT_ALIGNMENT
    for index in range(kv_count):
        cur.context = f"metadata key #{index}"
        key_bytes = cur.string_bytes()
        try:
            key = key_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise cur.error(
                f"metadata key #{index} is not valid UTF-8: {key_bytes[:64]!r}"
            ) from None
        if not key:
            raise cur.error(f"metadata key #{index} is empty")
        if key in metadata:
            raise cur.error(f"duplicate metadata key '{key}'")
        cur.context = f"the value of metadata key '{key}'"
        type_pos = cur.pos
        value_type = cur.unpack(_U32)
        if value_type == _ARRAY:
            metadata[key] = _read_array(cur, key)
        elif value_type == _STRING:
            metadata[key] = cur.string_bytes().decode("utf-8", errors="replace")
        elif value_type == _FLOAT32:
            metadata[key] = _shortest_float32(cur.unpack(_SCALARS[_FLOAT32]))
        elif value_type in _SCALARS:
            metadata[key] = cur.unpack(_SCALARS[value_type])
        else:
            raise cur.error(
                f"unknown value type {value_type} for metadata key '{key}' at byte {type_pos}"
            )
        if key == "general.alignment":
            if value_type != 4:
                type_name = VALUE_TYPE_NAMES.get(value_type, str(value_type))
                raise cur.error(f"general.alignment must be a uint32, not {type_name}")
            alignment = metadata[key]
            if alignment == 0 or alignment & (alignment - 1):
                raise cur.error(f"alignment {alignment} is not a power of two")
    return metadata, alignment


def _read_array(cur: ByteCursor, key: str) -> list[Any] | ArrayInfo:
    type_pos = cur.pos
    element_type = cur.unpack(_U32)
    if element_type == _ARRAY:
        raise cur.error(f"metadata key '{key}' is an array of arrays, which GGUF readers refuse")
    if element_type != _STRING and element_type not in _SCALARS:
        raise cur.error(
            f"unknown array element type {element_type} for metadata key '{key}' at byte {type_pos}"
        )
    length_pos = cur.pos
    length = cur.unpack(_U64)
    if length > MAX_ARRAY_LENGTH:
        raise cur.error(
            f"array length {length} at byte {length_pos} (metadata key '{key}') is over "
            f"llama.cpp's {MAX_ARRAY_LENGTH}-element limit"
        )
    item_size = 8 if element_type == _STRING else _SCALARS[element_type].size
    if length * item_size > cur.remaining:
        raise cur.error(
            f"array length {length} at byte {length_pos} (metadata key '{key}') needs at least "
            f"{length * item_size} bytes, more than the {cur.remaining} bytes left in the file "
            "(truncated or corrupt)"
        )
    keep = length <= KEEP_ARRAY_VALUES
    if element_type == _STRING:
        if not keep:
            cur.skip_strings(length)
            return ArrayInfo(element_type, length)
        values = []
        for index in range(length):
            cur.context = f"the value of metadata key '{key}' [string {index}]"
            values.append(cur.string_bytes().decode("utf-8", errors="replace"))
        cur.context = f"the value of metadata key '{key}'"
        return values
    if not keep:
        cur.skip(length * item_size)
        return ArrayInfo(element_type, length)
    values = list(cur.unpack_many(_SCALAR_FORMATS[element_type], length, item_size))
    if element_type == _FLOAT32:
        return [_shortest_float32(v) for v in values]
    return values


def _shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32, so 1e-05 does not show as 9.99e-06."""
    fmt = _SCALARS[_FLOAT32]
    packed = fmt.pack(value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if fmt.pack(candidate) == packed:
                return candidate
        except (OverflowError, struct.error):  # rounded up past float32's largest value
            continue
    return value


def _read_tensor_infos(
    cur: ByteCursor, tensor_count: int
) -> list[tuple[str, tuple[int, ...], int, int, int, int]]:
    infos = []
    seen: set[str] = set()
    for index in range(tensor_count):
        cur.context = f"the name of tensor #{index}"
        name_bytes = cur.string_bytes()
        try:
            name = name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise cur.error(
                f"the name of tensor #{index} is not valid UTF-8: {name_bytes[:64]!r}"
            ) from None
        if len(name_bytes) > MAX_TENSOR_NAME_BYTES:
            raise cur.error(
                f"tensor #{index} name '{name[:80]}' is {len(name_bytes)} bytes long; "
                f"the limit is {MAX_TENSOR_NAME_BYTES}"
            )
        if name in seen:
            raise cur.error(f"duplicate tensor name '{name}' (tensor #{index})")
        seen.add(name)

        cur.context = f"the shape of tensor '{name}'"
        n_dims = cur.unpack(_U32)
        if not 1 <= n_dims <= MAX_DIMS:
            raise cur.error(f"tensor '{name}' has {n_dims} dimensions; 1 to {MAX_DIMS} allowed")
        shape = cur.unpack_many("q", n_dims, 8)
        n_elements = 1
        for axis, dim in enumerate(shape):
            if dim <= 0:
                raise cur.error(f"tensor '{name}' has dimension {axis} of size {dim}")
            if n_elements > INT64_MAX // dim:
                raise cur.error(f"tensor '{name}' shape {list(shape)} overflows 64-bit sizes")
            n_elements *= dim

        cur.context = f"the type of tensor '{name}'"
        ggml_type = cur.unpack(_I32)
        type_info = ggml_type_info(ggml_type)
        if type_info is None:
            raise cur.error(f"tensor '{name}' has unknown ggml type {ggml_type}")
        type_name, block_size, type_size = type_info
        if shape[0] % block_size:
            raise cur.error(
                f"tensor '{name}' of type {type_name} has rows of {shape[0]} elements, "
                f"not a multiple of its block size {block_size}"
            )
        nbytes = n_elements // block_size * type_size

        cur.context = f"the data offset of tensor '{name}'"
        relative_offset = cur.unpack(_U64)
        infos.append((name, tuple(shape), ggml_type, relative_offset, nbytes, n_elements))
    return infos


def _place_tensor(
    cur: ByteCursor,
    data_offset: int,
    alignment: int,
    name: str,
    shape: tuple[int, ...],
    ggml_type: int,
    relative_offset: int,
    nbytes: int,
    n_elements: int,
) -> TensorInfo:
    if relative_offset % alignment:
        raise cur.error(
            f"tensor '{name}' data offset {relative_offset} is not a multiple of the "
            f"alignment {alignment}"
        )
    start = data_offset + relative_offset
    end = start + nbytes
    if end > cur.size:
        raise cur.error(
            f"tensor '{name}' data (bytes {start} to {end}) runs past the end of the file at "
            f"byte {cur.size}: the file is truncated or its tensor table is corrupt"
        )
    return TensorInfo(
        name=name,
        shape=shape,
        ggml_type=ggml_type,
        offset=start,
        nbytes=nbytes,
        n_elements=n_elements,
    )


def _check_data_layout(
    cur: ByteCursor, tensors: list[TensorInfo], data_offset: int, alignment: int
) -> None:
    """Each tensor's data must start where the one before it in the table ends, padded to the
    alignment: llama.cpp's gguf_init_from_file refuses any other offset ("tensor has offset X,
    expected Y"), so overlapping, reordered or spaced-out data can never load. Bytes after
    the last tensor are allowed, as there."""
    by_start = sorted(tensors, key=lambda t: t.offset)
    for first, second in itertools.pairwise(by_start):
        if second.offset < first.offset + first.nbytes:
            raise cur.error(
                f"tensor '{second.name}' data (bytes {second.offset} to "
                f"{second.offset + second.nbytes}) overlaps tensor '{first.name}' (bytes "
                f"{first.offset} to {first.offset + first.nbytes}, {first.nbytes} bytes for "
                f"{first.type_name} {list(first.shape)})"
            )
    expected = data_offset
    previous = "the start of the data section"
    for index, tensor in enumerate(tensors):
        if tensor.offset != expected:
            later = tensors[index + 1 :]
            if tensor.offset < expected or (later and min(t.offset for t in later) < tensor.offset):
                how = "tensor data must be stored in the order of the tensor table"
            else:
                how = f"a gap of {tensor.offset - expected} bytes, which llama.cpp refuses"
            raise cur.error(
                f"tensor '{tensor.name}' data starts at byte {tensor.offset}, but it must start "
                f"at byte {expected}, right after {previous}: {how}"
            )
        expected += tensor.nbytes + -tensor.nbytes % alignment
        previous = f"tensor '{tensor.name}'"
