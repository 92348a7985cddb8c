"""``hearth doctor``: the facts, the problems with their fixes, the exit status, and the setup
check that catches an engine which dies by a signal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hearth.doctor.diagnosis import crash_fix, diagnose
from hearth.engine.build_info import parse_system_info
from tests.conftest import HearthServer, hearth_env, run_hearth

REAL_SYSTEM_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | "
                    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | CUDA : ARCHS = 890 | USE_GRAPHS = 1 |")


@pytest.fixture
def home_with_model(tmp_path: Path, tiny_model: Path) -> Path:
    home = tmp_path / "home"
    created = run_hearth(["create", "tiny", "--from", str(tiny_model)], hearth_env(home))
    assert created.returncode == 0, created.stderr
    return home


def doctor_json(home: Path, *extra: str, **env: str) -> tuple[int, dict]:
    result = run_hearth(["doctor", "--json", *extra], hearth_env(home, **env))
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_all_is_well_on_this_machine(home_with_model: Path) -> None:
    code, report = doctor_json(home_with_model)
    assert code == 0, report["problems"]
    assert report["ok"] and report["problems"] == []
    engine = report["engine"]
    assert engine["llama_cpp_python"] and engine["ggml_version"]
    assert "CPU" in engine["backends"]
    assert engine["features"]["CPU"], engine["system_info"]
    assert engine["features"]["CPU"].get("AMX_INT8", "0") == "0"  # hearth's build left it out
    cpu = report["cpu"]
    assert cpu["model"] and cpu["cores"] >= 1 and cpu["threads"] >= 1
    assert report["memory"]["ram_total"] > 0
    home = report["home"]
    assert home["path"] == str(home_with_model.resolve())
    assert home["writable"] and home["disk_free"] > 0 and home["models"] == 1
    assert report["server"] == {"address": "127.0.0.1:1", "running": False}
    test = report["self_test"]
    assert test["ok"] and test["tokens"] > 0 and test["tokens_per_second"] > 0
    assert test["prompt_tokens"] > 0 and test["prompt_tokens_per_second"] > 0
    assert report["engine_build"]["built_by_hearth"] and report["engine_build"]["matches_this_machine"]


def test_plain_report_names_every_part(home_with_model: Path) -> None:
    result = run_hearth(["doctor"], hearth_env(home_with_model))
    assert result.returncode == 0, result.stdout + result.stderr
    for label in ("engine", "backends: CPU", "cpu", "memory", "home", "server", "self-test",
                  "all good"):
        assert label in result.stdout


def test_a_running_server_is_reported(home_with_model: Path) -> None:
    server = HearthServer(home_with_model)
    try:
        code, report = doctor_json(home_with_model, HEARTH_HOST=f"127.0.0.1:{server.port}")
    finally:
        server.stop()
    assert code == 0
    assert report["server"]["running"] and report["server"]["version"]


def test_no_model_installed_is_a_problem(tmp_path: Path) -> None:
    code, report = doctor_json(tmp_path / "empty-home")
    assert code == 1
    assert {"what": "no model is installed", "fix": "hearth pull smollm2"} in report["problems"]
    assert report["self_test"]["ok"]  # the engine itself is fine


def test_unwritable_home_is_a_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("HEARTH_HOME cannot be made below a file, even by root")
    result = run_hearth(["doctor"], hearth_env(blocker / "home"))
    assert result.returncode == 1
    assert f"HEARTH_HOME ({blocker / 'home'}) cannot be written to" in result.stdout
    assert "fix: fix its permissions" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_setup_check_catches_an_engine_that_dies_by_a_signal(tmp_path: Path) -> None:
    """What `make` runs after installing the engine: the self-test child really dies by
    SIGSEGV (it raises it in itself), and the check names it, the CPU features llama.cpp
    reports, the rebuild command, and fails."""
    result = run_hearth(["doctor", "--engine"], hearth_env(tmp_path / "home",
                                                           HEARTH_SELF_TEST_CRASH="SIGSEGV"))
    assert result.returncode == 1
    out = result.stdout
    assert "the engine crashed while decoding: killed by SIGSEGV" in out
    assert "CPU: SSE3" in out or "CPU: " in out  # the compiled-in features line
    assert "-m hearth.engine.build install" in out
    assert "Traceback" not in out + result.stderr


def test_setup_check_passes_on_a_working_engine(tmp_path: Path) -> None:
    result = run_hearth(["doctor", "--engine"], hearth_env(tmp_path / "home"))
    assert result.returncode == 0, result.stdout
    assert "all good" in result.stdout
    labels = {line.split()[0] for line in result.stdout.splitlines() if line and line[0] != " "}
    assert {"engine", "cpu", "self-test"} <= labels and not labels & {"home", "server", "memory"}


def test_parse_system_info_sections() -> None:
    sections = parse_system_info(REAL_SYSTEM_INFO)
    assert sections["CPU"]["AVX512"] == "1" and sections["CPU"]["AMX_INT8"] == "1"
    assert sections["CUDA"] == {"ARCHS": "890", "USE_GRAPHS": "1"}


def test_crash_fix_leaves_out_amx_first_then_goes_portable() -> None:
    with_amx = {"features": parse_system_info(REAL_SYSTEM_INFO)}
    without = {"features": parse_system_info("CPU : AVX2 = 1 | AMX_INT8 = 0 |")}
    assert "AMX" in crash_fix(with_amx, {"portable": False})
    assert "HEARTH_ENGINE_PORTABLE=1" not in crash_fix(with_amx, {"portable": False})
    assert crash_fix(without, {"portable": False}).count("HEARTH_ENGINE_PORTABLE=1") == 1
    assert "hearth doctor --json" in crash_fix(without, {"portable": True})


def test_amx_compiled_in_on_an_amx_cpu_is_noted_even_when_the_test_passes() -> None:
    facts = {"engine_build": {"installed": True, "matches_this_machine": True},
             "engine": {"features": parse_system_info(REAL_SYSTEM_INFO)},
             "cpu": {"flags": ["avx512f", "amx_int8"]}, "self_test": {"ok": True}}
    problems, notes = diagnose(facts)
    assert problems == []
    assert any("AMX" in note.what and "hearth.engine.build install" in note.fix for note in notes)
