"""`hearth create` from Modelfiles and GGUF files, through Runtime and through the CLI, plus the
`show`, `list`, `cp` and `rm` commands that read back what was created."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.errors import InvalidModelName, ModelfileError, ModelNotFound, TemplateError
from hearth.modelfile import parse_modelfile
from hearth.runtime import Runtime
from hearth.store import ModelStore
from hearth.units import human_size
from tests.conftest import hearth_env, run_hearth

SYSTEM = "You are terse.\nAnswer in one line."
TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LICENSE = "MIT License\n\nCopyright (c) the tiny model's authors"
MODELFILE = f'''# a Modelfile shipped next to its weights
FROM ./tiny.gguf
PARAMETER temperature 0
PARAMETER stop "<|im_end|>"
PARAMETER stop "<|im_start|>"
SYSTEM """{SYSTEM}"""
TEMPLATE """{TEMPLATE}"""
LICENSE """{LICENSE}"""
MESSAGE user "Is the sky blue?"
MESSAGE assistant Yes.
'''
MESSAGES = [("user", "Is the sky blue?"), ("assistant", "Yes.")]


def run_hearth_in(cwd: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hearth", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single `Error: ...` line of a failed command (progress lines may come before it)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0], result.stderr
    return errors[0]


def blob_count(home: Path) -> int:
    blobs = home / "models" / "blobs"
    return len(list(blobs.iterdir())) if blobs.is_dir() else 0


def store_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []


@pytest.fixture
def package(tmp_path: Path, tiny_model: Path) -> Path:
    """A folder holding a model file and its Modelfile, as a model is often shipped."""
    folder = tmp_path / "package"
    folder.mkdir()
    shutil.copyfile(tiny_model, folder / "tiny.gguf")
    (folder / "Modelfile").write_text(MODELFILE)
    return folder


def check_full_model(name: str, tiny_model: Path) -> None:
    runtime = Runtime()
    shown = runtime.show(name)
    assert shown.system == SYSTEM
    assert shown.template == TEMPLATE
    assert shown.license == LICENSE
    assert "temperature" in shown.parameters
    assert "<|im_end|>" in shown.parameters and "<|im_start|>" in shown.parameters
    assert [(m.role, m.content) for m in shown.messages] == MESSAGES
    assert shown.details.family == "llama"
    assert shown.details.quantization_level == "F32"
    model = runtime.get_model(name)
    assert model.parameters == {"temperature": 0.0, "stop": ["<|im_end|>", "<|im_start|>"]}
    # The weights were copied byte for byte.
    weights = tiny_model.read_bytes()
    assert model.model_layer.digest == "sha256:" + hashlib.sha256(weights).hexdigest()
    assert model.model_layer.size == len(weights)


def test_create_from_a_modelfile_through_runtime(hearth_home: Path, package: Path, tiny_model: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # FROM ./tiny.gguf is relative to the Modelfile's folder, not the working directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    created = Runtime().create("full", modelfile=MODELFILE, base_dir=package)
    assert created.name.short == "full:latest"
    check_full_model("full", tiny_model)

    # The generated Modelfile describes the same model and builds it again.
    shown = Runtime().show("full")
    original = parse_modelfile(MODELFILE)
    again = parse_modelfile(shown.modelfile)
    assert Path(again.from_).is_file()
    for field in ("parameters", "template", "system", "licenses", "messages"):
        assert getattr(again, field) == getattr(original, field), field
    rebuilt = Runtime().create("rebuilt", modelfile=shown.modelfile, base_dir=elsewhere)
    assert rebuilt.model_layer == created.model_layer
    check_full_model("rebuilt", tiny_model)


def test_create_from_a_modelfile_through_the_cli(hearth_home: Path, package: Path, tiny_model: Path) -> None:
    env = hearth_env(hearth_home)
    # The subprocess runs in the repository, so ./tiny.gguf only resolves against the Modelfile.
    result = run_hearth(["create", "full", "-f", str(package / "Modelfile")], env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    check_full_model("full", tiny_model)

    def show(section: str) -> str:
        shown = run_hearth(["show", "full", f"--{section}"], env)
        assert shown.returncode == 0, shown.stderr
        return shown.stdout

    assert show("system") == SYSTEM + "\n"
    assert show("template") == TEMPLATE + "\n"
    assert show("license") == LICENSE + "\n"
    parameters = [line.split(None, 1) for line in show("parameters").splitlines()]
    assert parameters == [["temperature", "0.0"], ["stop", "<|im_end|>"], ["stop", "<|im_start|>"]]
    modelfile = parse_modelfile(show("modelfile"))
    original = parse_modelfile(MODELFILE)
    assert modelfile.system == SYSTEM
    assert modelfile.template == TEMPLATE
    assert modelfile.licenses == [LICENSE]
    assert modelfile.parameters == original.parameters
    assert modelfile.messages == original.messages
    assert hashlib.sha256(Path(modelfile.from_).read_bytes()).hexdigest() == \
        hashlib.sha256(tiny_model.read_bytes()).hexdigest()


def test_from_an_existing_model_inherits_unless_overridden(hearth_home: Path, package: Path) -> None:
    runtime = Runtime()
    base = runtime.create("base", modelfile=MODELFILE, base_dir=package)

    child = runtime.create("child", modelfile="FROM BASE:Latest\nPARAMETER temperature 0.7\n", base_dir=package)
    shown = runtime.show("child")
    assert shown.system == SYSTEM
    assert shown.template == TEMPLATE
    assert shown.license == LICENSE
    assert [(m.role, m.content) for m in shown.messages] == MESSAGES
    assert child.parameters == {"temperature": 0.7, "stop": ["<|im_end|>", "<|im_start|>"]}
    assert child.model_layer == base.model_layer
    assert shown.details.parent_model == "base:latest"

    other = runtime.create(
        "other",
        modelfile='FROM base\nSYSTEM "Talk like a pirate."\nTEMPLATE "{{ messages[0].content }}"\n'
        "LICENSE other-license\nMESSAGE user Hi\n",
        base_dir=package,
    )
    assert other.system == "Talk like a pirate."
    assert other.template == "{{ messages[0].content }}"
    assert other.licenses == ["other-license"]
    assert other.messages == [{"role": "user", "content": "Hi"}]
    assert other.parameters == {"temperature": 0.0, "stop": ["<|im_end|>", "<|im_start|>"]}

    # The base is untouched by its children.
    assert runtime.get_model("base").parameters == {"temperature": 0.0, "stop": ["<|im_end|>", "<|im_start|>"]}
    assert runtime.get_model("base").system == SYSTEM
    # Children share the weights blob with the base.
    assert len({m.model_layer.digest for m in ModelStore().list()}) == 1


def test_create_errors_in_process(hearth_home: Path, package: Path) -> None:
    runtime = Runtime()
    with pytest.raises(ModelfileError) as info:
        runtime.create("m", modelfile="FROM ./tiny.gguf\nPARAMETER temperature hot\n", base_dir=package)
    assert "line 2" in info.value.message
    with pytest.raises(TemplateError):
        runtime.create("m", modelfile='FROM ./tiny.gguf\nTEMPLATE "{% for %}"\n', base_dir=package)
    with pytest.raises(ModelNotFound):
        runtime.create("m", modelfile="FROM nothing-here\n", base_dir=package)
    with pytest.raises(InvalidModelName):
        runtime.create("a/../b", from_path=package / "tiny.gguf")
    assert ModelStore().list() == []
    # A Modelfile that failed before its FROM was read left no blob behind.
    assert blob_count(hearth_home) == 0


def test_create_from_a_gguf_file_and_list(hearth_home: Path, package: Path) -> None:
    env = hearth_env(hearth_home)
    result = run_hearth_in(package, ["create", "tiny", "--from", "tiny.gguf"], env)
    assert result.returncode == 0, result.stderr
    model = ModelStore().get("tiny")
    assert model.model_path.read_bytes() == (package / "tiny.gguf").read_bytes()
    assert model.config["source"] == "file:tiny.gguf"

    listed = run_hearth(["list"], env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    rows = [line for line in lines[1:] if line.startswith("tiny:latest ")]
    assert len(rows) == 1, listed.stdout
    row = rows[0].split()
    assert row[1] == model.short_id
    assert len(row[1]) == 12 and all(c in "0123456789abcdef" for c in row[1])
    assert " ".join(row[2:4]) == human_size(model.size)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "unknown-instruction",
        "missing-file",
        "unknown-model",
        "not-gguf",
        "bad-name",
        "sandbox-escape",
    ],
)
def test_create_errors_through_the_cli(case: str, hearth_home: Path, package: Path) -> None:
    env = hearth_env(hearth_home)
    # A model already in the store, so that "no new blob" is checked against a real store.
    Runtime().create("existing", from_path=package / "tiny.gguf")
    blobs_before = blob_count(hearth_home)
    files_before = store_files(hearth_home)
    outside_before = sorted(p.name for p in package.parent.iterdir())

    if case == "unknown-instruction":
        modelfile = _write(package, "Bad", "FROM ./tiny.gguf\nPARAMETER temperature 0\nFROBNICATE yes\n")
        line = error_line(run_hearth(["create", "m", "-f", str(modelfile)], env))
        assert "line 3" in line and "FROBNICATE" in line
    elif case == "missing-file":
        modelfile = _write(package, "Missing", "FROM ./missing.gguf\n")
        line = error_line(run_hearth(["create", "m", "-f", str(modelfile)], env))
        assert "missing.gguf" in line and "does not exist" in line
    elif case == "unknown-model":
        modelfile = _write(package, "Unknown", "FROM no-such-model:7b\n")
        line = error_line(run_hearth(["create", "m", "-f", str(modelfile)], env))
        assert "no-such-model" in line and "not found" in line
    elif case == "not-gguf":
        fake = _write(package, "notes.gguf", "these are my notes, not a model\n" * 20)
        line = error_line(run_hearth(["create", "m", "--from", str(fake)], env))
        assert "not a valid GGUF model" in line and "notes.gguf" in line
    elif case == "bad-name":
        line = error_line(run_hearth_in(package, ["create", "../evil", "--from", "tiny.gguf"], env))
        assert "invalid model name" in line and "../evil" in line
        assert not (hearth_home / "models" / "evil").exists()
    else:
        modelfile = _write(package, "Escape", 'FROM ./tiny.gguf\nTEMPLATE "{{ cycler.__init__.__globals__ }}"\n')
        line = error_line(run_hearth(["create", "m", "-f", str(modelfile)], env))
        assert "template" in line.lower()

    assert [m.name.short for m in ModelStore().list()] == ["existing:latest"]
    assert blob_count(hearth_home) == blobs_before
    assert store_files(hearth_home) == files_before
    assert sorted(p.name for p in package.parent.iterdir()) == outside_before


def test_rm_of_one_of_two_names_keeps_the_blob(hearth_home: Path, package: Path) -> None:
    env = hearth_env(hearth_home)
    Runtime().create("first", from_path=package / "tiny.gguf")
    weights = ModelStore().get("first").model_path

    copied = run_hearth(["cp", "first", "team/second:v1"], env)
    assert copied.returncode == 0, copied.stderr
    assert ModelStore().get("team/second:v1").model_path == weights

    removed = run_hearth(["rm", "first"], env)
    assert removed.returncode == 0, removed.stderr
    assert "first" in removed.stdout
    assert weights.is_file()
    assert not ModelStore().exists("first")
    assert Runtime().show("team/second:v1").details.family == "llama"
    assert "not found" in error_line(run_hearth(["show", "first"], env))

    removed = run_hearth(["rm", "team/second:v1"], env)
    assert removed.returncode == 0, removed.stderr
    assert not weights.exists()
    assert [p.name for p in (hearth_home / "models" / "blobs").iterdir()] == []


def test_cp_errors(hearth_home: Path, package: Path) -> None:
    env = hearth_env(hearth_home)
    Runtime().create("m", from_path=package / "tiny.gguf")
    before = store_files(hearth_home)
    line = error_line(run_hearth(["cp", "m", "../bad"], env))
    assert "invalid model name" in line
    line = error_line(run_hearth(["cp", "missing", "copy"], env))
    assert "not found" in line and "missing" in line
    assert store_files(hearth_home) == before


def test_show_and_rm_of_an_unknown_model(hearth_home: Path) -> None:
    env = hearth_env(hearth_home)
    line = error_line(run_hearth(["show", "unknown-model"], env))
    assert "unknown-model" in line and "not found" in line
    line = error_line(run_hearth(["rm", "unknown-model"], env))
    assert "not found" in line
