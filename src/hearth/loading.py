"""What the runtime holds for a loaded model and one request, and the checks and estimates
made before a load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.api.types import Options
from hearth.errors import InvalidRequest

if TYPE_CHECKING:
    from hearth.engine.settings import LoadSettings
    from hearth.gguf import GGUFInfo


@dataclass
class LoadedModel:
    """An engine the scheduler holds; shared by every name that points at the same weights."""

    engine: Any  # LocalBatchEngine, RunnerEngine or EmbeddingEngine
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
    """Weights + f16 KV cache for every slot + a compute/runtime allowance, in bytes."""
    layers = info.block_count or 0
    heads = info.head_count or 1
    kv_heads = info.head_count_kv or heads
    width = info.embedding_length or 0
    kv_width = (width // heads) * kv_heads if heads else width
    kv_cache = 2 * settings.num_ctx * n_parallel * layers * kv_width * 2
    return info.file_size + kv_cache + 64 * 1024 * 1024


def options_from_parameters(params: dict[str, Any], model: str) -> Options:
    from pydantic import ValidationError

    try:
        return Options(**params)
    except ValidationError as exc:
        raise InvalidRequest(f"model '{model}' has invalid parameters: {exc.errors()[0]['msg']}") from exc
