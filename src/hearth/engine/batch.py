"""Continuous batching: many requests decoded together in one llama.cpp context.

Each request is one sequence (seq_id = its slot) in a context with ``n_parallel`` slots, each
holding ``num_ctx`` tokens of KV cache. Every step builds one ``llama_decode`` batch with
one new token for every sequence that is generating, plus a prompt chunk for sequences still
reading their prompt; new requests join at the next step and finished or cancelled ones leave
at once, freeing their slot.

Prompts are read in chunks of ``num_batch`` tokens aligned to position 0, and a slot's KV
cache is reused by a later prompt only in those whole chunks (see ``_reusable_prefix``): this
keeps every answer the same, token for token, whether its prompt came from cache or not and
whether it ran alone or beside others.
"""

from __future__ import annotations

import codecs
import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.engine.chunks import GenerationStats
from hearth.engine.jobs import Event, Job, Slot
from hearth.engine.settings import LoadSettings
from hearth.engine.stops import StopMatcher
from hearth.engine.vocabulary import Vocabulary
from hearth.errors import ContextOverflow, EngineError, InvalidRequest

# Prompt tokens read per step, all sequences together, so one long prompt cannot stall the
# streams already generating for more than about one chunk's time.
PREFILL_BUDGET = 256

# llama.cpp's values for the settings' names (llama_cpp's LLAMA_FLASH_ATTN_TYPE_*, GGML_TYPE_*).
FLASH_ATTENTION_TYPES = {"auto": -1, "off": 0, "on": 1}
KV_CACHE_GGML_TYPES = {"f16": 1, "q4_0": 2, "q8_0": 8}


class BatchDecoder:
    """Owns the llama.cpp model and context; ``run`` is its loop (one thread)."""

    def __init__(self, path: Path, settings: LoadSettings, n_parallel: int) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaBatch, LlamaContext, LlamaModel
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp's load and graph logs are noise for hearth's users
        self.settings = settings
        self.n_parallel = n_parallel
        started = time.perf_counter_ns()
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = settings.num_gpu if settings.num_gpu >= 0 else 0x7FFFFFFF
        model_params.use_mmap = settings.use_mmap
        try:
            self.model = LlamaModel(path_model=str(path), params=model_params, verbose=False)
            context_params = llama_cpp.llama_context_default_params()
            context_params.n_ctx = settings.num_ctx * n_parallel
            # Room for every generating sequence's token plus the prompt budget, which one
            # whole prompt chunk may overshoot (chunks are never split; see _step).
            context_params.n_batch = PREFILL_BUDGET + settings.num_batch + n_parallel
            context_params.n_ubatch = context_params.n_batch
            context_params.n_seq_max = n_parallel
            context_params.kv_unified = False  # every slot its own num_ctx of KV cache
            context_params.n_threads = settings.num_thread
            context_params.n_threads_batch = settings.num_thread
            context_params.no_perf = True
            context_params.flash_attn_type = FLASH_ATTENTION_TYPES[settings.flash_attention]
            context_params.type_k = context_params.type_v = KV_CACHE_GGML_TYPES[settings.kv_cache_type]
            self.ctx = LlamaContext(model=self.model, params=context_params, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(f"llama.cpp could not load {path.name}: {exc}") from exc
        self._apply_adapters(settings.adapters)
        self.capacity = context_params.n_batch
        self.batch = LlamaBatch(n_tokens=self.capacity, embd=0, n_seq_max=n_parallel)
        self.vocab = Vocabulary(self.model)
        self.slot_context = self.ctx.n_ctx() // n_parallel
        self.load_ns = time.perf_counter_ns() - started
        self.slots = [Slot(i) for i in range(n_parallel)]
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        # Called after every decode step with whether the decoder is now idle (see outbox.py).
        self.after_step: Callable[[bool], None] | None = None
        # time.monotonic() when the step now running began, 0.0 between steps: the runner's
        # heartbeat reports it so the supervisor can tell a slow step from a hung one.
        self.step_started = 0.0
        self.steps = 0  # decode steps begun: progress the supervisor can see
        self._prefill_turn = 0  # which slot reads its prompt first this step (round robin)

    def _apply_adapters(self, adapters: tuple[tuple[str, float], ...]) -> None:
        """LoRA adapters at load; llama.cpp frees them with the model."""
        import ctypes

        import llama_cpp

        if not adapters:
            return
        handles = []
        for path, _scale in adapters:
            handle = llama_cpp.llama_adapter_lora_init(self.model.model, str(path).encode())
            if not handle:
                raise EngineError(f"llama.cpp could not load the LoRA adapter {Path(path).name}")
            handles.append(handle)
        array = (llama_cpp.llama_adapter_lora_p_ctypes * len(handles))(*handles)
        scales = (ctypes.c_float * len(adapters))(*(float(scale) for _path, scale in adapters))
        if llama_cpp.llama_set_adapters_lora(self.ctx.ctx, array, len(handles), scales) != 0:
            raise EngineError("llama.cpp could not apply the LoRA adapters")

    # -- requests from other threads ------------------------------------------------------

    def submit(self, job: Job) -> None:
        if not job.tokens:
            # Nothing to read means no logits to sample the first token from.
            raise InvalidRequest("the prompt is empty after applying the template: nothing to generate from")
        if len(job.tokens) >= self.slot_context:
            raise ContextOverflow(
                f"the prompt is {len(job.tokens)} tokens but a slot's context window (num_ctx) "
                f"holds {self.slot_context}; shorten the prompt or raise num_ctx"
            )
        with self._cond:
            self._queue.append(job)
            self._cond.notify()

    def cancel(self, request_id: int) -> None:
        with self._cond:
            for job in list(self._queue):
                if job.request_id == request_id:
                    self._queue.remove(job)
                    job.emit(Event(request_id, done=True, reason="cancelled", stats=job.stats))
            for slot in self.slots:
                if slot.job is not None and slot.job.request_id == request_id:
                    slot.job.cancelled = True
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._closed and not self._queue and not self._active():
                        self._cond.wait()
                    if self._closed:
                        break
                    self._admit()
                self.step_started = time.monotonic()
                self.steps += 1
                try:
                    self._step()
                except Exception as exc:  # noqa: BLE001 - a bug in one step must not end the loop
                    # The jobs of this step are in an unknown state: they fail, their caches are
                    # dropped, and the decoder goes on serving the next requests.
                    self._fail_active(f"the decoder failed: {type(exc).__name__}: {exc}")
                self.step_started = 0.0
                if self.after_step is not None:
                    self.after_step(not self._active())
        finally:
            self._fail_all("the model was unloaded")
            self.batch.close()
            self.ctx.close()
            self.model.close()

    def _active(self) -> bool:
        return any(slot.job is not None for slot in self.slots)

    def _admit(self) -> None:
        """First come, first served: the oldest waiting job takes the free slot whose cache
        shares the most of its prompt (or the least recently used one)."""
        while self._queue:
            free = [slot for slot in self.slots if slot.job is None]
            if not free:
                return
            job = self._queue.popleft()
            best = max(free, key=lambda s: (self._reusable_prefix(s, job.tokens), -s.last_used))
            try:
                self._start(best, job)
            except Exception as exc:  # noqa: BLE001 - a job that cannot start fails alone
                self._finish(best, "error", error=f"could not start the request: {type(exc).__name__}: {exc}")
                self._forget(best)

    def _reusable_prefix(self, slot: Slot, tokens: list[int]) -> int:
        same = 0
        for a, b in zip(slot.reusable, tokens, strict=False):
            if a != b:
                break
            same += 1
        chunk = self.settings.num_batch
        # At least one prompt token must be evaluated to get logits for the first answer token.
        return min(same, len(tokens) - 1) // chunk * chunk

    def _start(self, slot: Slot, job: Job) -> None:
        import llama_cpp

        from hearth.engine.sampler_chain import build_sampler

        reuse = self._reusable_prefix(slot, job.tokens)
        memory = llama_cpp.llama_get_memory(self.ctx.ctx)
        if not llama_cpp.llama_memory_seq_rm(memory, slot.index, reuse, -1):
            # Recurrent and hybrid models (Mamba, RWKV, Granite-4-H) cannot cut a sequence
            # part-way: start it afresh rather than reuse a state that holds the old tail.
            llama_cpp.llama_memory_seq_rm(memory, slot.index, -1, -1)
            reuse = 0
        slot.reusable = slot.reusable[:reuse]
        slot.job = job
        job.slot = slot.index
        job.fed = reuse
        job.stats = GenerationStats(prompt_tokens=len(job.tokens), prompt_cached=reuse)
        try:
            job.sampler = build_sampler(self.model, self.slot_context, job.sampling, job.grammar)
        except Exception as exc:  # a grammar llama.cpp rejects
            self._finish(slot, "error", error=f"could not build the sampler: {exc}")
            return
        job.matcher = StopMatcher(job.sampling.stop)
        job.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        room = self.slot_context - len(job.tokens)
        n = job.sampling.num_predict
        job.limit = room if n is None or n < 0 else min(n, room)
        if job.limit <= 0:
            self._finish(slot, "length")

    def _step(self) -> None:
        batch = self.batch.batch
        n = 0
        decoding: list[Job] = []
        in_batch: list[Job] = []
        for slot in self.slots:
            job = slot.job
            if job is None:
                continue
            if job.cancelled or (job.should_stop is not None and job.should_stop()):
                self._finish(slot, "cancelled")
                continue
            if job.fed >= len(job.tokens) and job.generated:
                n = self._add(batch, n, job.generated[-1], job.fed + len(job.generated) - 1, slot.index, True)
                job.logits_index = n - 1
                decoding.append(job)
                in_batch.append(job)
        # Prompts are read after the tokens of the streams already generating. The slot that
        # reads first turns each step, so a long prompt cannot hold the budget while a short
        # one in a later slot waits.
        budget = PREFILL_BUDGET
        chunk = self.settings.num_batch
        prefills: list[tuple[Job, int]] = []
        order = self.slots[self._prefill_turn:] + self.slots[:self._prefill_turn]
        self._prefill_turn = (self._prefill_turn + 1) % len(self.slots)
        for slot in order:
            job = slot.job
            if job is None or job.fed >= len(job.tokens) or budget <= 0:
                continue
            # Whole aligned chunks only (the last one may be short): see the module docstring.
            end = min(len(job.tokens), (job.fed // chunk + 1) * chunk)
            while end < len(job.tokens) and end - job.fed + chunk <= budget:
                end += chunk
            end = min(end, len(job.tokens))
            if n + end - job.fed > self.capacity:
                continue  # this chunk waits for the next step rather than being split
            for position in range(job.fed, end):
                last = position == len(job.tokens) - 1
                n = self._add(batch, n, job.tokens[position], position, slot.index, last)
            budget -= end - job.fed
            prefills.append((job, end))
            in_batch.append(job)
            if end == len(job.tokens):
                job.logits_index = n - 1
                decoding.append(job)
        if n == 0:
            return
        self.batch.batch.n_tokens = n
        status = self._decode()
        if status != 0:
            # Nothing of this batch may count as computed: every job in it fails and its
            # sequence is cleared, so no later prompt reuses cells that were never written.
            for job in in_batch:
                slot = self.slots[job.slot]
                self._finish(slot, "error", error=f"llama_decode failed ({status}) while running this request")
                self._forget(slot)
            return
        # Only now, with the batch in the KV cache, do the prompts count as read.
        for job, end in prefills:
            slot = self.slots[job.slot]
            if len(slot.reusable) == job.fed:
                slot.reusable.extend(job.tokens[job.fed:end])
            job.fed = end
        for job in decoding:
            slot = self.slots[job.slot]
            try:
                self._sample(slot, job)
            except Exception as exc:  # noqa: BLE001 - one job's sampler or stop check failing
                self._finish(slot, "error", error=f"sampling failed: {type(exc).__name__}: {exc}")
                self._forget(slot)

    @staticmethod
    def _add(batch: Any, n: int, token: int, position: int, seq: int, logits: bool) -> int:
        batch.token[n] = token
        batch.pos[n] = position
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = logits
        return n + 1

    def _decode(self) -> int:
        import llama_cpp

        return llama_cpp.llama_decode(self.ctx.ctx, self.batch.batch)

    def _sample(self, slot: Slot, job: Job) -> None:
        token = job.sampler.sample(self.ctx, job.logits_index)
        now = time.perf_counter_ns()
        if not job.first_token_ns:
            job.first_token_ns = now
            # Only the prompt's whole chunks are kept for reuse; a partial last chunk is not.
            keep = len(job.tokens) // self.settings.num_batch * self.settings.num_batch
            slot.reusable = slot.reusable[:keep]
        if self.vocab.is_end_of_generation(token):
            self._finish(slot, "stop")
            return
        job.generated.append(token)
        text = job.matcher.feed(job.decoder.decode(self.vocab.piece(token, special=job.sampling.keep_special)))
        if text:
            job.emit(Event(job.request_id, text=text))
        if job.matcher.stopped:
            self._finish(slot, "stop")
        elif len(job.generated) >= job.limit:
            self._finish(slot, "length")

    def _finish(self, slot: Slot, reason: str, error: str | None = None) -> None:
        job = slot.job
        slot.job = None
        slot.last_used = time.monotonic()
        if job is None:
            return
        now = time.perf_counter_ns()
        if job.sampler is not None:
            job.sampler.close()
        if error is None and job.matcher is not None and not job.matcher.stopped and job.decoder is not None:
            tail = job.matcher.feed(job.decoder.decode(b"", final=True)) + job.matcher.flush()
            if tail:
                job.emit(Event(job.request_id, text=tail))
        first = job.first_token_ns or now
        job.stats.prompt_eval_ns = first - job.submitted_ns
        job.stats.eval_count = len(job.generated)
        job.stats.eval_ns = now - first
        if job.matcher is not None:
            job.stats.stop_sequence = job.matcher.matched
        job.emit(Event(job.request_id, done=True, reason=reason, stats=job.stats, error=error))

    def _forget(self, slot: Slot) -> None:
        """Drop a sequence's KV cache and its reusable prefix (after a failure in it)."""
        import llama_cpp

        slot.reusable = []
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self.ctx.ctx), slot.index, -1, -1)

    def _fail_active(self, message: str) -> None:
        for slot in self.slots:
            if slot.job is not None:
                self._finish(slot, "error", error=message)
            self._forget(slot)

    def _fail_all(self, message: str) -> None:
        with self._cond:
            waiting, self._queue = list(self._queue), collections.deque()
        for job in waiting:
            job.emit(Event(job.request_id, done=True, reason="error", error=message))
        for slot in self.slots:
            if slot.job is not None:
                self._finish(slot, "error", error=message)
