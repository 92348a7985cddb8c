"""A llama.cpp sampler chain per request: its own penalties, top-k/p, temperature, seed and
grammar, so requests decoded together in one batch never share sampling state."""

from __future__ import annotations

from typing import Any

from hearth.engine.grammar import LazyGrammar
from hearth.engine.settings import SamplingSettings


def build_sampler(model: Any, n_ctx: int, sampling: SamplingSettings, grammar: Any = None) -> Any:
    """``model`` is llama-cpp-python's ``LlamaModel``; ``grammar`` a ``LlamaGrammar`` or None."""
    from llama_cpp._internals import LlamaSampler

    sampler = LlamaSampler()
    last_n = sampling.repeat_last_n if sampling.repeat_last_n >= 0 else n_ctx
    keep = _candidates_needed(sampling, last_n, model.n_vocab(), grammar is not None)
    if keep:
        sampler.add_top_k(keep)
    # The same order as llama-cpp-python's Llama, so answers match it token for token.
    sampler.add_penalties(model.n_vocab(), last_n, sampling.repeat_penalty,
                          sampling.frequency_penalty, sampling.presence_penalty)
    if isinstance(grammar, LazyGrammar):
        sampler.add_grammar_lazy_patterns(model, grammar.grammar, list(grammar.patterns),
                                          list(grammar.tokens))
    elif grammar is not None:
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


def _candidates_needed(sampling: SamplingSettings, last_n: int, n_vocab: int,
                       has_grammar: bool) -> int:
    """How many of the best tokens to keep before the penalties, or 0 to keep them all.

    Penalties that are not negative only lower the logits of the at most ``last_n`` distinct
    tokens seen recently, so the best ``k`` tokens after them are always among the best
    ``k + last_n`` before them. Cutting to those first picks the same tokens and spares the
    penalty sampler a pass over the whole vocabulary: with SmolLM2's 49k tokens a sample took
    0.17 ms with penalties and greedy choice, 0.04 ms with this cut. A grammar may reject any
    of the best tokens, so it always sees them all.
    """
    lowers_only = (sampling.repeat_penalty >= 1 and sampling.frequency_penalty >= 0
                   and sampling.presence_penalty >= 0)
    if has_grammar or not lowers_only or last_n <= 0:
        return 0
    if sampling.temperature <= 0:
        wanted = 1
    elif sampling.top_k > 0:
        wanted = sampling.top_k
    else:
        return 0
    keep = wanted + last_n
    return keep if keep < n_vocab // 4 else 0
