"""Predicted decode and prompt speed (`hearth fit`): the formula on fixed machine figures, the
figures' cache file and when it stops holding, the CLI showing the prediction from a cached file,
and the measuring child on real tiny models. No timing is asserted: only that measured figures
are positive and that predictions follow the formula."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hearth.fit import speed
from hearth.fit.machine_speed import (
    MEASURE_HINT,
    current_identity,
    read_machine_speed,
    speed_file,
    write_machine_speed,
)
from hearth.fit.shape import ModelShape, shape_from_gguf
from hearth.fit.speed import (
    MachineSpeed,
    attention_flops,
    bytes_read_per_token,
    decode_attended_cells,
    matrix_parameters,
    matrix_rows,
    predict_speed,
    prompt_attended_cells,
)
from hearth.gguf import read_gguf
from tests.conftest import hearth_env, run_hearth
from tests.tinymodel import write_tiny_model

# SmolLM2-135M's shape (its GGUF header).
SMOLLM2 = ModelShape(n_layer=30, n_embd=576, n_head=9, n_head_kv=3, head_dim_k=64, head_dim_v=64,
                     n_vocab=49152, n_ff=1536, source="gguf")
GB = 10**9


def figures(**changes: object) -> MachineSpeed:
    values: dict[str, object] = {
        "decode_overhead_s": 0.0, "decode_layer_overhead_s": 0.0, "bandwidth_bytes_per_s": 10e9,
        "prompt_overhead_s": 0.0, "prompt_layer_overhead_s": 0.0, "compute_flops_per_s": 100e9,
        "attention_flops_per_s": 50e9, "threads": 2, "measured_at": "2026-12-04T12:00:00+00:00",
    }
    values.update(changes)
    return MachineSpeed(**values)  # type: ignore[arg-type]


# -- the formula ----------------------------------------------------------------------------------


def test_decode_time_is_the_bytes_read_over_the_bandwidth() -> None:
    machine = figures()
    one = predict_speed(1 * GB, SMOLLM2, machine, decode_position=0)
    two = predict_speed(2 * GB, SMOLLM2, machine, decode_position=0)
    assert one.decode_tokens_per_second == pytest.approx(10.0)
    assert two.decode_tokens_per_second == pytest.approx(5.0)  # twice the bytes, half the speed


def test_bigger_weights_decode_slower_by_exactly_their_extra_bytes() -> None:
    machine = figures(decode_overhead_s=0.002, decode_layer_overhead_s=0.0001)
    small = predict_speed(100_000_000, SMOLLM2, machine)
    large = predict_speed(400_000_000, SMOLLM2, machine)
    assert large.decode_tokens_per_second < small.decode_tokens_per_second
    extra_seconds = 1 / large.decode_tokens_per_second - 1 / small.decode_tokens_per_second
    assert extra_seconds == pytest.approx(300_000_000 / 10e9, rel=0.01)
    # The fixed part: overhead + layers x per-layer overhead, plus the KV cache at the position
    # read and attended to.
    expected = (0.002 + 30 * 0.0001 + (100_000_000 + SMOLLM2.kv_bytes_per_token * 256) / 10e9
                + attention_flops(SMOLLM2, decode_attended_cells(256)) / 50e9)
    assert 1 / small.decode_tokens_per_second == pytest.approx(expected, rel=0.01)


def test_attention_covers_the_cache_up_to_the_end_of_each_step() -> None:
    # Without flash attention llama.cpp scores every cell up to the batch's last one (padded to
    # 32) and masks the rest; hearth's engine reads a prompt 256 tokens per step.
    assert prompt_attended_cells(256) == 256
    assert prompt_attended_cells(100) == 128
    assert prompt_attended_cells(512) == (256 * 256 + 256 * 512) / 512
    assert prompt_attended_cells(2048) == 1152
    assert prompt_attended_cells(0) == 0
    assert decode_attended_cells(0) == 32 and decode_attended_cells(256) == 288
    assert attention_flops(SMOLLM2, 100) == 2 * 30 * 9 * 128 * 100


def test_every_matrix_row_costs_its_share() -> None:
    rows = matrix_rows(SMOLLM2)
    assert rows == 30 * (576 + 3 * 64 * 2 + 576 + 2 * 1536 + 576) + 49152
    assert matrix_rows(SMOLLM2, output=False) == rows - 49152  # a prompt's output: one token
    machine = figures(decode_row_overhead_s=1e-8, prompt_row_overhead_s=2e-9)
    plain = predict_speed(GB // 10, SMOLLM2, figures(), decode_position=0, prompt_tokens=0)
    rowed = predict_speed(GB // 10, SMOLLM2, machine, decode_position=0, prompt_tokens=0)
    assert 1 / rowed.decode_tokens_per_second - 1 / plain.decode_tokens_per_second == pytest.approx(
        rows * 1e-8, rel=0.01)
    assert 1 / rowed.prompt_tokens_per_second - 1 / plain.prompt_tokens_per_second == pytest.approx(
        (rows - 49152) * 2e-9, rel=0.01)


def test_the_tensors_say_what_a_token_reads_at_which_type(monkeypatch: pytest.MonkeyPatch) -> None:
    tied = [("token_embd.weight", "Q8_0", 30), ("blk.0.attn_q.weight", "Q4_1", 60),
            ("blk.0.attn_norm.weight", "F32", 1)]
    assert bytes_read_per_token(tied, "Q4_1") == {"Q8_0": 30, "Q4_1": 61}
    untied = [("token_embd.weight", "Q4_K", 50), ("output.weight", "Q6_K", 40),
              ("blk.0.ffn_down.weight", "Q6_K", 20), ("blk.0.ffn_up.weight", "Q4_K", 80)]
    # The embedding is a row lookup; layers count at the file's type, the output at its own.
    assert bytes_read_per_token(untied, "Q4_K_M") == {"Q6_K": 40, "Q4_K_M": 100}

    monkeypatch.setitem(speed.QUANT_FACTORS, "Q4_1", (0.5, 1.0))
    machine = figures()
    whole = predict_speed(GB, SMOLLM2, machine, quantization="Q4_1", decode_position=0)
    split = predict_speed(GB, SMOLLM2, machine, quantization="Q4_1", decode_position=0,
                          read_by_type={"Q8_0": GB // 2, "Q4_1": GB // 2})
    assert 1 / whole.decode_tokens_per_second == pytest.approx(GB / 5e9)
    assert 1 / split.decode_tokens_per_second == pytest.approx(GB / 2 / 10e9 + GB / 2 / 5e9, rel=0.01)


def test_the_kv_cache_read_at_the_position_slows_decode() -> None:
    machine = figures()
    start = predict_speed(GB // 10, SMOLLM2, machine, decode_position=0)
    later = predict_speed(GB // 10, SMOLLM2, machine, decode_position=4096)
    seconds = ((GB // 10 + SMOLLM2.kv_bytes_per_token * 4096) / 10e9
               + attention_flops(SMOLLM2, decode_attended_cells(4096)) / 50e9)
    assert later.decode_tokens_per_second == pytest.approx(1 / seconds, rel=0.01)
    assert later.decode_tokens_per_second < start.decode_tokens_per_second


def test_prompt_speed_comes_from_the_parameters_not_the_file_size() -> None:
    assert matrix_parameters(SMOLLM2) == 30 * (576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536)
    machine = figures()
    small = predict_speed(100_000_000, SMOLLM2, machine, prompt_tokens=0)
    large = predict_speed(300_000_000, SMOLLM2, machine, prompt_tokens=0)
    expected = 100e9 / (2 * matrix_parameters(SMOLLM2))
    assert small.prompt_tokens_per_second == pytest.approx(expected, rel=0.001)
    assert large.prompt_tokens_per_second == small.prompt_tokens_per_second
    # A longer prompt adds attention: each token attends to the cache, at its own rate.
    longer = predict_speed(100_000_000, SMOLLM2, machine, prompt_tokens=2048)
    seconds = 2 * matrix_parameters(SMOLLM2) / 100e9 + 2 * 30 * 9 * 128 * 1152 / 50e9
    assert longer.prompt_tokens_per_second == pytest.approx(1 / seconds, rel=0.001)
    # Twice the layers of the same width: twice the FLOPs.
    deeper = ModelShape(**{**SMOLLM2.__dict__, "n_layer": 60})
    assert predict_speed(1, deeper, machine, prompt_tokens=0).prompt_tokens_per_second == pytest.approx(
        expected / 2, rel=0.001)


def test_quantization_types_scale_bandwidth_and_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(speed.QUANT_FACTORS, "Q4_0", (0.5, 2.0))
    machine = figures()
    reference = predict_speed(GB, SMOLLM2, machine, quantization="Q8_0", decode_position=0, prompt_tokens=0)
    other = predict_speed(GB, SMOLLM2, machine, quantization="q4_0", decode_position=0, prompt_tokens=0)
    unknown = predict_speed(GB, SMOLLM2, machine, quantization="MXFP4", decode_position=0, prompt_tokens=0)
    assert other.decode_tokens_per_second == pytest.approx(reference.decode_tokens_per_second * 0.5)
    assert other.prompt_tokens_per_second == pytest.approx(reference.prompt_tokens_per_second * 2.0, rel=0.001)
    assert unknown == reference  # a type the table does not know is read as the reference type


def test_every_catalog_quantization_has_a_factor() -> None:
    from hearth.quantization import QUANT_TYPES

    assert set(QUANT_TYPES) <= set(speed.QUANT_FACTORS)
    assert all(d > 0 and p > 0 for d, p in speed.QUANT_FACTORS.values())


def test_the_basis_says_how_it_was_computed() -> None:
    prediction = predict_speed(98_000_000, SMOLLM2, figures(decode_overhead_s=0.001))
    assert prediction.basis.startswith("predicted from this machine's measured figures (2 threads, 2026-12-04)")
    assert "GB/s" in prediction.basis and "GFLOP/s" in prediction.basis


# -- the cache file -------------------------------------------------------------------------------


def test_figures_file_round_trip(hearth_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_NUM_THREAD", "2")
    assert read_machine_speed() == (None, "not measured")
    saved = figures(**current_identity(), details={"models": [{"name": "overhead-1"}]})
    path = write_machine_speed(saved)
    assert path == speed_file() == hearth_home / "machine-speed.json"
    loaded, why = read_machine_speed()
    assert (loaded, why) == (saved, "")
    assert json.loads(path.read_text())["format"] == speed.FORMAT_VERSION


def test_figures_stop_holding_when_the_engine_or_the_threads_change(
        hearth_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_NUM_THREAD", "2")
    identity = current_identity()
    write_machine_speed(figures(**identity))
    assert read_machine_speed()[0] is not None

    monkeypatch.setenv("HEARTH_NUM_THREAD", "1")
    loaded, why = read_machine_speed()
    assert loaded is None and why == "measured with threads 2, now 1"
    monkeypatch.setenv("HEARTH_NUM_THREAD", "2")

    write_machine_speed(figures(**{**identity, "llama_cpp_version": "0.0.1"}))
    loaded, why = read_machine_speed()
    assert loaded is None
    assert why == f"measured with llama-cpp-python 0.0.1, now {identity['llama_cpp_version']}"

    write_machine_speed(figures(**{**identity, "hearth_version": "0.0.0"}))
    assert "measured with hearth 0.0.0" in read_machine_speed()[1]

    write_machine_speed(figures(**{**identity, "cpu_model": "Some Other CPU"}))
    assert read_machine_speed()[1].startswith("measured with CPU Some Other CPU")


def test_a_damaged_or_foreign_figures_file_is_not_used(hearth_home: Path) -> None:
    path = speed_file()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert read_machine_speed() == (None, "machine-speed.json cannot be read")
    path.write_text(json.dumps({"format": 999, "bandwidth_bytes_per_s": 1}))
    assert read_machine_speed() == (None, "machine-speed.json is not in this hearth's format")
    data = figures(**current_identity()).as_dict()
    path.write_text(json.dumps({**data, "bandwidth_bytes_per_s": 0}))
    assert read_machine_speed()[0] is None


# -- hearth fit -----------------------------------------------------------------------------------


def test_fit_shows_predicted_speeds_from_the_cached_figures(tmp_path: Path, tiny_model: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    env = hearth_env(home, HEARTH_NUM_THREAD="2")
    monkeypatch.setenv("HEARTH_NUM_THREAD", "2")

    plain = run_hearth(["fit", str(tiny_model)], env)
    assert plain.returncode == 0, plain.stderr
    assert MEASURE_HINT in plain.stdout
    as_json = json.loads(run_hearth(["fit", str(tiny_model), "--json"], env).stdout)
    report = as_json["reports"][0]
    assert report["decode_tokens_per_second"] is None and report["prompt_tokens_per_second"] is None
    assert MEASURE_HINT in report["speed_basis"]

    machine = figures(**current_identity(), decode_overhead_s=0.001, decode_layer_overhead_s=0.00002,
                      prompt_overhead_s=0.00001, prompt_layer_overhead_s=0.000001)
    write_machine_speed(machine, home)
    info = read_gguf(tiny_model)
    read = bytes_read_per_token([(t.name, t.type_name, t.nbytes) for t in info.tensors], info.quantization)
    expected = predict_speed(info.file_size, shape_from_gguf(info), machine,
                             quantization=info.quantization, read_by_type=read)

    shown = run_hearth(["fit", str(tiny_model)], env)
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[1:] if line.strip()}
    assert f"{expected.decode_tokens_per_second:.1f} tok/s" in lines["decode"]
    assert "predicted" in lines["decode"]
    assert f"{expected.prompt_tokens_per_second:.1f} tok/s" in lines["prompt"]
    assert MEASURE_HINT not in shown.stdout

    report = json.loads(run_hearth(["fit", str(tiny_model), "--json"], env).stdout)["reports"][0]
    assert report["decode_tokens_per_second"] == expected.decode_tokens_per_second
    assert report["prompt_tokens_per_second"] == expected.prompt_tokens_per_second
    assert report["speed_basis"] == expected.basis

    # A catalog model: a predicted speed for every tag, from its size and shape.
    catalog = run_hearth(["fit", "smollm2"], env)
    assert catalog.returncode == 0, catalog.stderr
    header, *rows = [line for line in catalog.stdout.splitlines() if line.startswith("  ")]
    assert "DECODE" in header and "PROMPT" in header
    assert rows and all("tok/s" in row for row in rows)
    assert "predicted" in catalog.stdout

    # Another thread count: the figures no longer hold, and fit says so.
    other = run_hearth(["fit", str(tiny_model)], dict(env, HEARTH_NUM_THREAD="1"))
    assert "measured with threads 2, now 1" in other.stdout and MEASURE_HINT in other.stdout


def test_the_web_apps_fit_carries_the_prediction(tmp_path: Path, tiny_model: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth.api.hearth_types import FitInfo
    from hearth.fit import fit_gguf_file

    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEARTH_NUM_THREAD", "2")
    write_machine_speed(figures(**current_identity()))
    info = FitInfo.model_validate(fit_gguf_file(tiny_model).as_dict())
    assert info.decode_tokens_per_second and info.decode_tokens_per_second > 0
    assert info.prompt_tokens_per_second and info.prompt_tokens_per_second > 0
    assert info.speed_basis.startswith("predicted")


def test_the_routes_the_web_app_reads_carry_the_prediction(tmp_path: Path, tiny_model: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from hearth.runtime import Runtime
    from hearth.server.app import create_app

    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEARTH_NUM_THREAD", "2")
    runtime = Runtime()
    runtime.create("tiny", from_path=tiny_model)
    with TestClient(create_app(runtime), base_url="http://127.0.0.1:11435") as client:
        unmeasured = client.get("/api/hearth/fit", params={"model": "tiny"}).json()
        assert unmeasured["decode_tokens_per_second"] is None and MEASURE_HINT in unmeasured["speed_basis"]
        write_machine_speed(figures(**current_identity()))
        fit = client.get("/api/hearth/fit", params={"model": "tiny"}).json()
        assert fit["decode_tokens_per_second"] > 0 and fit["prompt_tokens_per_second"] > 0
        assert fit["speed_basis"].startswith("predicted")
        found = client.get("/api/hearth/catalog", params={"q": "smollm2"}).json()
        tags = next(e for e in found["entries"] if e["model"] == "smollm2")["tags"]
        assert all(tag["fit"]["decode_tokens_per_second"] > 0 for tag in tags)
        assert all(tag["fit"]["prompt_tokens_per_second"] > 0 for tag in tags)
    runtime.close()


def test_the_discover_view_shows_the_predicted_speed(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import HearthServer
    from tests.test_webapp import CHROMIUM, CHROMIUM_ARGS

    home = tmp_path / "home"
    write_machine_speed(figures(**current_identity(2)), home)
    server = HearthServer(home, HEARTH_NUM_THREAD="2")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.url}/#/discover")
            card = page.locator(".catalog-card[data-model='smollm2']")
            card.wait_for(timeout=60_000)
            badge = card.locator(".fit-slot .badge.speed")
            assert re.fullmatch(r"≈ [0-9.]+ tok/s \(predicted\)", badge.inner_text())
            title = badge.get_attribute("title") or ""
            assert title.startswith("predicted: generates") and "GB/s" in title
            browser.close()
        assert not errors, errors
    finally:
        server.stop()


# -- measuring ------------------------------------------------------------------------------------

# Small enough to write and time in a few seconds; still three models of the probe's kinds.
SMALL_PROBE = (("overhead-1", 1, 64, 64, 128, 0), ("overhead-4", 4, 64, 64, 128, 0),
               ("narrow", 8, 256, 64, 1024, 0), ("wide", 2, 1024, 128, 2048, 0),
               ("attention", 4, 256, 64, 64, 512))


def test_the_measuring_child_returns_positive_figures_for_real_models() -> None:
    from hearth.selftest.speed_probe import measure_machine_speed

    probe = measure_machine_speed(threads=1, models=SMALL_PROBE)
    assert probe.ok, probe.error
    machine = probe.figures
    assert machine is not None
    assert machine.bandwidth_bytes_per_s > 0 and machine.compute_flops_per_s > 0
    assert machine.attention_flops_per_s > 0
    assert machine.decode_row_overhead_s >= 0 and machine.prompt_row_overhead_s >= 0
    assert 0 <= machine.other_load <= 1
    assert machine.decode_overhead_s >= 0 and machine.decode_layer_overhead_s >= 0
    assert machine.prompt_overhead_s >= 0 and machine.prompt_layer_overhead_s >= 0
    assert machine.decode_overhead_s + machine.decode_layer_overhead_s > 0
    assert machine.threads == 1 and machine.device in ("cpu", "gpu")
    assert machine.identity() == current_identity(1)
    assert [model["name"] for model in machine.details["models"]] == [name for name, *_ in SMALL_PROBE]
    # What was measured predicts a positive speed for a real shape.
    prediction = predict_speed(98_000_000, SMOLLM2, machine)
    assert prediction.decode_tokens_per_second > 0 and prediction.prompt_tokens_per_second > 0


def test_figures_are_derived_from_the_probe_models_timings() -> None:
    from hearth.selftest.speed_probe import derive_figures

    def model(name: str, layers: int, rows: float, size: float, flops: float, decode: float,
              prompt: float, **extra: float) -> dict:
        return {"name": name, "n_layer": layers, "decode_rows": rows, "prompt_rows": rows,
                "read_bytes": size, "prompt_flops": flops, "decode_attention_flops": 0.0,
                "prompt_attention_flops": 0.0, "decode_s": decode, "prompt_s": prompt, **extra}

    # Made from known figures: 1 ms + 0.1 ms/layer, 10 ns/row, 10 GB/s, 100 GFLOP/s (decode);
    # 0.1 ms + 0.01 ms/layer, 1 ns/row (prompt); attention at 20 GFLOP/s.
    timings = [
        model("one", 1, 0, 0, 0, 0.0011, 0.00011),
        model("many", 11, 0, 0, 0, 0.0021, 0.00021),
        model("narrow", 10, 100_000, 100e6, 200e6, 0.002 + 0.001 + 0.01, 0.0002 + 0.0001 + 0.002),
        model("wide", 10, 20_000, 200e6, 400e6, 0.002 + 0.0002 + 0.02, 0.0002 + 0.00002 + 0.004),
        model("attention", 1, 0, 0, 0, 0.0011, 0.00011 + 0.001, prompt_attention_flops=20e6,
              long_prompt_attention_flops=60e6, long_prompt_s=0.00011 + 0.003),
    ]
    names = ["one", "many", "narrow", "wide", "attention"]
    derived = derive_figures(timings, names)
    assert derived["attention_flops_per_s"] == pytest.approx(20e9)
    assert derived["decode_layer_overhead_s"] == pytest.approx(0.0001)
    assert derived["decode_overhead_s"] == pytest.approx(0.001)
    assert derived["decode_row_overhead_s"] == pytest.approx(10e-9)
    assert derived["bandwidth_bytes_per_s"] == pytest.approx(10e9)
    assert derived["prompt_layer_overhead_s"] == pytest.approx(0.00001)
    assert derived["prompt_overhead_s"] == pytest.approx(0.0001)
    assert derived["prompt_row_overhead_s"] == pytest.approx(1e-9)
    assert derived["compute_flops_per_s"] == pytest.approx(100e9)
    slow_tiny = [*timings[:2], *(dict(t, decode_s=0.001) for t in timings[2:4]), timings[4]]
    with pytest.raises(ValueError, match="not slower"):
        derive_figures(slow_tiny, names)
    with pytest.raises(ValueError, match="no timings for attention"):
        derive_figures(timings[:4], names)


def test_write_tiny_model_new_options_keep_the_old_default(tmp_path: Path) -> None:
    default = write_tiny_model(tmp_path / "default.gguf", n_layers=2, n_embd=64)
    same = write_tiny_model(tmp_path / "same.gguf", n_layers=2, n_embd=64, head_dim=8)
    assert default.read_bytes() == same.read_bytes()
    wide = write_tiny_model(tmp_path / "wide.gguf", n_layers=3, n_embd=128, head_dim=64,
                            n_ff=96, file_type="Q8_0", repeat_layers=True)
    shape = shape_from_gguf(read_gguf(wide))
    assert (shape.n_head, shape.n_head_kv, shape.head_dim_k, shape.n_ff) == (2, 1, 64, 96)
