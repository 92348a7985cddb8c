"""What the runtime holds for a loaded model and one request, and the checks and estimates
made before a load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.api.types import Options
from hearth.api.validation import first_problem
from hearth.errors import InvalidRequest

if TYPE_CHECKING:
    from hearth.engine.base import LoadedEngine
    from hearth.engine.settings import LoadSettings
    from hearth.gguf import GGUFInfo


@dataclass
class LoadedModel:
    """An engine the scheduler holds; shared by every name that points at the same weights."""

    engine: LoadedEngine  # an Engine or an EmbeddingEngine (engine/base.py), from engine/factory.py
    info: GGUFInfo
    digest: str
    settings: LoadSettings
    size: int

    @property
    def load_ns(self) -> int:
        return self.engine.load_ns

    @property
    def n_parallel(self) -> int:
        return self.engine.n_parallel

    @property
    def alive(self) -> bool:
        return self.engine.alive

    @property
    def mapped_bytes(self) -> int:
        """Weights read through mmap: page cache, which MemAvailable counts as free although
        this model needs it (the scheduler subtracts it)."""
        return self.info.file_size if self.settings.use_mmap else 0

    def close(self) -> None:
        self.engine.close()


@dataclass
class PromptSetup:
    """What one request needs besides the engine: the name's template, system and defaults."""

    name: str
    loaded: LoadedModel
    template: str
    system: str | None
    parameters: Options
    messages: list[dict[str, Any]]


Cancelled = Callable[[], bool] | None
Adapters = tuple[tuple[str, float], ...]


def checked_adapters(adapters: Adapters, base: GGUFInfo) -> Adapters:
    """LoRA adapters given on the command line, each checked against the model first."""
    from hearth.gguf import read_gguf
    from hearth.gguf.adapters import validate_lora

    checked = []
    for path, scale in adapters:
        resolved = Path(path).expanduser().resolve()
        validate_lora(read_gguf(resolved), base)
        checked.append((str(resolved), float(scale)))
    return tuple(checked)
FOREVER = datetime(2318, 1, 1, tzinfo=timezone.utc)  # how Ollama shows "never expires"


def estimate_memory(info: GGUFInfo, settings: LoadSettings, n_parallel: int = 1) -> int:
    """Weights (with LoRA adapters) + f16 KV cache for every slot + compute buffers and runtime,
    in bytes: the same estimate ``hearth fit`` shows (hearth.fit.estimate)."""
    import os

    from hearth.engine.batch import PREFILL_BUDGET
    from hearth.fit import estimate_memory as fit_estimate
    from hearth.fit import shape_from_gguf

    adapters = sum(os.path.getsize(path) for path, _scale in settings.adapters if os.path.isfile(path))
    estimate = fit_estimate(info.file_size + adapters, shape_from_gguf(info), settings.num_ctx,
                            n_parallel=n_parallel,
                            batch_tokens=PREFILL_BUDGET + settings.num_batch + n_parallel,
                            kv_cache_type=settings.kv_cache_type)
    return estimate.total_bytes


def options_from_parameters(params: dict[str, Any], model: str) -> Options:
    from pydantic import ValidationError

    try:
        return Options(**params)
    except ValidationError as exc:
        raise InvalidRequest(f"model '{model}' has invalid parameters: {first_problem(exc)[1]}") from exc
