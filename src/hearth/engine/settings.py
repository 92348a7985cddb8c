"""Ollama options turned into the settings the engine needs, with Ollama's defaults.

Load settings decide how a model is opened (a change means a reload); sampling settings are
per request. Defaults match Ollama's so that answers look the same to its users.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hearth import config
from hearth.api.types import Options


@dataclass(frozen=True)
class LoadSettings:
    num_ctx: int
    num_batch: int = 64
    num_thread: int = 1
    num_gpu: int = -1
    use_mmap: bool = True
    # LoRA adapters applied at load: (file path, scale) pairs.
    adapters: tuple[tuple[str, float], ...] = ()
    flash_attention: str = "off"  # off | auto | on, as llama.cpp means them
    kv_cache_type: str = "f16"  # f16 | q8_0 | q4_0

    @classmethod
    def from_options(cls, options: Options, model_context_length: int | None,
                     adapters: tuple[tuple[str, float], ...] = ()) -> LoadSettings:
        num_ctx = options.num_ctx or config.context_length()
        if model_context_length:
            # Beyond the trained length llama.cpp would quietly produce garbage.
            num_ctx = min(num_ctx, model_context_length)
        return cls(
            num_ctx=num_ctx,
            # Small prompt chunks make more of a cached prefix reusable (see LlamaEngine._reuse)
            # and cost little prefill speed on a CPU.
            num_batch=options.num_batch or 64,
            num_thread=options.num_thread or config.num_thread(),
            num_gpu=-1 if options.num_gpu is None else options.num_gpu,
            use_mmap=True if options.use_mmap is None else options.use_mmap,
            adapters=tuple(adapters),
            **attention_settings(options),
        )


def attention_settings(options: Options) -> dict[str, str]:
    """Flash attention and the KV-cache type, from the options or the settings. A quantized
    cache needs flash attention (llama.cpp quantizes V only inside it): the default and "auto"
    then mean on, and an explicit "off" is the caller's contradiction, said as such."""
    import os

    from hearth.errors import InvalidRequest

    kv_type = options.kv_cache_type or config.kv_cache_type()
    flash = options.flash_attention or config.flash_attention()
    # Off by default only: an off someone asked for contradicts a quantized cache.
    asked_off = flash == "off" and bool(options.flash_attention or os.environ.get("HEARTH_FLASH_ATTENTION", "").strip())
    if kv_type != "f16":
        if asked_off:
            raise InvalidRequest(f"a {kv_type} KV cache needs flash attention, which is set to off; "
                                 "use flash_attention auto or on, or kv_cache_type f16")
        flash = "on"
    return {"flash_attention": flash, "kv_cache_type": kv_type}


@dataclass(frozen=True)
class SamplingSettings:
    num_predict: int = -1
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = -1
    stop: tuple[str, ...] = field(default_factory=tuple)
    # Decoded text keeps special tokens' text (<think>, [TOOL_CALLS], <|channel|>, ...) for a
    # reply parser that reads them; off, they are dropped as before.
    keep_special: bool = False

    @classmethod
    def from_options(cls, options: Options) -> SamplingSettings:
        values = {
            name: getattr(options, name)
            for name in cls.__dataclass_fields__
            if getattr(options, name, None) is not None
        }
        if "stop" in values:
            values["stop"] = tuple(s for s in values["stop"] if s)
        return cls(**values)

    def effective_seed(self) -> int:
        # A negative seed means "random", as in Ollama; chosen here so it can be reported.
        return self.seed if self.seed >= 0 else random.randrange(0, 2**31 - 1)
