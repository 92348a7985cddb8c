"""Fit reports: a model's memory estimate held against this machine's free memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth import config
from hearth.fit.estimate import MemoryEstimate, estimate_memory
from hearth.fit.machine import MachineMemory, read_machine_memory
from hearth.fit.shape import (
    ModelShape,
    parameters_from_file_size,
    shape_from_gguf,
    shape_from_numbers,
)
from hearth.fit.speed import MachineSpeed, predict_speed
from hearth.fit.verdict import verdict_for

if TYPE_CHECKING:
    from hearth.catalog.entries import CatalogTag
    from hearth.gguf import GGUFInfo
    from hearth.store import ModelStore, StoredModel


@dataclass
class FitReport:
    verdict: str  # "fits", "tight", "too large" ("unknown" where free memory cannot be read)
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    total_bytes: int
    available_bytes: int  # free RAM (MemAvailable)
    gpu_available_bytes: int | None  # free GPU memory, None without a GPU
    context_length: int
    # What the verdict compared against: free RAM, or RAM + GPU when llama.cpp can use the GPU.
    budget_bytes: int = 0
    device: str = "cpu"  # "cpu", "gpu" (all on the GPU) or "gpu+cpu" (layers split)
    n_parallel: int = 1
    name: str = ""
    quantization: str = ""
    parameter_size: str = ""
    shape: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Predicted on this machine (``speed.py``) from its measured figures; None without them.
    decode_tokens_per_second: float | None = None
    prompt_tokens_per_second: float | None = None
    speed_basis: str = ""  # how they were predicted, or why there are none and what to run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_for(estimate: MemoryEstimate, shape: ModelShape, memory: MachineMemory | None = None,
               *, name: str = "", quantization: str = "", parameter_size: str = "",
               notes: list[str] | None = None,
               machine_speed: tuple[MachineSpeed | None, str] | None = None,
               read_by_type: dict[str, int] | None = None) -> FitReport:
    """``machine_speed`` is (figures, why there are none), as ``read_machine_speed`` returns
    them; by default the cached figures in HEARTH_HOME are read. ``read_by_type``: the bytes a
    token reads by type, when the tensors are known (``speed.bytes_read_per_token``)."""
    memory = memory or read_machine_memory()
    notes = list(notes or [])
    total = estimate.total_bytes
    budget, device = memory.ram_available, "cpu"
    if memory.gpu_free is not None and memory.gpu_usable:
        budget = memory.ram_available + memory.gpu_free
        device = "gpu" if total <= memory.gpu_free else "gpu+cpu"
        if device == "gpu+cpu":
            notes.append("too big for the GPU alone: set num_gpu to the layers that fit")
    elif memory.gpu_free is not None:
        notes.append("a GPU is present but this llama.cpp build runs on the CPU only")
    if shape.source == "rule of thumb":
        notes.append("KV cache guessed from the parameter count (architecture unknown)")
    decode, prompt, basis = predicted_speed(estimate.weights_bytes, shape, quantization, device,
                                            machine_speed, read_by_type)
    return FitReport(
        verdict=verdict_for(total, budget),
        weights_bytes=estimate.weights_bytes,
        kv_cache_bytes=estimate.kv_cache_bytes,
        overhead_bytes=estimate.overhead_bytes,
        total_bytes=total,
        available_bytes=memory.ram_available,
        gpu_available_bytes=memory.gpu_free,
        context_length=estimate.context_length,
        budget_bytes=budget,
        device=device,
        n_parallel=estimate.n_parallel,
        name=name,
        quantization=quantization,
        parameter_size=parameter_size,
        shape=shape.as_dict(),
        notes=notes,
        decode_tokens_per_second=decode,
        prompt_tokens_per_second=prompt,
        speed_basis=basis,
    )


def predicted_speed(weights_bytes: int, shape: ModelShape, quantization: str, device: str,
                    machine_speed: tuple[MachineSpeed | None, str] | None,
                    read_by_type: dict[str, int] | None = None,
                    ) -> tuple[float | None, float | None, str]:
    """(decode, prompt) tokens per second and how they were computed, or (None, None, why not).
    Nothing is measured here: without cached figures the answer says what to run."""
    from hearth.fit.machine_speed import MEASURE_HINT, read_machine_speed

    figures, why = machine_speed if machine_speed is not None else read_machine_speed()
    if figures is None:
        return None, None, f"not predicted ({why}): {MEASURE_HINT}"
    if device == "gpu+cpu":
        return None, None, "not predicted: the model would be split between the GPU and the CPU"
    if figures.device != device:
        return None, None, (f"not predicted: the figures were measured on the {figures.device}, "
                            f"the model would run on the {device}")
    if shape.n_layer <= 0:
        return None, None, "not predicted: the model's architecture is unknown"
    prediction = predict_speed(weights_bytes, shape, figures, quantization=quantization,
                               read_by_type=read_by_type)
    return prediction.decode_tokens_per_second, prediction.prompt_tokens_per_second, prediction.basis


def choose_context(requested: int | None, model_default: int | None,
                   model_max: int | None) -> tuple[int, list[str]]:
    """The context a load would get (as ``LoadSettings.from_options`` picks it): the asked
    size, else the model's num_ctx parameter, else HEARTH_CONTEXT_LENGTH, capped at the
    model's trained length."""
    ctx = requested or model_default or config.context_length()
    notes = []
    if model_max and ctx > model_max:
        if requested:
            notes.append(f"context capped at the model's trained length, {model_max}")
        ctx = model_max
    return ctx, notes


def fit_size(weights_bytes: int, *, context_length: int, n_layer: int | None = None,
             n_embd: int | None = None, n_head: int | None = None, n_head_kv: int | None = None,
             head_dim: int | None = None, n_vocab: int | None = None,
             parameter_count: int | None = None, quantization: str = "", n_parallel: int = 1,
             memory: MachineMemory | None = None, name: str = "") -> FitReport:
    """A model known by its file size and whatever architecture numbers are at hand."""
    numbers = {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "n_head_kv": n_head_kv,
               "head_dim": head_dim, "n_vocab": n_vocab}
    params = parameter_count or parameters_from_file_size(weights_bytes, quantization)
    shape = shape_from_numbers(numbers, params)
    estimate = estimate_memory(weights_bytes, shape, context_length, n_parallel=n_parallel)
    return report_for(estimate, shape, memory, name=name, quantization=quantization)


def fit_gguf(info: GGUFInfo, ctx: int | None = None, *, name: str = "", extra_weights: int = 0,
             model_default_ctx: int | None = None, n_parallel: int = 1,
             memory: MachineMemory | None = None) -> FitReport:
    from hearth.fit.speed import bytes_read_per_token

    context, notes = choose_context(ctx, model_default_ctx, info.context_length)
    shape = shape_from_gguf(info)
    estimate = estimate_memory(info.file_size + extra_weights, shape, context, n_parallel=n_parallel)
    read = bytes_read_per_token([(t.name, t.type_name, t.nbytes) for t in info.tensors], info.quantization)
    if extra_weights:  # LoRA adapters are read with the layers
        read[info.quantization.upper()] = read.get(info.quantization.upper(), 0) + extra_weights
    return report_for(estimate, shape, memory, name=name, quantization=info.quantization,
                      parameter_size=info.parameter_size, notes=notes, read_by_type=read)


def fit_gguf_file(path: Path, ctx: int | None = None, *, n_parallel: int = 1,
                  memory: MachineMemory | None = None) -> FitReport:
    from hearth.gguf import read_gguf

    return fit_gguf(read_gguf(path), ctx, name=str(path), n_parallel=n_parallel, memory=memory)


def fit_stored_model(store: ModelStore, model: StoredModel, ctx: int | None = None, *,
                     n_parallel: int = 1, memory: MachineMemory | None = None) -> FitReport:
    from hearth.gguf import read_gguf

    del store  # the model carries its blob paths; kept for the shared signature
    info = read_gguf(model.model_path)
    adapters = sum(path.stat().st_size for path, _scale in model.adapters if path.is_file())
    num_ctx = model.parameters.get("num_ctx")
    return fit_gguf(info, ctx, name=model.name.short, extra_weights=adapters,
                    model_default_ctx=num_ctx if isinstance(num_ctx, int) else None,
                    n_parallel=n_parallel, memory=memory)


def fit_catalog_tag(tag: CatalogTag, ctx: int | None = None, *, n_parallel: int = 1,
                    memory: MachineMemory | None = None) -> FitReport:
    from hearth.fit.shape import bits_per_weight, parse_parameter_size

    num_ctx = tag.parameters.get("num_ctx")
    context, notes = choose_context(ctx, num_ctx if isinstance(num_ctx, int) else None,
                                    tag.context_length or None)
    params = parse_parameter_size(tag.parameter_size)
    weights = tag.size
    if not weights:
        bits = bits_per_weight(tag.quantization)
        if params and bits:
            weights = int(params * bits / 8)
            notes.append("weights size estimated from the parameter count and quantization")
    if not params:
        params = parameters_from_file_size(weights, tag.quantization)
    shape = shape_from_numbers(catalog_numbers(tag), params)
    estimate = estimate_memory(weights, shape, context, n_parallel=n_parallel)
    return report_for(estimate, shape, memory, name=f"{tag.model}:{tag.tag}",
                      quantization=tag.quantization, parameter_size=tag.parameter_size, notes=notes)


SHAPE_KEYS = ("n_layer", "n_embd", "n_head", "n_head_kv", "head_dim", "n_vocab", "n_ff")


def catalog_numbers(tag: CatalogTag) -> dict[str, Any]:
    """Architecture numbers for a catalog tag: the model entry's, overridden by the tag's
    (flat keys, or inside an ``architecture`` table)."""
    from hearth.catalog.entries import load_catalog

    entry = load_catalog().get(tag.model)
    if not isinstance(entry, dict):
        return {}
    tags = entry.get("tags", {})
    # Another quantization of a tag ("3b-q8_0") has the same architecture as the tag ("3b").
    base = tag.tag if tag.tag in tags else max(
        (name for name in tags if tag.tag.startswith(f"{name}-")), key=len, default=tag.tag)
    tag_data = tags.get(base, {})
    numbers: dict[str, Any] = {}
    for table in (entry, entry.get("architecture", {}), tag_data, tag_data.get("architecture", {})):
        if isinstance(table, dict):
            numbers.update({key: table[key] for key in SHAPE_KEYS if key in table})
    return numbers
