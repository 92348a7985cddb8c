"""Check a LoRA adapter against the model it is meant for, before llama.cpp sees either.

llama.cpp rejects a mismatched adapter too, but late and vaguely (or, for some mismatches,
not at all); checking the architecture and every tensor's shape here gives the user a clear
reason, and nothing is loaded.
"""

from __future__ import annotations

from hearth.errors import InvalidRequest
from hearth.gguf.info import GGUFInfo


def validate_lora(adapter: GGUFInfo, base: GGUFInfo) -> None:
    name = adapter.path.name
    kind = adapter.metadata.get("general.type")
    if kind != "adapter" or adapter.metadata.get("adapter.type") != "lora":
        raise InvalidRequest(f"{name} is not a LoRA adapter (general.type={kind!r})")
    if adapter.architecture != base.architecture:
        raise InvalidRequest(
            f"adapter {name} is for architecture '{adapter.architecture}', but the model is "
            f"'{base.architecture}'"
        )
    weights = {tensor.name: tensor.shape for tensor in base.tensors}
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for tensor in adapter.tensors:
        target, _, part = tensor.name.rpartition(".")
        if part not in ("lora_a", "lora_b"):
            continue
        pairs.setdefault(target, {})[part] = tensor.shape
    if not pairs:
        raise InvalidRequest(f"adapter {name} holds no LoRA tensors")
    for target, parts in sorted(pairs.items()):
        if set(parts) != {"lora_a", "lora_b"}:
            raise InvalidRequest(f"adapter {name}: {target} lacks its lora_a or lora_b tensor")
        if target not in weights:
            raise InvalidRequest(f"adapter {name} changes {target}, which this model does not have")
        a, b, w = parts["lora_a"], parts["lora_b"], weights[target]
        # GGUF shapes list the row length first: w is (in, out), a is (in, rank), b (rank, out).
        if len(a) != 2 or len(b) != 2 or len(w) != 2 or a[0] != w[0] or b[1] != w[1] or a[1] != b[0]:
            raise InvalidRequest(
                f"adapter {name} does not fit this model: {target} is {w}, the adapter's "
                f"lora_a is {a} and lora_b is {b}"
            )
