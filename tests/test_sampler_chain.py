"""The sampler chain's shortcut: cutting to the best candidates before the penalties must pick
exactly the tokens the full chain picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.engine import sampler_chain
from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.store import ModelStore

PROMPT = "List the colours of the rainbow, then list them again, and again:"


def test_the_cut_is_used_only_where_it_cannot_change_the_choice() -> None:
    needed = sampler_chain._candidates_needed
    assert needed(SamplingSettings(temperature=0), 64, 49152, False) == 65
    assert needed(SamplingSettings(temperature=0.8, top_k=40), 64, 49152, False) == 104
    # top_k 0 keeps every token for the later samplers, so nothing may be cut.
    assert needed(SamplingSettings(temperature=0.8, top_k=0), 64, 49152, False) == 0
    # A grammar may reject every one of the best tokens.
    assert needed(SamplingSettings(temperature=0), 64, 49152, True) == 0
    # Negative penalties raise logits: a token from far down may win.
    assert needed(SamplingSettings(temperature=0, presence_penalty=-0.5), 64, 49152, False) == 0
    assert needed(SamplingSettings(temperature=0, repeat_penalty=0.9), 64, 49152, False) == 0
    # No history to penalize, or a history as long as a big part of the vocabulary.
    assert needed(SamplingSettings(temperature=0), 0, 49152, False) == 0
    assert needed(SamplingSettings(temperature=0), 4096, 1000, False) == 0


@pytest.fixture(scope="module")
def smollm2_file(smollm2_home: Path) -> Path:
    return ModelStore(smollm2_home).get("smollm2").model_path


def generate(engine: LocalBatchEngine, **sampling) -> tuple[str, int]:
    text, count = [], 0
    for chunk in engine.generate(engine.vocab.tokenize(PROMPT, add_special=True, parse_special=False),
                                 SamplingSettings(num_predict=96, **sampling)):
        text.append(chunk.text)
        if chunk.done:
            count = chunk.stats.eval_count
    return "".join(text), count


@pytest.mark.e2e
@pytest.mark.parametrize("sampling", [
    {"temperature": 0, "repeat_penalty": 1.3},
    {"temperature": 0, "repeat_penalty": 1.1, "frequency_penalty": 0.6, "presence_penalty": 0.4},
    {"temperature": 0.9, "top_k": 40, "seed": 7, "repeat_penalty": 1.3},
])
def test_cut_and_full_chain_give_the_same_text(smollm2_file: Path, sampling: dict,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    engine = LocalBatchEngine(smollm2_file, LoadSettings(num_ctx=512, num_thread=2), n_parallel=1)
    try:
        assert sampler_chain._candidates_needed(SamplingSettings(**sampling), 64, 49152, False) > 0
        with_cut = generate(engine, **sampling)
        monkeypatch.setattr(sampler_chain, "_candidates_needed", lambda *args: 0)
        full_chain = generate(engine, **sampling)
    finally:
        engine.close()
    assert with_cut == full_chain
    assert with_cut[1] > 20  # a real answer, long enough for the penalties to matter
