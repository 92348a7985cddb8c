"""`hearth fit`: the memory estimate from real GGUF metadata, the verdict thresholds against an
injected machine, the nvidia-smi reader against a fake command on PATH, catalog models with
several quantizations, the pull warning, and the scheduler sharing the same estimate."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.errors import InvalidRequest, ModelNotFound
from hearth.fit import (
    FITS_FRACTION,
    TIGHT_FRACTION,
    MachineMemory,
    estimate_memory,
    fit_catalog_model,
    fit_gguf,
    fit_size,
    pull_warning,
    recommend_tag,
    shape_from_gguf,
    verdict_for,
)
from hearth.fit.estimate import DEFAULT_BATCH_TOKENS, RUNTIME_BYTES, compute_buffer_bytes
from hearth.fit.machine import gpu_memory, parse_nvidia_smi, ram_available
from hearth.fit.report import report_for
from hearth.fit.shape import parse_parameter_size, shape_from_parameter_count
from hearth.fit.target import fit_target
from hearth.gguf import read_gguf
from hearth.store import ModelStore
from tests.conftest import hearth_env, run_hearth
from tests.tinymodel import build_vocab, write_tiny_model

GB = 10**9
MIB = 1024 * 1024
BIG_MACHINE = MachineMemory(ram_available=64 * GB, ram_total=128 * GB)


@pytest.fixture(scope="module")
def two_layer_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2 layers, 64 wide: 8 heads of 8, 4 KV heads (write_tiny_model halves the heads for KV).
    return write_tiny_model(tmp_path_factory.mktemp("fit") / "two.gguf", n_layers=2, n_embd=64,
                            context_length=256)


def test_estimate_comes_from_the_gguf_metadata(two_layer_model: Path) -> None:
    info = read_gguf(two_layer_model)
    shape = shape_from_gguf(info)
    assert (shape.n_layer, shape.n_embd, shape.n_head, shape.n_head_kv) == (2, 64, 8, 4)
    assert (shape.head_dim_k, shape.head_dim_v, shape.n_ff) == (8, 8, 128)
    assert shape.n_vocab == len(build_vocab()[0]) and shape.source == "gguf"

    report = fit_gguf(info, 128, memory=BIG_MACHINE)
    # layers x context x KV heads x (K + V head size) x f16
    assert report.kv_cache_bytes == 2 * 128 * 4 * (8 + 8) * 2
    assert report.weights_bytes == two_layer_model.stat().st_size
    batch = DEFAULT_BATCH_TOKENS
    compute = batch * 4 * (max(shape.n_vocab, 9 * 128) + 2 * 64 + 2 * 128)
    assert report.overhead_bytes == compute + shape.n_vocab * 4 + RUNTIME_BYTES
    assert report.total_bytes == report.weights_bytes + report.kv_cache_bytes + report.overhead_bytes
    assert report.context_length == 128 and report.verdict == "fits"
    assert report.as_dict()["kv_cache_bytes"] == report.kv_cache_bytes

    # Two sequences (the server's HEARTH_NUM_PARALLEL=2) need two caches.
    assert fit_gguf(info, 128, n_parallel=2, memory=BIG_MACHINE).kv_cache_bytes == 2 * report.kv_cache_bytes


def test_context_is_capped_at_the_trained_length(two_layer_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = read_gguf(two_layer_model)
    report = fit_gguf(info, 100_000, memory=BIG_MACHINE)
    assert report.context_length == 256
    assert any("capped" in note for note in report.notes)
    monkeypatch.setenv("HEARTH_CONTEXT_LENGTH", "64")
    assert fit_gguf(info, memory=BIG_MACHINE).context_length == 64


def test_attention_scores_outgrow_the_logits_at_long_contexts() -> None:
    # Calibrated on SmolLM2-135M (see fit/estimate.py): llama.cpp reserved 61.6 MiB at 512
    # tokens and 104.3 MiB at 8192; the formula must stay just above both.
    smol = shape_from_parameter_count(135_000_000)
    smol = type(smol)(n_layer=30, n_embd=576, n_head=9, n_head_kv=3, head_dim_k=64, head_dim_v=64,
                      n_vocab=49152, n_ff=1536, source="gguf")
    at_512 = compute_buffer_bytes(smol, 512, DEFAULT_BATCH_TOKENS) / MIB
    at_8192 = compute_buffer_bytes(smol, 8192, DEFAULT_BATCH_TOKENS) / MIB
    assert 61.6 <= at_512 < 61.6 * 1.1
    assert 104.3 <= at_8192 < 104.3 * 1.1
    assert smol.kv_bytes_per_token * 8192 == 180 * MIB  # llama.cpp's "KV buffer size = 180.00 MiB"


@pytest.mark.parametrize(("share", "expected"), [
    (0.10, "fits"), (FITS_FRACTION, "fits"), (0.71, "tight"), (TIGHT_FRACTION, "tight"),
    (1.01, "too large"), (5.0, "too large"),
])
def test_verdict_thresholds(share: float, expected: str, two_layer_model: Path) -> None:
    assert verdict_for(int(share * 1000), 1000) == expected
    # The same through a report, with the machine's free memory injected.
    info = read_gguf(two_layer_model)
    total = fit_gguf(info, 64, memory=BIG_MACHINE).total_bytes
    machine = MachineMemory(ram_available=math.ceil(total / share))
    assert fit_gguf(info, 64, memory=machine).verdict == expected


def test_unknown_free_memory_gives_no_verdict() -> None:
    assert verdict_for(1, 0) == "unknown"


def test_gpu_memory_counts_only_when_llama_cpp_can_use_it(two_layer_model: Path) -> None:
    info = read_gguf(two_layer_model)
    total = fit_gguf(info, 64, memory=BIG_MACHINE).total_bytes
    estimate = estimate_memory(info.file_size, shape_from_gguf(info), 64)
    shape = shape_from_gguf(info)

    on_gpu = report_for(estimate, shape, MachineMemory(ram_available=total // 4, gpu_free=total * 10,
                                                       gpu_usable=True))
    assert (on_gpu.device, on_gpu.verdict) == ("gpu", "fits")
    assert on_gpu.budget_bytes == total // 4 + total * 10 and on_gpu.gpu_available_bytes == total * 10

    split = report_for(estimate, shape, MachineMemory(ram_available=total * 2, gpu_free=total // 2,
                                                      gpu_usable=True))
    assert split.device == "gpu+cpu" and any("num_gpu" in note for note in split.notes)

    cpu_only = report_for(estimate, shape, MachineMemory(ram_available=total // 2, gpu_free=total * 10,
                                                         gpu_usable=False))
    assert (cpu_only.device, cpu_only.verdict, cpu_only.budget_bytes) == ("cpu", "too large", total // 2)
    assert any("CPU only" in note for note in cpu_only.notes)


def fake_nvidia_smi(folder: Path, output: str, status: int = 0) -> Path:
    """An nvidia-smi that answers only the query hearth makes."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" != "--query-gpu=memory.free,memory.total" ] || '
        '[ "$2" != "--format=csv,noheader,nounits" ]; then echo "bad args: $*" >&2; exit 2; fi\n'
        f"printf '%s' '{output}'\nexit {status}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def test_nvidia_smi_is_read_from_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fake_nvidia_smi(tmp_path / "bin", "81000, 81559\n[N/A], [N/A]\n1000, 2000\n")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    assert gpu_memory() == (82000 * MIB, 83559 * MIB)

    failing = fake_nvidia_smi(tmp_path / "failing", "NVIDIA-SMI has failed", status=9)
    monkeypatch.setenv("PATH", f"{failing}{os.pathsep}{os.environ['PATH']}")
    assert gpu_memory() is None

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpu_memory() is None


def test_nvidia_smi_parser_edge_cases() -> None:
    assert parse_nvidia_smi("") is None
    assert parse_nvidia_smi("[N/A], [N/A]\n") is None
    assert parse_nvidia_smi(" 512 , 1024 \n") == (512 * MIB, 1024 * MIB)
    assert parse_nvidia_smi("garbage\n12, 0\n") is None


def test_meminfo_is_read(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684096 kB\nMemFree:  100 kB\nMemAvailable:   23000000 kB\n")
    assert ram_available(meminfo) == 23000000 * 1024
    meminfo.write_text("MemTotal: 1 kB\n")
    assert ram_available(meminfo) == 0


TEST_CATALOG = {
    "testfam": {
        "publisher": "Tests", "family": "llama", "description": "two sizes", "license": "MIT",
        "weights": "open", "context_length": 8192,
        "tags": {
            "1b": {"aliases": ["latest"], "parameter_size": "1.2B", "quantization": "Q4_K_M",
                   "quantizations": ["Q4_K_M", "Q8_0"], "size": 800_000_000,
                   "n_layer": 16, "n_embd": 2048, "n_head": 32, "n_head_kv": 8, "head_dim": 64,
                   "n_vocab": 128256},
            "8b": {"parameter_size": "8B", "quantization": "Q4_K_M", "quantizations": ["Q4_K_M", "Q8_0"],
                   "size": 4_900_000_000},
        },
    },
    "closedfam": {"weights": "closed", "description": "API only"},
}


@pytest.fixture
def test_catalog(monkeypatch: pytest.MonkeyPatch) -> dict:
    from hearth.catalog import entries

    monkeypatch.setattr(entries, "load_catalog", lambda: TEST_CATALOG)
    monkeypatch.setenv("HEARTH_CONTEXT_LENGTH", "4096")
    return TEST_CATALOG


def test_catalog_model_lists_every_quantization_and_recommends_the_largest_that_fits(
        test_catalog: dict) -> None:
    machine = MachineMemory(ram_available=4 * GB)
    fits, best = fit_catalog_model("testfam", memory=machine)
    by_tag = {tag.tag: report for tag, report in fits}
    assert list(by_tag) == ["1b", "1b-q8_0", "8b", "8b-q8_0"]
    small = by_tag["1b"]
    # Architecture numbers from the catalog: 16 layers x 8 KV heads x (64 + 64) x 2 bytes.
    assert small.kv_cache_bytes == 16 * 4096 * 8 * 128 * 2 and small.shape["source"] == "catalog"
    assert small.weights_bytes == 800_000_000
    # The Q8_0 file is not measured: its size is scaled by bits per weight (8.5 / 4.85).
    assert by_tag["1b-q8_0"].weights_bytes == round(800_000_000 * 8.5 / 4.85)
    assert by_tag["8b"].shape["source"] == "rule of thumb"
    assert [r.verdict for r in by_tag.values()] == ["fits", "fits", "too large", "too large"]
    assert best is not None and best.tag == "1b-q8_0"
    assert recommend_tag("testfam", memory=machine).tag == "1b-q8_0"
    # With less memory only the smallest fits; with very little nothing is recommended.
    assert recommend_tag("testfam", memory=MachineMemory(ram_available=int(2.2 * GB))).tag == "1b"
    assert recommend_tag("testfam", memory=MachineMemory(ram_available=GB)) is None
    assert recommend_tag("nosuchmodel", memory=machine) is None
    assert recommend_tag("../bad", memory=machine) is None


def test_fit_target_resolves_tags_quantizations_and_refuses_the_rest(
        test_catalog: dict, hearth_home: Path, tmp_path: Path) -> None:
    store = ModelStore()
    machine = MachineMemory(ram_available=64 * GB)
    whole = fit_target(store, "testfam", memory=machine)
    assert whole.kind == "catalog" and whole.tags == ["1b", "1b-q8_0", "8b", "8b-q8_0"]
    assert whole.recommended == "testfam:8b-q8_0"
    assert fit_target(store, "testfam:q8_0", memory=machine).tags == ["1b-q8_0", "8b-q8_0"]
    assert fit_target(store, "testfam:1b", memory=machine).tags == ["1b", "1b-q8_0"]
    assert fit_target(store, "testfam:latest", memory=machine).tags == ["1b", "1b-q8_0"]
    assert fit_target(store, "testfam:8B-Q8_0", memory=machine).tags == ["8b-q8_0"]
    with pytest.raises(ModelNotFound, match=r"testfam:\{1b, 8b\} in Q4_K_M, Q8_0"):
        fit_target(store, "testfam:q2_k", memory=machine)
    with pytest.raises(ModelNotFound, match="neither installed nor in hearth's catalog"):
        fit_target(store, "nosuchmodel", memory=machine)
    with pytest.raises(InvalidRequest, match="closed model"):
        fit_target(store, "closedfam", memory=machine)
    with pytest.raises(InvalidRequest, match="does not exist"):
        fit_target(store, str(tmp_path / "missing.gguf"), memory=machine)
    json.dumps(whole.as_dict())  # JSON-ready for the CLI and the web app


def test_the_real_catalog_default_model_fits_a_big_machine() -> None:
    fits, best = fit_catalog_model("smollm2", 2048, memory=BIG_MACHINE)
    assert fits and all(report.verdict == "fits" for _tag, report in fits)
    assert best is not None and best.model == "smollm2"


def test_catalog_architecture_gives_the_exact_kv_cache_for_every_quantization() -> None:
    # Llama 3.2 3B: 28 layers, 8 KV heads of 128 -> K and V of 2 bytes each per layer and token.
    fits, _best = fit_catalog_model("llama3.2", 8192, memory=BIG_MACHINE)
    reports = {tag.tag: report for tag, report in fits}
    exact = 28 * 8 * (128 + 128) * 2 * 8192
    assert reports["3b"].kv_cache_bytes == exact
    assert reports["3b-q8_0"].kv_cache_bytes == exact
    assert not any("guessed" in note for note in reports["3b-q8_0"].notes)


def test_parameter_sizes_parse() -> None:
    assert parse_parameter_size("135M") == 135_000_000
    assert parse_parameter_size("1.7B") == 1_700_000_000
    assert parse_parameter_size("8x7B") == 56_000_000_000
    assert parse_parameter_size("") is None and parse_parameter_size("big") is None


def test_pull_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_CONTEXT_LENGTH", "4096")
    size = 4_900_000_000
    needed = fit_size(size, context_length=4096, memory=BIG_MACHINE).total_bytes
    assert pull_warning(size, 8192, memory=BIG_MACHINE) is None
    tight = pull_warning(size, 8192, memory=MachineMemory(ram_available=int(needed / 0.9)))
    assert tight is not None and "may run slowly" in tight and "4096-token" in tight
    too_large = pull_warning(size, 8192, memory=MachineMemory(ram_available=needed // 2))
    assert too_large is not None and "will likely not load" in too_large
    # The model's own shorter context is the one a load would use.
    short = pull_warning(size, 512, memory=MachineMemory(ram_available=needed // 2))
    assert short is not None and "512-token" in short
    assert pull_warning(0, None) is None


def test_pull_of_a_catalog_model_too_large_here_names_a_size_that_fits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth.hub.pull import _smaller_choice
    from hearth.names import ModelName

    # This machine's RAM cannot be shrunk, so the free-memory reading is what the test sets.
    small = MachineMemory(ram_available=3_000_000_000)
    monkeypatch.setattr("hearth.fit.catalog_fit.read_machine_memory", lambda: small)
    monkeypatch.setattr("hearth.fit.report.read_machine_memory", lambda: small)
    monkeypatch.setenv("HEARTH_CONTEXT_LENGTH", "4096")
    warning = pull_warning(3_500_000_000, 131072)
    assert warning is not None and "will likely not load" in warning
    advice = _smaller_choice(ModelName.parse("llama3.2:3b-q8_0"))
    assert advice.startswith("; llama3.2:") and advice.endswith("fits")
    assert "3b-q8_0" not in advice
    tiny = MachineMemory(ram_available=10_000_000)
    monkeypatch.setattr("hearth.fit.catalog_fit.read_machine_memory", lambda: tiny)
    assert _smaller_choice(ModelName.parse("llama3.2:3b")) == "; no size of this model fits this machine"
    # Names outside the catalog get no advice.
    assert _smaller_choice(ModelName.parse("hf.co/someone/thing:q4_k_m")) == ""


def test_the_scheduler_and_the_runtime_use_the_same_estimate(two_layer_model: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth.engine.batch import PREFILL_BUDGET
    from hearth.engine.settings import LoadSettings
    from hearth.runtime.loaded import estimate_memory as runtime_estimate
    from hearth.scheduler import memory_available

    assert PREFILL_BUDGET + LoadSettings(num_ctx=1).num_batch + 1 == DEFAULT_BATCH_TOKENS
    info = read_gguf(two_layer_model)
    settings = LoadSettings(num_ctx=128)
    assert runtime_estimate(info, settings, 1) == fit_gguf(info, 128, memory=BIG_MACHINE).total_bytes
    assert runtime_estimate(info, settings, 3) == estimate_memory(
        info.file_size, shape_from_gguf(info), 128, n_parallel=3,
        batch_tokens=PREFILL_BUDGET + settings.num_batch + 3).total_bytes
    assert memory_available() > 0
    from hearth.fit import machine

    monkeypatch.setattr(machine, "ram_available", lambda: 12345)
    assert memory_available() == 12345  # the scheduler reads free memory through hearth.fit


def test_fit_command(tmp_path: Path, tiny_model: Path) -> None:
    home = tmp_path / "home"
    env = hearth_env(home)
    created = run_hearth(["create", "tiny", "--from", str(tiny_model)], env)
    assert created.returncode == 0, created.stderr
    shown = run_hearth(["fit", "tiny", "--ctx", "128"], env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("tiny:latest  (installed, F32")
    labels = [line.split()[0] for line in lines[1:9]]
    assert labels == ["context", "weights", "KV", "overhead", "total", "available", "GPU", "verdict"]
    assert "128 tokens" in lines[1] and "fits" in lines[8]

    gpu_env = dict(env, PATH=f"{fake_nvidia_smi(tmp_path / 'bin', '40000, 81559')}{os.pathsep}{env['PATH']}")
    as_json = run_hearth(["fit", str(tiny_model), "--ctx", "64", "--json"], gpu_env)
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    (report,) = answer["reports"]
    assert answer["kind"] == "file" and report["context_length"] == 64
    assert report["gpu_available_bytes"] == 40000 * MIB
    assert report["total_bytes"] == report["weights_bytes"] + report["kv_cache_bytes"] + report["overhead_bytes"]
    assert answer["thresholds"] == {"fits": FITS_FRACTION, "tight": TIGHT_FRACTION}

    missing = run_hearth(["fit", "no-such-model"], env)
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("Error: model 'no-such-model' not found")


@pytest.mark.e2e
def test_estimate_is_an_upper_bound_of_the_real_default_model(smollm2_home: Path, tmp_path: Path) -> None:
    """Loads SmolLM2 through hearth's engine in a child process and compares its resident
    memory with the estimate: above it (the estimate keeps the whole compute buffer), but not
    wildly (within 1.6x)."""
    store = ModelStore(smollm2_home)
    (model,) = store.list()
    script = tmp_path / "measure.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from hearth.engine.local_engine import LocalBatchEngine\n"
        "from hearth.engine.settings import LoadSettings, SamplingSettings\n"
        "engine = LocalBatchEngine(Path(sys.argv[1]), LoadSettings(num_ctx=2048, num_thread=2), 1)\n"
        "tokens = engine.vocab.tokenize('The sky is blue. ' * 40, add_special=True, parse_special=False)\n"
        "list(engine.generate(tokens, SamplingSettings(num_predict=8, temperature=0, seed=1)))\n"
        "rss = [line for line in open('/proc/self/status') if line.startswith('VmRSS:')][0]\n"
        "print(int(rss.split()[1]) * 1024)\n"
        "engine.close()\n")
    env = hearth_env(smollm2_home)
    result = subprocess.run([sys.executable, str(script), str(model.model_path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rss = int(result.stdout.strip().splitlines()[-1])
    estimate = fit_gguf(read_gguf(model.model_path), 2048, memory=BIG_MACHINE).total_bytes
    assert rss <= estimate <= 1.6 * rss, (rss, estimate)


def test_help_states_the_thresholds_as_written() -> None:
    # argparse prints a description as given: a doubled '%%' would reach the user.
    import argparse

    from hearth.cli import fit as fit_cli

    commands = argparse.ArgumentParser().add_subparsers()
    fit_cli.register(commands)
    text = commands.choices["fit"].format_help()
    assert "70% of free" in text and "100%)" in text and "%%" not in text
