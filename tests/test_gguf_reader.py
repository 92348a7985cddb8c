from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hearth.errors import InvalidModelFile
from hearth.gguf import ArrayInfo, format_parameter_count, read_gguf
from hearth.gguf.filetypes import FILE_TYPES, GGML_TYPES
from tests.tinymodel import (
    DEFAULT_CHAT_TEMPLATE,
    tiny_model_parameter_count,
    write_tiny_model,
    write_truncated_copy,
)

# --- forging GGUF files byte by byte -------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
GGML_F32, GGML_Q8_0 = 0, 8


def gstr(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def kv_str(key: str, value: str) -> bytes:
    return gstr(key) + struct.pack("<I", STRING) + gstr(value)


def kv_u32(key: str, value: int) -> bytes:
    return gstr(key) + struct.pack("<II", U32, value)


def tensor_info(name: str | bytes, dims: list[int], ggml_type: int = GGML_F32, offset=0) -> bytes:
    out = gstr(name) + struct.pack("<I", len(dims))
    out += b"".join(struct.pack("<q", d) for d in dims)
    return out + struct.pack("<iQ", ggml_type, offset)


def forge(
    kvs: list[bytes] = (),
    tensors: list[bytes] = (),
    data: bytes = b"",
    *,
    version: int = 3,
    tensor_count: int | None = None,
    kv_count: int | None = None,
    alignment: int = 32,
) -> bytes:
    head = b"GGUF" + struct.pack(
        "<IQQ",
        version,
        len(tensors) if tensor_count is None else tensor_count,
        len(kvs) if kv_count is None else kv_count,
    )
    body = head + b"".join(kvs) + b"".join(tensors)
    if tensors:
        body += b"\0" * (-len(body) % alignment)
    return body + data


ARCH = kv_str("general.architecture", "llama")


@pytest.fixture
def write(tmp_path):
    def _write(data: bytes, name: str = "forged.gguf") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write


def rejects(path: Path, *fragments: str) -> InvalidModelFile:
    """read_gguf must refuse ``path`` with a message naming it and every fragment."""
    with pytest.raises(InvalidModelFile) as info:
        read_gguf(path)
    exc = info.value
    assert exc.path == str(path)
    assert str(path) in str(exc)
    for fragment in fragments:
        assert fragment in exc.problem, f"{fragment!r} not in {exc.problem!r}"
    return exc


# --- reading good files ------------------------------------------------------------------


@pytest.fixture
def tiny(tiny_model) -> Path:
    return tiny_model


def test_reads_tiny_model(tiny):
    info = read_gguf(tiny)
    assert info.path == tiny
    assert info.version == 3
    assert info.file_size == tiny.stat().st_size
    assert info.architecture == "llama"
    assert info.name == "tiny-test"
    assert info.organization == "hearth-tests"
    assert info.license == "apache-2.0"
    assert info.chat_template == DEFAULT_CHAT_TEMPLATE
    assert info.context_length == 256
    assert info.embedding_length == 32
    assert info.block_count == 1
    assert info.head_count == 4
    assert info.head_count_kv == 2
    assert info.pooling_type is None
    assert info.file_type == 0
    assert info.quantization == "F32"
    assert info.bos_token_id == 1
    assert info.eos_token_id == 2
    assert info.parameter_count == tiny_model_parameter_count()
    assert info.parameter_size == format_parameter_count(tiny_model_parameter_count())
    assert info.metadata["tokenizer.ggml.model"] == "llama"
    assert info.metadata["tokenizer.ggml.tokens"][:3] == ["<unk>", "<s>", "</s>"]
    assert info.metadata["llama.attention.layer_norm_rms_epsilon"] == 1e-5


def test_tensor_table_matches_the_gguf_package(tiny):
    gguf = pytest.importorskip("gguf")
    reference = gguf.GGUFReader(tiny)
    info = read_gguf(tiny)
    assert info.data_offset == reference.data_offset
    assert [t.name for t in info.tensors] == [t.name for t in reference.tensors]
    for ours, theirs in zip(info.tensors, reference.tensors, strict=True):
        assert ours.shape == tuple(int(d) for d in theirs.shape)
        assert ours.ggml_type == int(theirs.tensor_type)
        assert ours.offset == theirs.data_offset
        assert ours.nbytes == theirs.n_bytes
        assert ours.n_elements == theirs.n_elements
    assert info.parameter_count == sum(int(t.n_elements) for t in reference.tensors)
    token_embd = info.tensors[0]
    assert token_embd.name == "token_embd.weight"
    assert token_embd.shape == (32, len(info.metadata["tokenizer.ggml.tokens"]))
    assert token_embd.type_name == "F32"


@pytest.mark.parametrize("file_type", ["F16", "Q8_0", "Q4_0", "Q4_1"])
def test_quantization_name_from_file_type(tmp_path, file_type):
    info = read_gguf(write_tiny_model(tmp_path / "m.gguf", file_type=file_type))
    assert info.quantization == file_type
    assert info.parameter_count == tiny_model_parameter_count()


def test_quantization_falls_back_to_the_weight_matrices(write):
    # Two Q8_0 matrices and three F32 norms, no general.file_type: the matrices decide.
    q8_matrix = 34 * 2  # two 32-element blocks
    tensors = [
        tensor_info("a.weight", [32, 2], GGML_Q8_0, 0),
        tensor_info("b.weight", [32, 2], GGML_Q8_0, 96),
        tensor_info("n1", [4], GGML_F32, 192),
        tensor_info("n2", [4], GGML_F32, 224),
        tensor_info("n3", [4], GGML_F32, 256),
    ]
    info = read_gguf(write(forge([ARCH], tensors, b"\0" * 288)))
    assert info.file_type is None
    assert info.quantization == "Q8_0"
    assert info.tensors[1].nbytes == q8_matrix
    assert info.parameter_count == 2 * 64 + 3 * 4


def test_missing_metadata_reads_as_none(write):
    info = read_gguf(write(forge([])))
    assert info.architecture == ""
    assert info.name is None and info.license is None and info.chat_template is None
    assert info.context_length is None and info.head_count is None
    assert info.tensors == [] and info.parameter_count == 0
    assert info.quantization == "unknown"


def test_long_arrays_are_kept_as_array_info(tmp_path):
    path = write_tiny_model(
        tmp_path / "m.gguf",
        extra_metadata={
            "test.words": [f"word{i}" for i in range(5000)],
            "test.numbers": list(range(3000)),
            "general.languages": ["en", "fr"],
        },
    )
    info = read_gguf(path)
    assert info.metadata["test.words"] == ArrayInfo(STRING, 5000)
    assert len(info.metadata["test.numbers"]) == 3000
    assert info.metadata["test.numbers"].type_name == "int32"  # what GGUFWriter picks
    assert info.metadata["general.languages"] == ["en", "fr"]
    # keys after the long arrays are still read correctly
    assert info.chat_template == DEFAULT_CHAT_TEMPLATE


def test_summary_is_json_without_long_arrays(tmp_path):
    path = write_tiny_model(
        tmp_path / "m.gguf",
        extra_metadata={"general.languages": ["en"], "test.numbers": list(range(3000))},
    )
    info = read_gguf(path)
    summary = info.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["general.architecture"] == "llama"
    assert summary["general.parameter_count"] == info.parameter_count
    assert summary["llama.context_length"] == 256
    assert summary["general.languages"] == ["en"]
    assert "tokenizer.ggml.tokens" not in summary  # 951 entries
    assert "tokenizer.ggml.scores" not in summary
    assert "test.numbers" not in summary
    assert all(not isinstance(v, list) or len(v) <= 64 for v in summary.values())


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1K"),
        (1234, "1.2K"),
        (12_345, "12K"),
        (999_600, "1M"),
        (134_515_008, "135M"),
        (1_711_376_384, "1.7B"),
        (7_241_732_096, "7.2B"),
        (8_030_261_248, "8B"),
        (70_553_706_496, "71B"),
        (1_500_000_000_000, "1.5T"),
    ],
)
def test_format_parameter_count(n, text):
    assert format_parameter_count(n) == text


def test_reading_a_big_vocabulary_is_fast(tmp_path):
    # The shape of a real tokenizer: 50k tokens, 50k scores, 50k types, 50k merges.
    n = 50_000
    path = write_tiny_model(
        tmp_path / "m.gguf",
        extra_metadata={
            "test.tokens": [f"tok{i}" for i in range(n)],
            "test.scores": [float(i) for i in range(n)],
            "test.merges": [f"a{i} b{i}" for i in range(n)],
        },
    )
    start = time.perf_counter()
    info = read_gguf(path)
    elapsed = time.perf_counter() - start
    assert len(info.metadata["test.merges"]) == n
    assert elapsed < 1.0, f"reading took {elapsed:.2f}s"


def test_reader_does_not_import_numpy(tiny):
    # `hearth list` and `hearth show` read headers; numpy would add ~0.1s to every start.
    code = (
        "import sys; from hearth.gguf import read_gguf; "
        f"read_gguf({str(tiny)!r}); print('numpy' in sys.modules, 'gguf' in sys.modules)"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_type_tables_match_the_gguf_package():
    gguf = pytest.importorskip("gguf")
    for type_id, (name, block, size) in GGML_TYPES.items():
        qtype = getattr(gguf.GGMLQuantizationType, name, None)
        if qtype is None:  # newer than the installed gguf package
            continue
        assert int(qtype) == type_id
        assert gguf.GGML_QUANT_SIZES[qtype] == (block, size)
    for file_type, name in FILE_TYPES.items():
        member = getattr(gguf.LlamaFileType, "MOSTLY_" + name, None) or getattr(
            gguf.LlamaFileType, "ALL_" + name, None
        )
        if member is not None:
            assert int(member) == file_type


# --- rejections: the file itself ---------------------------------------------------------


def test_rejects_missing_file(tmp_path):
    rejects(tmp_path / "nope.gguf", "file not found")


def test_rejects_directory(tmp_path):
    folder = tmp_path / "folder.gguf"
    folder.mkdir()
    rejects(folder, "not a regular file")


def test_rejects_empty_file(write):
    rejects(write(b""), "file is empty")


def test_rejects_text_file_renamed_gguf(write):
    path = write(b"Hello, this is a README, not a model.\n", "readme.gguf")
    rejects(path, "not a GGUF file", "magic b'Hell'")


def test_rejects_tiny_non_gguf_file(write):
    rejects(write(b"GG"), "not a GGUF file")


@pytest.mark.parametrize("version", [0, 1, 4, 99])
def test_rejects_unsupported_version(write, version):
    rejects(write(forge([ARCH], version=version)), f"unsupported GGUF version {version}")


def test_big_endian_version_gets_a_hint(write):
    data = b"GGUF" + struct.pack(">IQQ", 3, 0, 0)
    rejects(write(data), "unsupported GGUF version 50331648", "big-endian")


# --- rejections: truncation ----------------------------------------------------------------


def test_rejects_file_truncated_inside_the_header(tiny, tmp_path):
    header_end = read_gguf(tiny).data_offset
    cuts = [5, 8, 12, 20, 23, 24, 30, 40, 100, 1000, header_end // 2, header_end - 40]
    for keep in cuts:
        cut = write_truncated_copy(tiny, tmp_path / f"cut{keep}.gguf", keep)
        assert cut.stat().st_size == keep
        exc = rejects(cut, "truncated")
        assert "byte" in exc.problem


def test_truncated_message_names_the_byte(write):
    data = forge([ARCH, kv_u32("llama.context_length", 256)])
    exc = rejects(write(data[:-2]), "truncated:", f"at byte {len(data) - 2}")
    assert "llama.context_length" in exc.problem


def test_rejects_file_truncated_inside_tensor_data(tiny, tmp_path):
    size = tiny.stat().st_size
    cut = write_truncated_copy(tiny, tmp_path / "cut.gguf", size - 100)
    rejects(cut, "output.weight", "past the end of the file", f"byte {size - 100}", "truncated")


def test_every_cut_of_a_small_file_is_rejected(write):
    data = forge(
        [ARCH, kv_str("general.name", "x"), kv_u32("llama.block_count", 1)],
        [tensor_info("t", [4], GGML_F32, 0)],
        b"\0" * 16,
    )
    read_gguf(write(data))
    for keep in range(1, len(data)):
        rejects(write(data[:keep], f"cut{keep}.gguf"))


def test_random_corruption_never_escapes_as_another_error(tiny, tmp_path):
    original = tiny.read_bytes()
    header_end = read_gguf(tiny).data_offset
    rng = random.Random(1234)
    path = tmp_path / "corrupt.gguf"
    for _ in range(200):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(header_end)] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            read_gguf(path)
        except InvalidModelFile as exc:
            assert str(path) in str(exc)


# --- rejections: lengths and counts --------------------------------------------------------


def test_rejects_string_length_claiming_gigabytes(write):
    bad = gstr("general.name") + struct.pack("<IQ", STRING, 4 * 1024**3) + b"tiny"
    exc = rejects(write(forge([ARCH, bad])), "string length 4294967296", "bytes left in the file")
    assert "general.name" in exc.problem


def test_rejects_key_length_claiming_gigabytes(write):
    bad = struct.pack("<Q", 2**40) + b"general.name"
    rejects(write(forge([ARCH, bad])), f"string length {2**40}", "metadata key #1")


def sparse(path: Path, head: bytes, size: int) -> Path:
    """A file of ``size`` bytes that starts with ``head`` and takes no disk space."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def test_rejects_string_over_the_llama_cpp_limit(tmp_path):
    bad = gstr("general.name") + struct.pack("<IQ", STRING, 3 * 2**29)
    path = sparse(tmp_path / "big.gguf", forge([bad]), 2**31)
    rejects(path, f"string length {3 * 2**29}", "limit")


def test_rejects_array_length_claiming_billions(write):
    bad = gstr("tokenizer.ggml.scores") + struct.pack("<IIQ", ARRAY, F32, 500_000_000)
    exc = rejects(write(forge([ARCH, bad])), "array length 500000000", "bytes left in the file")
    assert "tokenizer.ggml.scores" in exc.problem


def test_rejects_array_length_over_the_limit(tmp_path):
    bad = gstr("test.bytes") + struct.pack("<IIQ", ARRAY, U8, 3 * 2**29)
    path = sparse(tmp_path / "big.gguf", forge([bad]), 2**31)
    rejects(path, f"array length {3 * 2**29}", "limit")


def test_rejects_string_array_length_claiming_billions(write):
    bad = gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, 100_000_000)
    rejects(write(forge([bad])), "array length 100000000", "tokenizer.ggml.tokens")


def test_rejects_long_string_array_with_a_lying_element(write):
    # Long enough to take the fast path that skips the strings without decoding them.
    items = [gstr(f"tok{i}") for i in range(2000)]
    items[1500] = struct.pack("<Q", 2**33) + b"tok"
    bad = gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, 2000)
    exc = rejects(write(forge([bad + b"".join(items)])), f"string length {2**33}")
    assert "tokenizer.ggml.tokens" in exc.problem and "string 1500" in exc.problem


def test_rejects_absurd_tensor_count(write):
    rejects(write(forge([ARCH], tensor_count=2**40)), f"tensor count {2**40} is impossible")


def test_rejects_absurd_kv_count(write):
    rejects(write(forge([ARCH], kv_count=2**62)), f"metadata count {2**62} is impossible")


def test_rejects_counts_that_overrun_the_file_together(write):
    # Each count alone could fit in what follows the header; both together cannot.
    data = forge([ARCH, kv_str("general.name", "x" * 1000)])
    left = len(data) - 24
    tensors, kvs = left // 40, left // 20
    path = write(forge([], tensor_count=tensors, kv_count=kvs) + data[24:])
    rejects(path, f"{tensors} tensors and {kvs} metadata pairs need at least")


def test_rejects_counts_larger_than_what_follows(write):
    rejects(write(forge([ARCH], kv_count=5)), "metadata count 5 is impossible", "truncated")


# --- rejections: metadata values -----------------------------------------------------------


def test_rejects_unknown_value_type(write):
    bad = gstr("general.name") + struct.pack("<I", 13) + b"\0" * 16
    rejects(write(forge([ARCH, bad])), "unknown value type 13", "general.name")


def test_rejects_unknown_array_element_type(write):
    bad = gstr("test.values") + struct.pack("<IIQ", ARRAY, 77, 1) + b"\0" * 16
    rejects(write(forge([bad])), "unknown array element type 77", "test.values")


def test_rejects_array_of_arrays(write):
    bad = gstr("test.values") + struct.pack("<IIQ", ARRAY, ARRAY, 1) + b"\0" * 16
    rejects(write(forge([bad])), "array of arrays", "test.values")


def test_rejects_key_that_is_not_utf8(write):
    bad = gstr(b"general.\xff\xfe") + struct.pack("<II", U32, 1)
    rejects(write(forge([ARCH, bad])), "metadata key #1 is not valid UTF-8")


def test_rejects_empty_key(write):
    rejects(write(forge([gstr("") + struct.pack("<II", U32, 1)])), "metadata key #0 is empty")


def test_rejects_duplicate_key(write):
    rejects(write(forge([ARCH, ARCH])), "duplicate metadata key 'general.architecture'")


@pytest.mark.parametrize("alignment", [0, 3, 24, 100])
def test_rejects_alignment_not_a_power_of_two(write, alignment):
    data = forge([kv_u32("general.alignment", alignment)])
    rejects(write(data), f"alignment {alignment} is not a power of two")


def test_rejects_alignment_of_the_wrong_type(write):
    bad = gstr("general.alignment") + struct.pack("<IQ", U64, 32)
    rejects(write(forge([bad])), "general.alignment must be a uint32")


def test_honours_custom_alignment(write):
    tensors = [tensor_info("a", [4], GGML_F32, 0), tensor_info("b", [4], GGML_F32, 64)]
    data = forge([kv_u32("general.alignment", 64)], tensors, b"\0" * 80, alignment=64)
    info = read_gguf(write(data))
    assert info.alignment == 64
    assert info.data_offset % 64 == 0
    assert info.tensors[1].offset == info.data_offset + 64


# --- rejections: the tensor table ----------------------------------------------------------


def one_tensor(write, info: bytes, data_size: int = 64) -> Path:
    return write(forge([ARCH], [info], b"\0" * data_size))


def test_rejects_unknown_ggml_type(write):
    rejects(one_tensor(write, tensor_info("w", [32], 99)), "tensor 'w'", "unknown ggml type 99")


def test_rejects_removed_ggml_type(write):
    # 4 was Q4_2, removed from llama.cpp long ago
    rejects(one_tensor(write, tensor_info("w", [32], 4)), "unknown ggml type 4")


@pytest.mark.parametrize("dims", [[], [1, 1, 1, 1, 1]])
def test_rejects_bad_number_of_dimensions(write, dims):
    rejects(one_tensor(write, tensor_info("w", dims)), "tensor 'w'", f"{len(dims)} dimensions")


@pytest.mark.parametrize("dim", [0, -1, -(2**63)])
def test_rejects_zero_or_negative_dimension(write, dim):
    rejects(one_tensor(write, tensor_info("w", [4, dim])), "dimension 1 of size")


def test_rejects_overflowing_shape(write):
    rejects(one_tensor(write, tensor_info("w", [2**32, 2**32])), "tensor 'w'", "overflows")


def test_rejects_row_not_a_multiple_of_the_block_size(write):
    rejects(one_tensor(write, tensor_info("w", [10, 2], GGML_Q8_0)), "not a multiple")


def test_rejects_tensor_offset_past_the_end(write):
    path = one_tensor(write, tensor_info("w", [4], GGML_F32, 1 << 20))
    rejects(path, "tensor 'w'", "past the end of the file")


def test_rejects_tensor_data_longer_than_the_file(write):
    path = one_tensor(write, tensor_info("w", [1024, 1024]), data_size=64)
    rejects(path, "tensor 'w'", "past the end of the file")


def test_rejects_misaligned_tensor_offset(write):
    path = one_tensor(write, tensor_info("w", [4], GGML_F32, 4))
    rejects(path, "tensor 'w' data offset 4 is not a multiple of the alignment 32")


def test_rejects_duplicate_tensor_names(write):
    tensors = [tensor_info("w", [4], GGML_F32, 0), tensor_info("w", [4], GGML_F32, 32)]
    rejects(write(forge([ARCH], tensors, b"\0" * 64)), "duplicate tensor name 'w'")


def test_rejects_tensor_name_too_long(write):
    rejects(one_tensor(write, tensor_info("w" * 64, [4])), "64 bytes long")


def test_rejects_tensor_name_that_is_not_utf8(write):
    rejects(one_tensor(write, tensor_info(b"\xff\xfe", [4])), "not valid UTF-8")
