"""Which of a catalog model's tags fit this machine, which one to recommend, and the warning a
pull shows before it downloads something that will not run well here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hearth import config
from hearth.fit.machine import MachineMemory, read_machine_memory
from hearth.fit.report import FitReport, fit_catalog_tag, fit_size
from hearth.fit.verdict import FITS, TIGHT, TOO_LARGE
from hearth.units import human_size

if TYPE_CHECKING:
    from hearth.catalog.entries import CatalogTag


@dataclass(frozen=True)
class CatalogVariant:
    """One downloadable file of a catalog model: a tag at one of its quantizations."""

    base: str  # the tag as the catalog writes it ("3b")
    aliases: tuple[str, ...]  # other names of the base tag ("latest")
    tag: CatalogTag  # tag.tag is "3b" at the default quantization, "3b-q8_0" otherwise


def catalog_variants(model: str) -> list[CatalogVariant]:
    """Every tag of a catalog model at every quantization it offers, in the catalog's order
    (the default quantization of each tag first)."""
    from hearth.catalog.entries import find_tag, load_catalog
    from hearth.names import ModelName

    entry = load_catalog().get(model)
    if not isinstance(entry, dict) or not ModelName.is_valid(model):
        return []
    variants = []
    for base, data in entry.get("tags", {}).items():
        if not isinstance(data, dict) or not ModelName.is_valid(f"{model}:{base}"):
            continue
        aliases = tuple(str(alias) for alias in data.get("aliases", []))
        default = find_tag(ModelName.parse(f"{model}:{base}"))
        if default is None:
            continue
        variants.append(CatalogVariant(base, aliases, default))
        for quant in data.get("quantizations", []):
            if str(quant).upper() == default.quantization.upper():
                continue
            name = f"{model}:{base}-{str(quant).lower()}"
            tag = find_tag(ModelName.parse(name)) if ModelName.is_valid(name) else None
            if tag is not None:
                variants.append(CatalogVariant(base, aliases, tag))
    return variants


def catalog_tags(model: str) -> list[CatalogTag]:
    return [variant.tag for variant in catalog_variants(model)]


def fit_catalog_model(model: str, ctx: int | None = None, *, n_parallel: int = 1,
                      memory: MachineMemory | None = None,
                      ) -> tuple[list[tuple[CatalogTag, FitReport]], CatalogTag | None]:
    """Each tag with its report, and the recommended tag (see ``recommend``)."""
    memory = memory or read_machine_memory()
    fits = [(tag, fit_catalog_tag(tag, ctx, n_parallel=n_parallel, memory=memory))
            for tag in catalog_tags(model) if tag.weights == "open"]
    return fits, recommend(fits)


def recommend(fits: list[tuple[CatalogTag, FitReport]]) -> CatalogTag | None:
    """The tag with the most weights among those that fit with room to spare: more bytes of
    weights means more parameters or more bits per parameter, both better answers. Nothing is
    recommended when nothing fits."""
    candidates = [(report.weights_bytes, index, tag) for index, (tag, report) in enumerate(fits)
                  if report.verdict == FITS]
    if not candidates:
        return None
    # On equal sizes the catalog's first tag wins (its own order says which is the default).
    return max(candidates, key=lambda item: (item[0], -item[1]))[2]


def recommend_tag(model: str, ctx: int | None = None, *,
                  memory: MachineMemory | None = None) -> CatalogTag | None:
    """The best tag of catalog model ``model`` (a short name, with or without a tag) that fits
    this machine, or None when none fits or the catalog does not know the model."""
    from hearth.errors import InvalidModelName
    from hearth.names import ModelName

    try:
        parsed = ModelName.parse(model)
    except InvalidModelName:
        return None
    return fit_catalog_model(parsed.model, ctx, memory=memory)[1]


def pull_warning(size_bytes: int, context_length: int | None, *,
                 memory: MachineMemory | None = None) -> str | None:
    """One line to show (as a warning) before downloading ``size_bytes`` of weights, or None
    when the model fits. The context is what a load would use: HEARTH_CONTEXT_LENGTH, capped at the model's."""
    if not size_bytes or size_bytes <= 0:
        return None
    ctx = config.context_length()
    if context_length:
        ctx = min(ctx, context_length)
    report = fit_size(size_bytes, context_length=ctx, memory=memory)
    if report.verdict not in (TIGHT, TOO_LARGE):
        return None
    need, have = human_size(report.total_bytes), human_size(report.budget_bytes)
    if report.verdict == TIGHT:
        return (f"this model needs about {need} of memory with a {ctx}-token context and "
                f"this machine has {have} free: it may run slowly or push other programs into swap")
    return (f"this model needs about {need} of memory with a {ctx}-token context but "
            f"this machine has only {have} free: it will likely not load; choose a smaller size or "
            "quantization (see `hearth fit`)")

