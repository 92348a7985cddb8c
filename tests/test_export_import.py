"""`hearth export` (a model out as a plain GGUF, loaded back by llama.cpp) and
`hearth import --ollama` (an Ollama store built here with the real layout)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hearth.api.types import GenerateRequest, Options
from hearth.errors import DigestMismatch, InvalidRequest
from hearth.gguf import read_gguf
from hearth.interop.export import export_model
from hearth.interop.ollama_import import import_ollama_store
from hearth.runtime import Runtime
from hearth.store import ModelStore
from tests.conftest import hearth_env, run_hearth
from tests.tinymodel import write_tiny_lora

JINJA_TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def generate(name: str, system: str | None = None) -> str:
    runtime = Runtime()
    try:
        chunks = list(runtime.generate(GenerateRequest(
            model=name, prompt="Once upon", system=system,
            options=Options(num_predict=4, temperature=0, seed=1))))
    finally:
        runtime.close()
    assert chunks[-1].done and chunks[-1].eval_count and chunks[-1].eval_count > 0
    return "".join(chunk.response for chunk in chunks)


def prompt_tokens(name: str, system: str | None = None) -> int:
    """How many tokens the model's template made of the same request."""
    runtime = Runtime()
    try:
        chunks = list(runtime.generate(GenerateRequest(
            model=name, prompt="Once upon", system=system, options=Options(num_predict=1))))
    finally:
        runtime.close()
    return chunks[-1].prompt_eval_count or 0


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


# -- export ---------------------------------------------------------------------------------


def test_export_round_trip(hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    runtime = Runtime()
    original = runtime.create("tiny", from_path=tiny_model)
    out = tmp_path / "out" / "tiny.gguf"
    out.parent.mkdir()
    result = export_model(ModelStore(), "tiny", out)
    assert result.path == out and result.unchanged_copy
    assert sha256_of(out) == original.model_layer.digest == "sha256:" + result.sha256
    assert leftovers(out.parent) == []

    again = runtime.create("again", from_path=out)
    assert again.model_layer.digest == original.model_layer.digest
    assert generate("again") == generate("tiny")


def test_export_writes_the_models_template_and_license_into_the_gguf(
        hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    modelfile = (f'FROM "{tiny_model}"\nTEMPLATE """{JINJA_TEMPLATE}"""\nSYSTEM """Be brief."""\n'
                 "PARAMETER temperature 0.2\n")
    runtime = Runtime()
    runtime.create("custom", modelfile=modelfile)
    store = ModelStore()
    model = store.get("custom")
    config_blob = store.blobs.path(model.manifest.config.digest)
    config = json.loads(config_blob.read_text())
    config["license_id"] = "MIT"  # as a catalog entry would set it, differing from the GGUF's
    from hearth.store.manifests import Layer, Manifest

    new_config = store.layer_from_bytes(model.manifest.config.media_type, json.dumps(config).encode())
    store.manifests.put(model.name, Manifest(Layer(new_config.media_type, new_config.digest, new_config.size),
                                             model.manifest.layers))

    out = tmp_path / "custom.gguf"
    result = export_model(store, "custom", out)
    assert result.written_metadata == ["general.license", "tokenizer.chat_template"]
    assert any("system prompt" in item for item in result.not_carried)
    assert any("temperature=0.2" in item for item in result.not_carried)

    before, after = read_gguf(tiny_model), read_gguf(out)
    assert after.chat_template == JINJA_TEMPLATE and after.license == "MIT"
    unchanged = {k: v for k, v in before.metadata.items() if k not in ("tokenizer.chat_template", "general.license")}
    assert {k: v for k, v in after.metadata.items() if k in unchanged} == unchanged
    # Every tensor's bytes are the same, only moved with the longer metadata.
    assert [(t.name, t.shape, t.ggml_type) for t in after.tensors] == \
        [(t.name, t.shape, t.ggml_type) for t in before.tensors]
    old_bytes, new_bytes = tiny_model.read_bytes(), out.read_bytes()
    for old, new in zip(before.tensors, after.tensors, strict=True):
        assert new.offset % after.alignment == 0
        assert new_bytes[new.offset:new.offset + new.nbytes] == old_bytes[old.offset:old.offset + old.nbytes]

    # llama.cpp loads the rewritten file, and the carried template gives the same prompt (the
    # system prompt, not carried, is given with the request instead).
    runtime.create("reimported", from_path=out)
    assert ModelStore().get("reimported").template is None  # the template now lives in the GGUF
    assert generate("reimported", system="Be brief.") == generate("custom")
    runtime.create("plain", from_path=tiny_model)
    assert prompt_tokens("reimported", "Be brief.") == prompt_tokens("custom")
    assert prompt_tokens("plain", "Be brief.") != prompt_tokens("custom")


def test_export_refuses_to_overwrite_without_force(hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    Runtime().create("tiny", from_path=tiny_model)
    out = tmp_path / "taken.gguf"
    out.write_text("someone else's file")
    with pytest.raises(InvalidRequest, match="already exists; use --force"):
        export_model(ModelStore(), "tiny", out)
    assert out.read_text() == "someone else's file"
    result = export_model(ModelStore(), "tiny", out, force=True)
    assert sha256_of(out) == "sha256:" + result.sha256
    # A folder as destination gets a file named after the model.
    assert export_model(ModelStore(), "tiny", tmp_path).path == tmp_path / "tiny-latest.gguf"
    assert leftovers(tmp_path) == []
    with pytest.raises(InvalidRequest, match="does not exist"):
        export_model(ModelStore(), "tiny", tmp_path / "no" / "such.gguf")


def test_export_refuses_models_with_adapters(hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    lora = write_tiny_lora(tmp_path / "lora.gguf", tiny_model)
    Runtime().create("tuned", modelfile=f'FROM "{tiny_model}"\nADAPTER "{lora}"\n')
    with pytest.raises(InvalidRequest, match="LoRA adapter"):
        export_model(ModelStore(), "tuned", tmp_path / "tuned.gguf")
    assert not (tmp_path / "tuned.gguf").exists()


def test_export_notices_a_damaged_blob(hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    model = Runtime().create("tiny", from_path=tiny_model)
    blob = model.model_path
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match="do not match their digest"):
        export_model(ModelStore(), "tiny", tmp_path / "tiny.gguf")
    assert not (tmp_path / "tiny.gguf").exists() and leftovers(tmp_path) == []


def test_export_command(tmp_path: Path, tiny_model: Path) -> None:
    env = hearth_env(tmp_path / "home")
    assert run_hearth(["create", "tiny", "--from", str(tiny_model)], env).returncode == 0
    out = tmp_path / "cli.gguf"
    first = run_hearth(["export", "tiny", str(out)], env)
    assert first.returncode == 0, first.stderr
    assert "copied unchanged, sha256 verified" in first.stdout
    second = run_hearth(["export", "tiny", str(out)], env)
    assert second.returncode == 1 and "use --force" in second.stderr
    assert run_hearth(["export", "tiny", str(out), "--force"], env).returncode == 0


# -- import from an Ollama store ------------------------------------------------------------


def put_blob(root: Path, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest.replace(":", "-")).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def put_manifest(root: Path, relative: str, config: dict, layers: list[tuple[str, dict]]) -> Path:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
        "layers": [{"mediaType": media_type, **blob} for media_type, blob in layers],
    }
    path = root / "manifests" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path


def ollama_model(root: Path, relative: str, weights: bytes) -> dict:
    """A model as Ollama stores it: weights, a Go template, parameters, system prompt, license."""
    config = put_blob(root, json.dumps({
        "model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
        "model_type": "40K", "file_type": "F32", "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    layers = [
        ("application/vnd.ollama.image.model", put_blob(root, weights)),
        ("application/vnd.ollama.image.template",
         put_blob(root, b"{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                        b"<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n")),
        ("application/vnd.ollama.image.system", put_blob(root, b"You are terse.")),
        ("application/vnd.ollama.image.params",
         put_blob(root, json.dumps({"temperature": 0.2, "stop": ["<|im_end|>"], "mirostat": 1}).encode())),
        ("application/vnd.ollama.image.license", put_blob(root, b"Apache License 2.0 (test text)")),
    ]
    put_manifest(root, relative, config, layers)
    return dict(layers)


def test_import_from_an_ollama_store(hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    ollama = tmp_path / "ollama"
    blobs = ollama_model(ollama, "registry.ollama.ai/library/tiny/latest", tiny_model.read_bytes())
    store = ModelStore()
    events = []
    outcomes = import_ollama_store(store, ollama, events.append)
    (outcome,) = outcomes
    assert (outcome.status, outcome.name) == ("imported", "registry.ollama.ai/library/tiny:latest")
    # weights, system prompt and license come over; the trimmed parameters are a new blob
    assert outcome.linked == 3 and outcome.copied == 0
    assert any("Go) template left out" in note for note in outcome.notes)
    assert any("mirostat" in note for note in outcome.notes)
    assert events and events[-1].completed == events[-1].total

    model = store.get("registry.ollama.ai/library/tiny:latest")
    assert model.system == "You are terse." and model.template is None
    assert model.parameters == {"temperature": 0.2, "stop": ["<|im_end|>"]}
    assert model.licenses == ["Apache License 2.0 (test text)"]
    assert model.config["source"] == "ollama:registry.ollama.ai/library/tiny/latest"
    # The weights are the same file on disk: hard-linked, not copied.
    weights = blobs["application/vnd.ollama.image.model"]["digest"]
    ollama_blob = ollama / "blobs" / weights.replace(":", "-")
    assert os.stat(model.model_path).st_ino == os.stat(ollama_blob).st_ino
    assert leftovers(store.blobs.root) == []
    assert generate("registry.ollama.ai/library/tiny") != ""

    again = import_ollama_store(store, ollama)
    assert [(o.status, o.detail) for o in again] == [("skipped", "already in hearth's store")]


def test_import_reports_bad_models_and_imports_the_good_ones(
        hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    ollama = tmp_path / "ollama"
    weights = tiny_model.read_bytes()
    ollama_model(ollama, "registry.ollama.ai/library/good/latest", weights)

    # A damaged blob: same size, one byte changed after Ollama stored it.
    damaged = bytearray(weights)
    damaged[len(damaged) // 2] ^= 0x55
    bad_blobs = ollama_model(ollama, "registry.ollama.ai/library/damaged/latest", bytes(damaged))
    path = ollama / "blobs" / bad_blobs["application/vnd.ollama.image.model"]["digest"].replace(":", "-")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55  # back to the good weights: no longer the digest's bytes
    path.write_bytes(bytes(data))

    config = put_blob(ollama, b"{}")
    escaping = {"digest": "sha256:../../../../etc/passwd", "size": 10}
    put_manifest(ollama, "registry.ollama.ai/library/escape/latest", config,
                 [("application/vnd.ollama.image.model", escaping)])
    put_manifest(ollama, "registry.ollama.ai/library/missing/latest", config,
                 [("application/vnd.ollama.image.model", {"digest": "sha256:" + "ab" * 32, "size": 3})])
    (ollama / "manifests" / "registry.ollama.ai" / "library" / "notjson").mkdir()
    (ollama / "manifests" / "registry.ollama.ai" / "library" / "notjson" / "latest").write_text("{nope")
    (ollama / "manifests" / "registry.ollama.ai" / "stray").write_text("{}")
    bad_name = ollama / "manifests" / "registry.ollama.ai" / "library" / "-bad" / "latest"
    bad_name.parent.mkdir()
    bad_name.write_text("{}")

    store = ModelStore()
    outcomes = {o.source: o for o in import_ollama_store(store, ollama)}
    status = {source: o.status for source, o in outcomes.items()}
    assert status == {
        "registry.ollama.ai/library/good/latest": "imported",
        "registry.ollama.ai/library/damaged/latest": "failed",
        "registry.ollama.ai/library/escape/latest": "failed",
        "registry.ollama.ai/library/missing/latest": "failed",
        "registry.ollama.ai/library/notjson/latest": "failed",
        "registry.ollama.ai/library/-bad/latest": "failed",
        "registry.ollama.ai/stray": "failed",
    }
    assert "does not match its digest" in outcomes["registry.ollama.ai/library/damaged/latest"].detail
    assert "invalid digest" in outcomes["registry.ollama.ai/library/escape/latest"].detail
    assert "missing from the Ollama store" in outcomes["registry.ollama.ai/library/missing/latest"].detail
    assert "not valid JSON" in outcomes["registry.ollama.ai/library/notjson/latest"].detail
    assert "invalid model name" in outcomes["registry.ollama.ai/library/-bad/latest"].detail
    assert "not a manifest path" in outcomes["registry.ollama.ai/stray"].detail

    assert [m.name.short for m in store.list()] == ["registry.ollama.ai/library/good:latest"]
    # Nothing of the damaged model stayed behind: only the good model's blobs are stored.
    assert set(store.blobs.digests()) == store.get("registry.ollama.ai/library/good").manifest.digests()
    assert leftovers(store.blobs.root) == []


def test_import_copies_across_file_systems_and_maps_short_names(
        hearth_home: Path, tiny_model: Path, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the temp folder")
    ollama = shm / f"hearth-test-ollama-{os.getpid()}"
    try:
        ollama_model(ollama, "registry.ollama.ai/library/tiny/latest", tiny_model.read_bytes())
        (outcome,) = import_ollama_store(ModelStore(), ollama, short_names=True)
        assert (outcome.status, outcome.name) == ("imported", "tiny:latest")
        assert outcome.linked == 0 and outcome.copied == 3
        model = ModelStore().get("tiny")
        assert sha256_of(model.model_path) == model.model_layer.digest
    finally:
        import shutil

        shutil.rmtree(ollama, ignore_errors=True)


def test_import_command(tmp_path: Path, tiny_model: Path) -> None:
    ollama = tmp_path / "ollama-home"
    ollama_model(ollama, "registry.ollama.ai/library/tiny/latest", tiny_model.read_bytes())
    put_manifest(ollama, "registry.ollama.ai/library/broken/latest", put_blob(ollama, b"{}"),
                 [("application/vnd.ollama.image.model", {"digest": "sha256:../x", "size": 1})])
    env = hearth_env(tmp_path / "home", OLLAMA_MODELS=str(ollama))
    result = run_hearth(["import", "--ollama"], env)
    assert result.returncode == 1  # one model failed
    assert "2 model(s) in" in result.stdout and "1 imported, 0 skipped, 1 failed" in result.stdout
    listed = run_hearth(["list"], env)
    assert "registry.ollama.ai/library/tiny:latest" in listed.stdout
    answer = run_hearth(["run", "registry.ollama.ai/library/tiny", "Once upon", "-o", "num_predict=3"], env)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()
    nowhere = run_hearth(["import", "--ollama", str(tmp_path / "nothing")], env)
    assert nowhere.returncode == 1 and "is not an Ollama model store" in nowhere.stderr
