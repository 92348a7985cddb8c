"""A llama.cpp sampler chain per request: its own penalties, top-k/p, temperature, seed and
grammar, so requests decoded together in one batch never share sampling state."""

from __future__ import annotations

from typing import Any

from hearth.engine.settings import SamplingSettings


def build_sampler(model: Any, n_ctx: int, sampling: SamplingSettings, grammar: Any = None) -> Any:
    """``model`` is llama-cpp-python's ``LlamaModel``; ``grammar`` a ``LlamaGrammar`` or None."""
    from llama_cpp._internals import LlamaSampler

    sampler = LlamaSampler()
    last_n = sampling.repeat_last_n if sampling.repeat_last_n >= 0 else n_ctx
    # The same order as llama-cpp-python's Llama, so answers match it token for token.
    sampler.add_penalties(model.n_vocab(), last_n, sampling.repeat_penalty,
                          sampling.frequency_penalty, sampling.presence_penalty)
    if grammar is not None:
        sampler.add_grammar(model, grammar)
    if sampling.temperature <= 0:
        sampler.add_greedy()
        return sampler
    if sampling.top_k > 0:
        sampler.add_top_k(sampling.top_k)
    sampler.add_typical(sampling.typical_p, 1)
    sampler.add_top_p(sampling.top_p, 1)
    sampler.add_min_p(sampling.min_p, 1)
    sampler.add_temp(sampling.temperature)
    sampler.add_dist(sampling.effective_seed())
    return sampler
