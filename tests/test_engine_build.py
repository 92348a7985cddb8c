"""The engine build (``hearth.engine.build``): which flags it builds with, that the flags are part
of what is cached, and that an installed engine which is not hearth's build is noticed."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.engine import build

ROOT = Path(__file__).resolve().parent.parent
AMX_UNDEFINES = ["-U__AMX_INT8__", "-U__AMX_TILE__", "-U__AMX_BF16__"]


@pytest.fixture(autouse=True)
def clean_build_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CMAKE_ARGS", "HEARTH_ENGINE_KEEP", "HEARTH_ENGINE_PORTABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEARTH_ENGINE_CACHE", str(tmp_path / "engine-cache"))


def flags_of(args: list[str], key: str) -> list[str]:
    for arg in args:
        if arg.startswith(f"-D{key}="):
            return shlex.split(arg.split("=", 1)[1])
    return []


def test_default_build_compiles_amx_out_and_keeps_native() -> None:
    args = build.cmake_args()
    assert flags_of(args, "CMAKE_C_FLAGS") == AMX_UNDEFINES
    assert flags_of(args, "CMAKE_CXX_FLAGS") == AMX_UNDEFINES
    assert not any("GGML_NATIVE" in arg for arg in args)  # llama.cpp's default: -march=native


def test_users_cmake_args_are_kept_and_their_flags_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAKE_ARGS", '-DGGML_CUDA=on -DCMAKE_C_FLAGS="-O2 -g"')
    args = build.cmake_args()
    assert "-DGGML_CUDA=on" in args
    assert flags_of(args, "CMAKE_C_FLAGS") == ["-O2", "-g", *AMX_UNDEFINES]
    assert sum(arg.startswith("-DCMAKE_C_FLAGS=") for arg in args) == 1
    # What pip's build backend receives parses back to the same arguments.
    assert shlex.split(build.cmake_args_text()) == args


def test_keep_and_portable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_ENGINE_KEEP", "amx")
    assert flags_of(build.cmake_args(), "CMAKE_C_FLAGS") == []
    assert build.left_out() == []
    monkeypatch.delenv("HEARTH_ENGINE_KEEP")
    monkeypatch.setenv("HEARTH_ENGINE_PORTABLE", "1")
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_NATIVE=ON")
    args = build.cmake_args()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_NATIVE=ON" not in args


def test_the_tag_names_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    safe = build.build_tag()
    assert build.build_tag() == safe
    monkeypatch.setenv("HEARTH_ENGINE_KEEP", "amx")
    with_amx = build.build_tag()
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_VULKAN=on")
    assert len({safe, with_amx, build.build_tag()}) == 3


def test_a_wheel_cached_with_other_flags_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_ENGINE_KEEP", "amx")
    other = build.cache_dir() / build.build_tag()
    other.mkdir(parents=True)
    (other / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl").write_bytes(b"built with AMX")
    assert build.cached_wheel(build.build_tag()) is not None
    monkeypatch.delenv("HEARTH_ENGINE_KEEP")
    assert build.cached_wheel(build.build_tag()) is None


def test_record_matches_only_hearths_build_as_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = build.installed_fingerprint()
    assert installed is not None  # the test environment has llama-cpp-python
    record = {"tag": build.build_tag(), "installed": installed}
    assert build.record_matches(record)
    assert not build.record_matches(None)
    assert not build.record_matches({**record, "installed": "another build"})
    monkeypatch.setenv("HEARTH_ENGINE_KEEP", "amx")
    assert not build.record_matches(record)


def test_this_environment_holds_hearths_build() -> None:
    """`make test` installs the engine through build.py: the record must describe what is
    installed, so that `hearth doctor` and the next setup can trust it."""
    record = build.read_record()
    assert record is not None, "the engine was not installed by `make` (src/hearth/engine/build.py)"
    assert build.record_matches(record)
    assert "amx" in record["left_out"]


def test_the_script_runs_before_hearth_is_installed(tmp_path: Path) -> None:
    """The Makefile runs it by path with nothing but the standard library."""
    result = subprocess.run([sys.executable, "-I", str(ROOT / "src/hearth/engine/build.py"),
                             "cmake-args"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "-U__AMX_INT8__" in result.stdout


def test_install_reuses_the_cached_wheel_and_records_it(tmp_path: Path) -> None:
    """`install` in a fresh environment takes the wheel cached under this machine's tag (here the
    wheel of the engine installed for the tests) and writes the record of what it installed."""
    record = build.read_record()
    if record is None or not Path(record["wheel"]).is_file():
        pytest.skip("no cached engine wheel on this machine")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True, timeout=120)
    cache = tmp_path / "cache"
    tag_dir = cache / build.build_tag()
    tag_dir.mkdir(parents=True)
    wheel = tag_dir / Path(record["wheel"]).name
    wheel.symlink_to(record["wheel"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HEARTH_ENGINE_CACHE": str(cache)}
    python = venv / "bin" / "python"
    script = str(ROOT / "src/hearth/engine/build.py")
    # (--system-site-packages lends the base interpreter's pip; the engine goes into the venv.)
    first = subprocess.run([str(python), script, "install"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "using the engine built earlier with the same flags" in first.stderr
    written = json.loads((venv / build.RECORD_NAME).read_text())
    assert written["tag"] == build.build_tag() and written["wheel"] == str(wheel)
    again = subprocess.run([str(python), script, "install"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "is installed" in again.stderr


def test_a_build_keeps_its_settings_when_none_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """After `HEARTH_ENGINE_PORTABLE=1 ... install` (doctor's fix for a crash) or a CUDA build,
    a plain `make` must not put the default build back: the record's settings apply."""
    recorded = {"settings": {"HEARTH_ENGINE_PORTABLE": "1", "CMAKE_ARGS": "-DGGML_CUDA=on"}}
    monkeypatch.setattr(build, "read_record", lambda prefix=None: recorded)
    args = build.cmake_args()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_CUDA=on" in args
    assert "HEARTH_ENGINE_PORTABLE=1" in build.rebuild_command()
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_VULKAN=on")  # given settings win, whole
    args = build.cmake_args()
    assert "-DGGML_VULKAN=on" in args and "-DGGML_CUDA=on" not in args and "-DGGML_NATIVE=OFF" not in args
