"""``hearth fit TARGET``: turn what the user typed (a GGUF path, an installed model, a catalog
model with or without a tag or quantization) into fit reports. The CLI prints the answer; the
web app can send ``as_dict()`` as it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.errors import InvalidRequest, ModelNotFound
from hearth.fit.catalog_fit import catalog_variants, recommend
from hearth.fit.machine import MachineMemory, read_machine_memory
from hearth.fit.report import FitReport, fit_catalog_tag, fit_gguf_file, fit_stored_model
from hearth.fit.verdict import FITS_FRACTION, TIGHT_FRACTION
from hearth.references import looks_like_path

if TYPE_CHECKING:
    from hearth.store import ModelStore


@dataclass
class FitAnswer:
    kind: str  # "file", "installed" or "catalog"
    query: str
    reports: list[FitReport]
    tags: list[str] = field(default_factory=list)  # catalog: the tag of each report
    recommended: str | None = None  # catalog: the recommended tag's full name
    memory: MachineMemory | None = None

    def as_dict(self) -> dict[str, Any]:
        memory = self.memory
        return {
            "kind": self.kind,
            "query": self.query,
            "reports": [report.as_dict() for report in self.reports],
            "tags": self.tags,
            "recommended": self.recommended,
            "machine": {
                "ram_available_bytes": memory.ram_available if memory else None,
                "ram_total_bytes": memory.ram_total if memory else None,
                "gpu_free_bytes": memory.gpu_free if memory else None,
                "gpu_total_bytes": memory.gpu_total if memory else None,
                "gpu_usable": memory.gpu_usable if memory else False,
            },
            "thresholds": {"fits": FITS_FRACTION, "tight": TIGHT_FRACTION},
        }


def fit_target(store: ModelStore, text: str, ctx: int | None = None, *, catalog: bool = False,
               n_parallel: int = 1, memory: MachineMemory | None = None) -> FitAnswer:
    from hearth.names import DEFAULT_HOST, DEFAULT_NAMESPACE, ModelName

    memory = memory or read_machine_memory()
    if looks_like_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise InvalidRequest(f"GGUF file {path} does not exist")
        return FitAnswer("file", text, [fit_gguf_file(path, ctx, n_parallel=n_parallel, memory=memory)],
                         memory=memory)
    name = ModelName.parse(text)
    if not catalog and store.exists(name):
        report = fit_stored_model(store, store.get(name), ctx, n_parallel=n_parallel, memory=memory)
        return FitAnswer("installed", text, [report], memory=memory)
    in_library = name.host == DEFAULT_HOST and name.namespace == DEFAULT_NAMESPACE
    if in_library and _is_closed(name.model):
        raise InvalidRequest(f"'{name.model}' is a closed model, reached through a provider's API: "
                             "nothing of it runs on this machine")
    variants = catalog_variants(name.model) if in_library else []
    if not variants:
        raise ModelNotFound(text, "it is neither installed nor in hearth's catalog; give a GGUF "
                                  "file path or pull the model first")
    if _has_tag(text):
        wanted = name.tag
        chosen = [v for v in variants
                  if wanted in (v.tag.tag, v.base, v.tag.quantization.lower(), *v.aliases)]
        if not chosen:
            known = ", ".join(dict.fromkeys(v.base for v in variants))
            quants = ", ".join(dict.fromkeys(v.tag.quantization for v in variants))
            raise ModelNotFound(text, f"the catalog has {name.model}:{{{known}}} in {quants}")
        variants = chosen
    open_tags = [variant.tag for variant in variants]
    fits = [(tag, fit_catalog_tag(tag, ctx, n_parallel=n_parallel, memory=memory)) for tag in open_tags]
    best = recommend(fits)
    return FitAnswer(
        "catalog", text, [report for _tag, report in fits],
        tags=[tag.tag for tag, _report in fits],
        recommended=f"{best.model}:{best.tag}" if best else None,
        memory=memory,
    )


def _is_closed(model: str) -> bool:
    from hearth.catalog.entries import load_catalog

    entry = load_catalog().get(model)
    return isinstance(entry, dict) and entry.get("weights") == "closed"


def _has_tag(text: str) -> bool:
    return ":" in text.rsplit("/", 1)[-1]
