"""llama.cpp through llama-cpp-python, behind hearth's small engine contract:
``load / tokenize / detokenize / generate / close``.

``Llama.generate`` already keeps the KV cache of the previous prompt and re-evaluates only
what changed, which makes an interactive chat's next turn cheap; we add Ollama's options,
stop strings, end-of-generation tokens, context limits and Ollama-style timings.
"""

from __future__ import annotations

import codecs
import ctypes
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.engine.stops import StopMatcher
from hearth.errors import ContextOverflow, EngineError


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    prompt_cached: int = 0
    prompt_eval_ns: int = 0
    eval_count: int = 0
    eval_ns: int = 0

    @property
    def prompt_evaluated(self) -> int:
        return self.prompt_tokens - self.prompt_cached


@dataclass
class EngineChunk:
    text: str
    done: bool = False
    done_reason: str | None = None
    stats: GenerationStats | None = None
    tokens: list[int] | None = None


class LlamaEngine:
    def __init__(self, llm: Any, path: Path, settings: LoadSettings, load_ns: int) -> None:
        self._llm = llm
        self.path = path
        self.settings = settings
        self.load_ns = load_ns
        self._pieces: dict[int, bytes] = {}
        # Leading KV-cache positions computed by prompt evaluation in whole, aligned chunks:
        # the only ones a later prompt may reuse without changing its answer (see _reuse).
        self._aligned_prefix = 0

    @classmethod
    def load(cls, path: Path, settings: LoadSettings, *, embedding: bool = False,
             pooling_type: int | None = None) -> LlamaEngine:
        """``embedding=True`` opens the model in llama.cpp's embedding mode, pooled the way the
        GGUF says or by mean when it says nothing (one vector per input, as Ollama gives)."""
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

        started = time.perf_counter_ns()
        extra: dict[str, Any] = {}
        if embedding:
            extra = {"embedding": True,
                     "pooling_type": pooling_type if pooling_type else LLAMA_POOLING_TYPE_MEAN}
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=settings.num_ctx,
                n_batch=settings.num_batch,
                n_ubatch=settings.num_batch,
                n_threads=settings.num_thread,
                n_threads_batch=settings.num_thread,
                n_gpu_layers=settings.num_gpu,
                use_mmap=settings.use_mmap,
                verbose=False,
                **extra,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(f"llama.cpp could not load {path.name}: {exc}") from exc
        return cls(llm, path, settings, time.perf_counter_ns() - started)

    # -- vocabulary -------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        # llama.cpp rounds the context up (to 256), but llama-cpp-python's token buffer keeps
        # the size asked for: the smaller one is the real limit.
        return min(self._llm.n_ctx(), self._llm.context_params.n_ctx)

    @property
    def vocab_size(self) -> int:
        return self._llm.n_vocab()

    def token_text(self, token: int, special: bool = False) -> str:
        return self._piece(token, special).decode("utf-8", errors="replace")

    @property
    def bos_text(self) -> str:
        bos = self._llm.token_bos()
        return self.token_text(bos, special=True) if bos >= 0 else ""

    @property
    def eos_text(self) -> str:
        eos = self._llm.token_eos()
        return self.token_text(eos, special=True) if eos >= 0 else ""

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self._piece(t, False) for t in tokens).decode("utf-8", errors="replace")

    def _piece(self, token: int, special: bool) -> bytes:
        key = token if not special else -token - 1
        piece = self._pieces.get(key)
        if piece is None:
            import llama_cpp

            size = 64
            while True:
                buffer = ctypes.create_string_buffer(size)
                n = llama_cpp.llama_token_to_piece(self._llm._model.vocab, token, buffer, size, 0, special)
                if n >= 0:
                    break
                size = -n  # llama.cpp answers with the size it needs
            piece = buffer.raw[:n]
            self._pieces[key] = piece
        return piece

    def fill_in_middle(self, prefix: str, suffix: str) -> list[int] | None:
        """Prompt tokens asking for the text between prefix and suffix, or None when the
        model has no fill-in-the-middle tokens."""
        import llama_cpp

        vocab = self._llm._model.vocab
        pre, suf, mid = (llama_cpp.llama_vocab_fim_pre(vocab), llama_cpp.llama_vocab_fim_suf(vocab),
                         llama_cpp.llama_vocab_fim_mid(vocab))
        if min(pre, suf, mid) < 0:
            return None
        body = self.tokenize(prefix, add_special=False, parse_special=False)
        tail = self.tokenize(suffix, add_special=False, parse_special=False)
        head = self.tokenize("", add_special=True, parse_special=False)  # BOS where the model wants one
        return [*head, pre, *body, suf, *tail, mid]

    def _is_end_of_generation(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token))

    # -- generation -------------------------------------------------------------------------

    def check_fits(self, prompt_tokens: list[int]) -> None:
        n_ctx = self.context_length
        if len(prompt_tokens) >= n_ctx:
            raise ContextOverflow(
                f"the prompt is {len(prompt_tokens)} tokens but the context window (num_ctx) "
                f"holds {n_ctx}; shorten the prompt or raise num_ctx"
            )

    def generate(
        self,
        prompt_tokens: list[int],
        sampling: SamplingSettings,
        *,
        grammar: Any = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[EngineChunk]:
        """Stream text pieces; the last chunk has ``done=True``, the reason and the stats."""
        self.check_fits(prompt_tokens)
        llm = self._llm
        stats = GenerationStats(prompt_tokens=len(prompt_tokens))
        stats.prompt_cached = self._reuse(prompt_tokens)
        self._aligned_prefix = len(prompt_tokens) // self.settings.num_batch * self.settings.num_batch
        llm.set_seed(sampling.effective_seed())
        llm.last_n_tokens_size = sampling.repeat_last_n if sampling.repeat_last_n >= 0 else self.context_length
        limit = self._token_limit(sampling.num_predict, len(prompt_tokens))
        if limit == 0:
            yield EngineChunk("", done=True, done_reason="length", stats=stats, tokens=[])
            return
        matcher = StopMatcher(sampling.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated: list[int] = []
        reason = "stop"
        started = time.perf_counter_ns()
        first_token_at = 0
        tokens = llm.generate(
            prompt_tokens[stats.prompt_cached :],
            reset=False,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            typical_p=sampling.typical_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if not first_token_at:
                    first_token_at = time.perf_counter_ns()
                if self._is_end_of_generation(token):
                    break
                generated.append(token)
                text = matcher.feed(decoder.decode(self._piece(token, False)))
                if text:
                    yield EngineChunk(text)
                if matcher.stopped:
                    break
                if cancelled is not None and cancelled():
                    reason = "cancelled"
                    break
                if len(generated) >= limit:
                    # The context is full or num_predict is reached: say so, never crash.
                    reason = "length"
                    break
        except RuntimeError as exc:
            raise EngineError(f"llama.cpp failed while generating: {exc}") from exc
        finally:
            tokens.close()
        ended = time.perf_counter_ns()
        if not matcher.stopped:
            tail = matcher.feed(decoder.decode(b"", final=True)) + matcher.flush()
            if tail:
                yield EngineChunk(tail)
        first_token_at = first_token_at or ended
        stats.prompt_eval_ns = first_token_at - started
        stats.eval_count = len(generated)
        stats.eval_ns = ended - first_token_at
        yield EngineChunk("", done=True, done_reason=reason, stats=stats, tokens=generated)

    def _token_limit(self, num_predict: int, prompt_length: int) -> int:
        room = self.context_length - prompt_length
        if num_predict is None or num_predict < 0:
            return room
        return max(0, min(num_predict, room))

    def _reuse(self, tokens: list[int]) -> int:
        """Keep the longest reusable prefix of ``tokens`` in the KV cache; drop the rest.

        llama.cpp's arithmetic depends on how tokens are grouped into batches, so a prompt
        evaluated partly from cache can come out slightly different from the same prompt
        evaluated cold, enough to change a greedy answer. We therefore reuse only whole
        ``num_batch``-sized chunks that were themselves evaluated as prompt chunks from
        position 0: the suffix is then evaluated in exactly the chunks a cold run would use,
        and the answer is the same bit for bit. Tokens the model generated (one at a time)
        are never reused for the same reason.
        """
        llm = self._llm
        held = min(llm.n_tokens, self._aligned_prefix)
        same = 0
        for a, b in zip(llm.input_ids[:held].tolist(), tokens, strict=False):
            if a != b:
                break
            same += 1
        chunk = self.settings.num_batch
        reuse = min(same, len(tokens) - 1) // chunk * chunk
        llm._ctx.kv_cache_seq_rm(-1, reuse, -1)
        llm.n_tokens = reuse
        return reuse

    def embed(self, texts: list[str], *, truncate: bool = True) -> tuple[list[list[float]], int]:
        """Normalized embeddings, one per text, and the number of tokens read."""
        n_ctx = self.context_length
        batches = []
        total = 0
        for text in texts:
            tokens = self.tokenize(text, add_special=True, parse_special=False)
            if len(tokens) > n_ctx:
                if not truncate:
                    raise ContextOverflow(
                        f"an input is {len(tokens)} tokens but the context window holds {n_ctx}; "
                        "shorten it, raise num_ctx or allow truncate"
                    )
                text = self.detokenize(tokens[: n_ctx - 1])
                tokens = tokens[: n_ctx - 1]
            total += len(tokens)
            batches.append(text)
        try:
            vectors = self._llm.embed(batches, normalize=True, truncate=True)
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"llama.cpp could not embed the input: {exc}") from exc
        return [list(map(float, v)) for v in vectors], total

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
