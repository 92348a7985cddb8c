"""``hearth quality``: one model's perplexity on a text (``engine/perplexity.py``), with its file
size, the memory the scoring took and tokens/s. The same token windows for every model, so the
numbers compare."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

from hearth.store import ModelStore


@dataclass(frozen=True)
class QualityRow:
    name: str
    quantization: str
    file_size: int
    memory: int  # resident bytes the scorer added
    perplexity: float
    tokens_per_second: float


def default_text() -> str:
    from hearth.engine.perplexity import default_text as shipped

    return shipped()


def model_file(store: ModelStore, name: str) -> Path:
    """A GGUF path as given, else the file of the installed model by that name."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    return store.get(name).model_path


def resident_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(store: ModelStore, name: str, text: str, ctx: int, threads: int) -> QualityRow:
    from hearth.engine.perplexity import open_scorer, perplexity_of_tokens, tokenize_text
    from hearth.gguf import read_gguf

    path = model_file(store, name)
    info = read_gguf(path)
    before = resident_bytes()
    llm = open_scorer(path, ctx, threads)
    try:
        result = perplexity_of_tokens(llm, tokenize_text(llm, text), ctx)
        memory = max(0, resident_bytes() - before)
    finally:
        llm.close()
        del llm
        gc.collect()
    return QualityRow(name, info.quantization, info.file_size, memory, result.perplexity,
                      result.tokens_per_second)
