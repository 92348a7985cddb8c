"""The engine and runtime on tiny real GGUF models: determinism, options, stops, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.api.types import ChatRequest, GenerateRequest, Message, Options
from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.engine.stops import StopMatcher
from hearth.errors import ContextOverflow, InvalidRequest, TemplateError
from hearth.runtime import Runtime
from tests.tinymodel import write_tiny_model


@pytest.fixture(scope="module")
def engine(tiny_model: Path):
    # num_batch 16: the prompt chunk that cached prefixes are aligned to (see test below).
    loaded = LocalBatchEngine(tiny_model, LoadSettings(num_ctx=128, num_batch=16, num_thread=2))
    yield loaded
    loaded.close()


def run(engine: LocalBatchEngine, prompt: str, **sampling) -> tuple[str, object]:
    tokens = engine.vocab.tokenize(prompt)
    pieces, last = [], None
    for chunk in engine.generate(tokens, SamplingSettings(**sampling)):
        pieces.append(chunk.text)
        last = chunk
    return "".join(pieces), last


def test_same_prompt_seed_and_zero_temperature_give_the_same_text(engine):
    first, final = run(engine, "Once upon a time", temperature=0, num_predict=24, seed=1)
    second, _ = run(engine, "Once upon a time", temperature=0, num_predict=24, seed=1)
    assert first and first == second
    assert final.done and final.stats.eval_count > 0


def test_sampling_with_the_same_seed_repeats_and_other_seeds_differ(engine):
    texts = {seed: run(engine, "the sky", temperature=1.5, top_k=0, top_p=1.0, num_predict=24, seed=seed)[0]
             for seed in (1, 2, 3)}
    again = run(engine, "the sky", temperature=1.5, top_k=0, top_p=1.0, num_predict=24, seed=1)[0]
    assert again == texts[1]
    assert len(set(texts.values())) > 1


def test_num_predict_limits_generated_tokens(engine):
    _, final = run(engine, "hello", temperature=0, num_predict=5)
    assert final.stats.eval_count <= 5
    if final.stats.eval_count == 5:
        assert final.done_reason == "length"


def test_stop_string_ends_the_answer_before_it(engine):
    full, _ = run(engine, "hello world", temperature=0, num_predict=40)
    assert len(full) > 6
    stop = full[3:6]
    cut, final = run(engine, "hello world", temperature=0, num_predict=40, stop=(stop,))
    assert cut == full[: full.index(stop)]
    assert final.done_reason == "stop"


def test_prompt_longer_than_the_context_is_a_clear_error(engine):
    long_prompt = " ".join(["water"] * (engine.context_length + 10))
    with pytest.raises(ContextOverflow, match="context window"):
        run(engine, long_prompt, temperature=0)


def test_generation_that_fills_the_context_stops_with_reason_length(engine):
    prompt = " ".join(["sun"] * 100)
    text, final = run(engine, prompt, temperature=0, num_predict=-1)
    assert final.done_reason in {"length", "stop"}
    assert final.stats.prompt_tokens + final.stats.eval_count <= engine.context_length


def test_cached_prefix_is_reused_in_whole_chunks_and_changes_nothing(engine, tiny_model):
    base = " ".join(["the moon and the sun"] * 8)
    first, _ = run(engine, base, temperature=0, num_predict=6)
    extended = base + " and the sky"
    warm, final = run(engine, extended, temperature=0, num_predict=6)
    assert final.stats.prompt_cached > 0
    assert final.stats.prompt_cached % 16 == 0
    assert final.stats.prompt_evaluated == final.stats.prompt_tokens - final.stats.prompt_cached
    cold_engine = LocalBatchEngine(tiny_model, LoadSettings(num_ctx=128, num_batch=16, num_thread=2))
    try:
        cold, cold_final = run(cold_engine, extended, temperature=0, num_predict=6)
    finally:
        cold_engine.close()
    assert cold_final.stats.prompt_cached == 0
    assert warm == cold
    again, _ = run(engine, base, temperature=0, num_predict=6)
    assert again == first


@pytest.mark.parametrize(
    ("pieces", "stops", "shown"),
    [
        (["Hel", "lo ##", "# world"], ["###"], "Hello "),
        (["a", "b", "c"], ["bd"], "abc"),
        (["abc"], [], "abc"),
        (["x<|e", "nd|>y"], ["<|end|>"], "x"),
    ],
)
def test_stop_matcher_never_shows_a_stop_split_across_pieces(pieces, stops, shown):
    matcher = StopMatcher(stops)
    out = "".join(matcher.feed(p) for p in pieces)
    out += matcher.flush()
    assert out == shown


def test_runtime_chat_uses_the_models_own_template_and_system(hearth_home, tiny_model):
    runtime = Runtime()
    runtime.create("tiny", modelfile=f'FROM "{tiny_model}"\nSYSTEM be brief\nPARAMETER temperature 0\n')
    request = ChatRequest(model="tiny", messages=[Message(role="user", content="hello")],
                          options=Options(num_predict=8))
    chunks = list(runtime.chat(request))
    final = chunks[-1]
    assert final.done and final.eval_count and final.eval_count <= 8
    assert final.prompt_eval_count > 5  # system + user turn rendered through the template
    text = "".join(c.message.content for c in chunks)
    again = "".join(c.message.content for c in runtime.chat(request))
    assert text == again
    runtime.close()


def test_generate_with_an_empty_prompt_only_loads_the_model(hearth_home, tiny_model):
    runtime = Runtime()
    runtime.create("tiny", from_path=tiny_model)
    (only,) = list(runtime.generate(GenerateRequest(model="tiny", prompt="")))
    assert only.done and only.done_reason == "load" and only.response == ""
    runtime.close()


def test_images_are_refused_by_a_text_only_model(hearth_home, tiny_model):
    runtime = Runtime()
    runtime.create("tiny", from_path=tiny_model)
    with pytest.raises(InvalidRequest, match="images"):
        list(runtime.generate(GenerateRequest(model="tiny", prompt="hi", images=["aGk="])))


def test_a_template_that_tries_to_escape_the_sandbox_fails_cleanly(hearth_home, tmp_path):
    evil = write_tiny_model(tmp_path / "evil.gguf",
                            chat_template="{{ cycler.__init__.__globals__.os.system('touch " +
                            str(tmp_path / "pwned") + "') }}")
    runtime = Runtime()
    runtime.create("evil", from_path=evil)
    request = ChatRequest(model="evil", messages=[Message(role="user", content="hi")])
    with pytest.raises(TemplateError):
        list(runtime.chat(request))
    assert not (tmp_path / "pwned").exists()
