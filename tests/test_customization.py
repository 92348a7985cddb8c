"""Quantization, LoRA adapters, perplexity and /save: customization measured, not guessed."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pexpect
import pytest

from hearth.gguf import read_gguf
from hearth.store import ModelStore
from tests.conftest import hearth_env, run_hearth
from tests.tinymodel import write_tiny_lora, write_tiny_model

GREEDY = ["-o", "temperature=0", "-o", "num_predict=12"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return hearth_env(tmp_path / "home")


@pytest.fixture
def f16_model(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "tiny-f16.gguf", file_type="F16")


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def blob_of(env: dict[str, str], name: str) -> Path:
    return ModelStore(Path(env["HEARTH_HOME"])).get(name).model_path


def test_quantize_f16_to_q8_0_and_q4_0_keeps_license_system_and_parameters(env, f16_model, tmp_path):
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f'FROM {f16_model}\nSYSTEM be brief\nPARAMETER temperature 0.3\nLICENSE "Tiny License 1.0"\n')
    ok(run_hearth(["create", "base", "-f", str(modelfile)], env))
    sizes = {"F16": blob_of(env, "base").stat().st_size}
    for target in ("Q8_0", "Q4_0"):
        result = run_hearth(["create", f"tiny-{target.lower()}", "--from", "base", "-q", target], env)
        ok(result)
        assert f"quantized to {target}" in result.stderr
        blob = blob_of(env, f"tiny-{target.lower()}")
        assert read_gguf(blob).quantization == target
        sizes[target] = blob.stat().st_size
        assert ok(run_hearth(["show", f"tiny-{target.lower()}", "--system"], env)).strip() == "be brief"
        assert "Tiny License 1.0" in ok(run_hearth(["show", f"tiny-{target.lower()}", "--license"], env))
        assert "temperature" in ok(run_hearth(["show", f"tiny-{target.lower()}", "--parameters"], env))
        answer = ok(run_hearth(["run", f"tiny-{target.lower()}", "hello", *GREEDY], env))
        assert answer.strip()
    assert sizes["Q4_0"] < sizes["Q8_0"] < sizes["F16"]


def test_requantizing_a_low_bit_model_is_refused_unless_allowed(env, f16_model):
    ok(run_hearth(["create", "q4", "--from", str(f16_model), "-q", "Q4_0"], env))
    refused = run_hearth(["create", "q4-again", "--from", "q4", "-q", "Q4_1"], env)
    assert refused.returncode == 1 and "--allow-requantize" in refused.stderr
    assert "Traceback" not in refused.stderr
    ok(run_hearth(["create", "q4-again", "--from", "q4", "-q", "Q4_1", "--allow-requantize"], env))
    assert read_gguf(blob_of(env, "q4-again")).quantization == "Q4_1"
    unknown = run_hearth(["create", "x", "--from", "q4", "-q", "Q9_Z"], env)
    assert unknown.returncode == 1 and "Q4_K_M" in unknown.stderr


def test_create_help_lists_the_quantization_types(env):
    shown = ok(run_hearth(["create", "--help"], env))
    for name in ("Q4_K_M", "Q8_0", "Q4_0", "F16"):
        assert name in shown


def test_a_lora_adapter_changes_the_answer_deterministically_and_scale_zero_does_not(env, tmp_path):
    base = write_tiny_model(tmp_path / "base.gguf")
    lora = write_tiny_lora(tmp_path / "lora.gguf", base)
    ok(run_hearth(["create", "base", "--from", str(base)], env))
    (tmp_path / "Modelfile").write_text("FROM base\nADAPTER ./lora.gguf\n")
    ok(run_hearth(["create", "tuned", "-f", str(tmp_path / "Modelfile")], env))
    (tmp_path / "Modelfile.zero").write_text("FROM base\nADAPTER ./lora.gguf 0\n")
    ok(run_hearth(["create", "tuned-zero", "-f", str(tmp_path / "Modelfile.zero")], env))

    plain = ok(run_hearth(["run", "base", "the sky", *GREEDY], env))
    tuned = ok(run_hearth(["run", "tuned", "the sky", *GREEDY], env))
    assert tuned != plain
    assert ok(run_hearth(["run", "tuned", "the sky", *GREEDY], env)) == tuned
    assert ok(run_hearth(["run", "tuned-zero", "the sky", *GREEDY], env)) == plain
    # The same adapter given on the command line gives the same answer as the stored one.
    assert ok(run_hearth(["run", "base", "the sky", "--adapter", str(lora), *GREEDY], env)) == tuned
    assert ok(run_hearth(["run", "base", "the sky", "--adapter", f"{lora}:0", *GREEDY], env)) == plain
    shown = ok(run_hearth(["show", "tuned"], env))
    assert "Adapters" in shown and "scale 1" in shown
    assert "ADAPTER" in ok(run_hearth(["show", "tuned", "--modelfile"], env))


def test_several_adapters_and_generate_with_an_adapter(env, tmp_path):
    base = write_tiny_model(tmp_path / "base.gguf")
    first = write_tiny_lora(tmp_path / "a.gguf", base, seed=1)
    second = write_tiny_lora(tmp_path / "b.gguf", base, seed=2, targets=("ffn_gate",))
    args = ["generate", "-m", str(base), "-p", "the sky", "-n", "10", "--temp", "0"]
    plain = ok(run_hearth(args, env))
    one = ok(run_hearth([*args, "--adapter", str(first)], env))
    both = ok(run_hearth([*args, "--adapter", str(first), "--adapter", f"{second}:0.5"], env))
    assert len({plain, one, both}) == 3


def test_an_adapter_for_another_model_is_refused(env, tmp_path):
    base = write_tiny_model(tmp_path / "base.gguf")
    wider = write_tiny_model(tmp_path / "wide.gguf", n_embd=64)
    foreign = write_tiny_lora(tmp_path / "foreign.gguf", wider)
    ok(run_hearth(["create", "base", "--from", str(base)], env))
    (tmp_path / "Modelfile").write_text(f"FROM base\nADAPTER {foreign}\n")
    refused = run_hearth(["create", "bad", "-f", str(tmp_path / "Modelfile")], env)
    assert refused.returncode == 1 and "does not fit this model" in refused.stderr
    assert "Traceback" not in refused.stderr
    blobs_before = sorted(p.name for p in (Path(env["HEARTH_HOME"]) / "models" / "blobs").iterdir())
    on_run = run_hearth(["run", "base", "hi", "--adapter", str(foreign)], env)
    assert on_run.returncode == 1 and "does not fit this model" in on_run.stderr
    other_arch = write_tiny_lora(tmp_path / "other-arch.gguf", base, architecture="gemma")
    wrong_arch = run_hearth(["run", "base", "hi", "--adapter", str(other_arch)], env)
    assert wrong_arch.returncode == 1 and "architecture" in wrong_arch.stderr
    assert sorted(p.name for p in (Path(env["HEARTH_HOME"]) / "models" / "blobs").iterdir()) == blobs_before


def test_save_in_chat_creates_a_model_with_the_session(env, tmp_path):
    ok(run_hearth(["create", "tiny", "--from", str(write_tiny_model(tmp_path / "t.gguf"))], env))
    child = pexpect.spawn(sys.executable, ["-m", "hearth", "run", "tiny", "-o", "num_predict=4"], env=env,
                          encoding="utf-8", timeout=60)
    try:
        child.expect_exact(">>> ")
        child.sendline("/set system You are a pirate.")
        child.expect_exact(">>> ")
        child.sendline("/set parameter temperature 0.25")
        child.expect_exact(">>> ")
        child.sendline("hello there")
        child.expect_exact(">>> ")
        child.sendline("/save pirate")
        child.expect_exact("Created new model 'pirate'")
        child.expect_exact(">>> ")
        child.sendline("/load pirate")
        child.expect_exact("Loading model 'pirate'")
        child.expect_exact(">>> ")
        child.sendline("/load no-such-model")
        child.expect_exact("not found")
        child.expect_exact(">>> ")
        child.sendline("/bye")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert ok(run_hearth(["show", "pirate", "--system"], env)).strip() == "You are a pirate."
    shown = ok(run_hearth(["show", "pirate"], env))
    assert "Messages" in shown and "hello there" in shown
    assert "temperature" in ok(run_hearth(["show", "pirate", "--parameters"], env))


@pytest.mark.e2e
def test_perplexity_of_english_is_lower_than_of_the_same_tokens_shuffled(smollm2_home):
    from hearth.engine.perplexity import (
        default_text,
        open_scorer,
        perplexity_of_tokens,
        tokenize_text,
    )

    path = ModelStore(smollm2_home).get("smollm2").model_path
    llm = open_scorer(path, 256, 2)
    try:
        tokens = tokenize_text(llm, default_text())[:768]
        shuffled = tokens[:]
        random.Random(0).shuffle(shuffled)
        english = perplexity_of_tokens(llm, tokens, 256)
        scrambled = perplexity_of_tokens(llm, shuffled, 256)
    finally:
        llm.close()
    assert english.tokens_scored == scrambled.tokens_scored > 700
    assert english.perplexity * 5 < scrambled.perplexity


@pytest.mark.e2e
def test_quality_command_compares_two_models_in_one_table(smollm2_home, tmp_path):
    env = hearth_env(smollm2_home)
    text = tmp_path / "text.txt"
    text.write_text("The sun rose over the quiet village, and the people began their day. " * 8)
    result = run_hearth(["quality", "smollm2", str(write_tiny_model(tmp_path / "t.gguf")), "--text", str(text),
                         "--ctx", "128"], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["MODEL", "QUANT", "FILE", "SIZE", "MEMORY", "PERPLEXITY", "TOKENS/S"]
    smollm2_ppl = float(lines[1].split()[-2])
    tiny_ppl = float(lines[2].split()[-2])
    assert smollm2_ppl < tiny_ppl  # a real model beats random weights
