"""The model store: content-addressed blobs, Ollama-layout manifests, copy/delete/prune, and
what happens when the store is tampered with or cannot be written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.errors import DigestMismatch, InvalidRequest, ModelNotFound, StoreError
from hearth.runtime import Runtime
from hearth.store import Layer, MediaType, ModelStore, validate_digest
from tests.conftest import hearth_env

HEX = "0123456789abcdef" * 4
DIGEST_FILE_RE = re.compile(r"^sha256-[0-9a-f]{64}$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def blob_files(store: ModelStore) -> list[str]:
    return [name for name in files_in(store.blobs.root) if name.startswith("sha256-")]


def temp_files(store: ModelStore) -> list[str]:
    return [name for name in files_in(store.blobs.root) if name.startswith(".tmp-")]


@pytest.fixture
def store(hearth_home: Path) -> ModelStore:
    return ModelStore()


def make_model(store: ModelStore, name: str, weights: bytes, system: str | None = "be brief",
               params: dict | None = None) -> list[Layer]:
    layers = [store.layer_from_bytes(MediaType.MODEL, weights)]
    if system is not None:
        layers.append(store.layer_from_bytes(MediaType.SYSTEM, system.encode()))
    layers.append(store.layer_from_bytes(MediaType.PARAMS, json.dumps(params or {"temperature": 0}).encode()))
    store.save(name, {"model_family": "llama"}, layers)
    return layers


def dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


# -- blobs ----------------------------------------------------------------------------------


def test_store_lives_under_hearth_home(hearth_home: Path, store: ModelStore) -> None:
    assert store.root == hearth_home.resolve() / "models"
    assert store.blobs.root == hearth_home.resolve() / "models" / "blobs"
    assert store.manifests.root == hearth_home.resolve() / "models" / "manifests"


def test_put_bytes_is_content_addressed(store: ModelStore) -> None:
    data = b"some model bytes\x00\xff" * 1000
    digest, size = store.blobs.put_bytes(data)
    assert digest == sha256(data)
    assert size == len(data)
    path = store.blobs.root / ("sha256-" + digest[7:])
    assert path.read_bytes() == data
    assert store.blobs.path(digest) == path
    assert store.blobs.has(digest)
    assert store.blobs.size(digest) == len(data)
    assert store.blobs.read_bytes(digest) == data
    assert list(store.blobs.digests()) == [digest]
    # The same bytes again are the same blob.
    assert store.blobs.put_bytes(data) == (digest, len(data))
    assert files_in(store.blobs.root) == [path.name]


def test_empty_blob(store: ModelStore) -> None:
    digest, size = store.blobs.put_bytes(b"")
    assert digest == sha256(b"") and size == 0
    assert store.blobs.path(digest).read_bytes() == b""


def test_put_stream_with_the_right_digest(store: ModelStore, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one chunk
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    seen: list[int] = []
    with open(source, "rb") as handle:
        # Ollama's file form of the digest is accepted too.
        digest, size = store.blobs.put_stream(handle, expected_digest="sha256-" + sha256(data)[7:],
                                              on_bytes=seen.append)
    assert digest == sha256(data) and size == len(data) == sum(seen)
    assert store.blobs.read_bytes(digest) == data
    assert temp_files(store) == []


def test_wrong_digest_stores_nothing(store: ModelStore) -> None:
    data = b"the bytes that arrived"
    wrong = "sha256:" + "0" * 64
    with store.blobs.writer(expected_digest=wrong) as writer:
        writer.write(data)
        with pytest.raises(DigestMismatch) as info:
            writer.commit()
    assert wrong in info.value.message
    assert sha256(data) in info.value.message
    assert files_in(store.blobs.root) == []
    assert not store.blobs.has(sha256(data))
    assert not store.blobs.has(wrong)


def test_wrong_digest_through_put_stream_stores_nothing(store: ModelStore, tmp_path: Path) -> None:
    source = tmp_path / "download.bin"
    source.write_bytes(b"x" * 5000)
    with open(source, "rb") as handle, pytest.raises(DigestMismatch):
        store.blobs.put_stream(handle, expected_digest="sha256:" + HEX)
    assert files_in(store.blobs.root) == []


def test_an_exception_while_writing_leaves_nothing(store: ModelStore) -> None:
    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted), store.blobs.writer() as writer:
        writer.write(b"half a model")
        # The bytes really are on disk, under a temp name only.
        assert len(temp_files(store)) == 1
        assert blob_files(store) == []
        raise Interrupted
    assert files_in(store.blobs.root) == []


def test_put_file_of_a_missing_file_is_a_clean_error(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        store.blobs.put_file(tmp_path / "nope.gguf")
    assert blob_files(store) == [] and temp_files(store) == []


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:../../etc/passwd",
        "sha256-../../etc/passwd",
        "sha256:" + HEX.upper(),
        "sha256:" + HEX[:63],
        "sha256:" + HEX + "0",
        "sha256:" + "g" * 64,
        "md5:" + "a" * 32,
        "sha512:" + HEX + HEX,
        "sha256:",
        "",
        HEX,
        "/etc/passwd",
        "sha256:" + HEX[:32] + "/" + HEX[33:],
        " sha256:" + HEX,
    ],
    ids=repr,
)
def test_validate_digest_rejects(store: ModelStore, digest: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_digest(digest)
    with pytest.raises(InvalidRequest):
        store.blobs.path(digest)
    if digest:  # an empty expected digest means "none promised"
        with pytest.raises(InvalidRequest):
            store.blobs.writer(expected_digest=digest)


@pytest.mark.parametrize("value", [None, 123, b"sha256:" + HEX.encode()], ids=repr)
def test_validate_digest_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidRequest):
        validate_digest(value)  # type: ignore[arg-type]


def test_validate_digest_accepts_both_forms() -> None:
    assert validate_digest("sha256:" + HEX) == "sha256:" + HEX
    assert validate_digest("sha256-" + HEX) == "sha256:" + HEX


def test_validate_digest_rejects_a_trailing_newline() -> None:
    with pytest.raises(InvalidRequest):
        validate_digest("sha256:" + HEX + "\n")


# -- manifests ------------------------------------------------------------------------------


def test_save_and_get_round_trip(store: ModelStore) -> None:
    layers = make_model(store, "ns/m:v1", b"weights", system="be brief", params={"temperature": 0.5})
    model = store.get("ns/m:v1")
    assert model.name.short == "ns/m:v1"
    assert model.manifest.layers == layers
    assert model.config["model_family"] == "llama"
    assert model.system == "be brief"
    assert model.parameters == {"temperature": 0.5}
    assert model.template is None and model.licenses == [] and model.messages == []
    assert model.model_path.read_bytes() == b"weights"
    manifest_path = store.manifests.path(model.name)
    assert model.digest == sha256(manifest_path.read_bytes())
    assert model.short_id == model.digest[7:19]
    assert model.size == sum(layer.size for layer in layers) + model.manifest.config.size
    # Names are case-insensitive, in the store as everywhere else.
    assert store.exists("NS/M:V1")
    assert store.get("NS/M:V1").digest == model.digest
    with pytest.raises(ModelNotFound):
        store.get("ns/m:v2")


def test_save_refuses_layers_whose_blobs_are_missing(store: ModelStore) -> None:
    missing = Layer(MediaType.MODEL, "sha256:" + HEX, 10)
    with pytest.raises(StoreError):
        store.save("m", {}, [missing])
    assert not store.exists("m")


def test_manifest_uses_ollamas_layout(hearth_home: Path, store: ModelStore) -> None:
    make_model(store, "tinyllama", b"weights")
    make_model(store, "team/other:q4", b"other weights")
    path = hearth_home / "models" / "manifests" / "hearth.local" / "library" / "tinyllama" / "latest"
    assert path.is_file()
    assert (hearth_home / "models/manifests/hearth.local/team/other/q4").is_file()
    data = json.loads(path.read_text())
    assert data["schemaVersion"] == 2
    assert data["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert data["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    entries = [data["config"], *data["layers"]]
    assert [layer["mediaType"] for layer in data["layers"]] == [
        "application/vnd.ollama.image.model",
        "application/vnd.ollama.image.system",
        "application/vnd.ollama.image.params",
    ]
    for entry in entries:
        assert set(entry) >= {"mediaType", "digest", "size"}
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", entry["digest"])
        blob = hearth_home / "models" / "blobs" / entry["digest"].replace(":", "-")
        assert blob.is_file()
        assert blob.stat().st_size == entry["size"]
        assert sha256(blob.read_bytes()) == entry["digest"]
    # Nothing but manifests and blobs, and no temp files left behind.
    assert sorted(p.name for p in (hearth_home / "models").iterdir()) == ["blobs", "manifests"]
    leftovers = [p for p in (hearth_home / "models").rglob(".tmp-*")]
    assert leftovers == []


def _tamper(store: ModelStore, name: str, digest: str) -> Path:
    path = store.manifests.path(store.get(name).name)
    data = json.loads(path.read_text())
    data["layers"][0]["digest"] = digest
    path.write_text(json.dumps(data))
    return path


def test_a_tampered_digest_is_a_damaged_model_not_a_path(hearth_home: Path, store: ModelStore) -> None:
    make_model(store, "victim", b"weights")
    make_model(store, "bystander", b"other weights")
    # Make the traversal resolvable, and put a file where it would land.
    (store.blobs.root / "sha256-..").mkdir()
    target = store.root / "x"
    target.write_bytes(b"not yours")
    assert (store.blobs.root / "sha256-../../../x").resolve() == target.resolve()
    _tamper(store, "victim", "sha256:../../../x")

    with pytest.raises(StoreError) as info:
        store.get("victim")
    assert "victim" in info.value.message and "damaged" in info.value.message
    with pytest.raises(StoreError):
        Runtime(store).show("victim")
    assert [m.name.short for m in store.list()] == ["bystander:latest"]
    store.prune()
    assert target.read_bytes() == b"not yours"
    assert store.get("bystander").model_path.read_bytes() == b"other weights"


def test_a_damaged_model_can_be_removed(store: ModelStore) -> None:
    make_model(store, "victim", b"weights")
    path = _tamper(store, "victim", "sha256:../../../x")
    store.delete("victim")
    assert not path.exists()
    assert not store.exists("victim")


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"schemaVersion": 1, "layers": []}',
     b'{"schemaVersion": 2, "config": {}, "layers": []}',
     b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:' + HEX.encode()
     + b'", "size": -1}, "layers": []}'],
    ids=repr,
)
def test_unreadable_manifests_are_store_errors(store: ModelStore, content: bytes) -> None:
    make_model(store, "m", b"weights")
    store.manifests.path(store.get("m").name).write_bytes(content)
    with pytest.raises(StoreError):
        store.get("m")
    assert store.list() == []


def test_list_skips_garbage_in_the_manifests_tree(store: ModelStore) -> None:
    make_model(store, "good", b"weights")
    root = store.manifests.root
    garbage = {
        "README": b"hello",
        "hearth.local/stray": b"x",
        "hearth.local/library/stray": b"x",
        "hearth.local/library/Bad Name/latest": b"{}",
        "hearth.local/library/bad$/latest": b"{}",
        "hearth.local/library/junk/latest": b"not json",
        "hearth.local/library/empty/latest": b"",
        "hearth.local/library/good/.tmp-1-abc": b"{}",
        "hearth.local/library/good/latest.d/deeper": b"{}",
        "hearth.local/library/a/b/c/d": b"{}",
        "..weird/ns/m/t": b"{}",
    }
    for relative, content in garbage.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    assert [m.name.short for m in store.list()] == ["good:latest"]
    assert [m.name for m in Runtime(store).list_models().models] == ["good:latest"]


def test_list_on_an_empty_or_missing_store(store: ModelStore) -> None:
    assert store.list() == []
    assert list(store.blobs.digests()) == []
    assert store.prune().blobs_removed == 0


def test_copy_then_delete_keeps_shared_blobs(store: ModelStore) -> None:
    make_model(store, "a", b"the weights")
    copied = store.copy("a", "ns/b:v2")
    original = store.get("a")
    assert copied.manifest == original.manifest
    assert copied.digest == original.digest  # same manifest bytes, same ID
    model_blob = original.model_path
    blobs_before = blob_files(store)

    assert store.delete("a") == []
    with pytest.raises(ModelNotFound):
        store.get("a")
    assert not (store.manifests.root / "hearth.local" / "library" / "a").exists()
    assert blob_files(store) == blobs_before
    assert model_blob.is_file()
    survivor = store.get("ns/b:v2")
    assert survivor.model_path == model_blob
    assert survivor.model_path.read_bytes() == b"the weights"
    assert survivor.system == "be brief"

    removed = store.delete("ns/b:v2")
    assert sorted(removed) == sorted(survivor.manifest.digests())
    assert blob_files(store) == []
    assert store.list() == []
    assert not (store.manifests.root / "hearth.local" / "ns").exists()


def test_delete_keeps_blobs_another_model_shares(store: ModelStore) -> None:
    first = make_model(store, "first", b"weights one", system="shared system")
    second = make_model(store, "second", b"weights two", system="shared system")
    assert first[1] == second[1]  # one system blob for both
    removed = store.delete("first")
    assert first[0].digest in removed
    assert first[1].digest not in removed
    assert store.get("second").system == "shared system"
    assert not store.blobs.has(first[0].digest)
    assert store.blobs.has(second[0].digest)


def test_delete_of_an_unknown_model(store: ModelStore) -> None:
    make_model(store, "m", b"weights")
    before = blob_files(store)
    with pytest.raises(ModelNotFound):
        store.delete("other")
    assert blob_files(store) == before


def test_prune(hearth_home: Path, store: ModelStore) -> None:
    layers = make_model(store, "kept", b"weights")
    orphan, _ = store.blobs.put_bytes(b"nobody uses me")
    stale = store.blobs.root / f".tmp-{dead_pid()}-abc"
    stale.write_bytes(b"interrupted download")
    live = store.blobs.root / f".tmp-{os.getpid()}-def"
    live.write_bytes(b"still being written")
    stale_manifest = store.manifests.root / "hearth.local" / "library" / "kept" / f".tmp-{dead_pid()}-0"
    stale_manifest.write_bytes(b"{}")
    scratch = hearth_home.resolve() / "tmp" / f".tmp-{dead_pid()}-pull"
    scratch.mkdir(parents=True)
    (scratch / "part").write_bytes(b"12345")
    not_ours = store.blobs.root / "notes.txt"
    not_ours.write_bytes(b"a user's file")

    report = store.prune()

    assert report.blobs_removed == 1
    assert report.temp_files_removed == 3
    assert report.bytes_freed == len(b"nobody uses me") + len(b"interrupted download") + 2 + 5
    assert not store.blobs.has(orphan)
    assert not stale.exists() and not stale_manifest.exists() and not scratch.exists()
    assert live.read_bytes() == b"still being written"
    assert not_ours.exists()
    model = store.get("kept")
    for digest in model.manifest.digests():
        assert store.blobs.has(digest)
    assert [layer.digest for layer in model.manifest.layers] == [layer.digest for layer in layers]
    # A second prune finds nothing.
    again = store.prune()
    assert (again.blobs_removed, again.temp_files_removed) == (0, 0)


# -- a HEARTH_HOME that cannot be written ----------------------------------------------------

NOBODY = 65534
DROP_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"]


def _unprivileged_prefix(env: dict[str, str]) -> tuple[list[str], dict]:
    """How to run a command so that file permissions apply to it.

    Root ignores permission bits. As in CI, prefer running as `nobody`; where `nobody` cannot
    run this Python (e.g. an interpreter under /root, mode 0700), stay root but drop the
    capabilities that bypass permission checks.
    """
    if os.geteuid() != 0:
        return [], {}
    as_nobody = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    try:
        probe = subprocess.run([sys.executable, "-c", "import hearth"], env=env, capture_output=True,
                               timeout=60, **as_nobody)
        if probe.returncode == 0:
            return [], as_nobody
    except OSError:
        pass
    if shutil.which("setpriv"):
        probe = subprocess.run([*DROP_DAC, "true"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return DROP_DAC, {}
    pytest.skip("running as root, and neither `nobody` nor setpriv can drop the permission bypass")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder that any user can enter (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="hearth-readonly-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for sub in [path, *path.rglob("*")]:
            if sub.is_dir():
                sub.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


def test_read_only_hearth_home_is_a_clean_error(shared_dir: Path, tiny_model: Path) -> None:
    model = shared_dir / "tiny.gguf"
    shutil.copyfile(tiny_model, model)
    model.chmod(0o644)
    home = shared_dir / "home"
    home.mkdir()
    home.chmod(0o555)
    env = hearth_env(home)
    prefix, user = _unprivileged_prefix(env)

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, "-m", "hearth", *args], env=env,
                              capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL, **user)

    result = run(["create", "m", "--from", str(model)])
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    message = errors[0].lower()
    assert "hearth_home" in message or "writable" in message or "permission" in message
    assert files_in(home) == []
    assert stat.S_IMODE(home.stat().st_mode) == 0o555

    # Reading still works: an empty, unwritable store lists no models.
    listed = run(["list"])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert files_in(home) == []
