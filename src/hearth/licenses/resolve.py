"""Which license an installed model is under, and where that answer came from.

Evidence is read in this order: the license id recorded in the model's config at pull or
create time, the text of its LICENSE layers (recognised by phrases only that license's text
has), the GGUF header's ``general.license``, and the catalog entry it was pulled from. The
first known license wins; if none is known, the first id that was stated at all is returned
as it is (an unknown license, reported as unknown); with no evidence at all, None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hearth.catalog.license_terms import UNINFORMATIVE, LicenseTerms, all_licenses, lookup

if TYPE_CHECKING:
    from hearth.store import ModelStore, StoredModel


@dataclass(frozen=True)
class ResolvedLicense:
    license_id: str | None
    origin: str  # "config", "license text", "gguf", "catalog" or "" when nothing was found


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def recognise_text(text: str) -> LicenseTerms | None:
    """The license whose distinctive phrases ``text`` contains; the longest matching phrase wins."""
    flat = _flat(text)
    best: tuple[int, LicenseTerms] | None = None
    for terms in all_licenses():
        hits = [len(m) for m in terms.text_markers if _flat(m) in flat]
        if not hits:
            continue
        if not all(_flat(p) in flat for p in terms.text_requires):
            continue
        if any(_flat(p) in flat for p in terms.text_excludes):
            continue
        if best is None or max(hits) > best[0]:
            best = (max(hits), terms)
    return best[1] if best else None


def _evidence(store: ModelStore, model: StoredModel) -> Iterator[tuple[str, str]]:
    """(stated license, origin) pairs, cheapest first; later ones are only read if needed."""
    config = model.config
    recorded = config.get("license_id")
    if isinstance(recorded, str):
        yield recorded, "config"
    for text in model.licenses:
        terms = recognise_text(text)
        if terms is not None:
            yield terms.id, "license text"
    try:
        from hearth.gguf import read_gguf

        stated = read_gguf(model.model_path).license
    except Exception:  # noqa: BLE001 - a damaged or missing blob is not a license answer
        stated = None
    if stated:
        yield stated, "gguf"
    from_catalog = _catalog_license(str(config.get("source", "")))
    if from_catalog:
        yield from_catalog, "catalog"


def _catalog_license(source: str) -> str | None:
    # By where the weights came from, not by name: a model the user created under a catalog
    # name is not thereby under that entry's license.
    from hearth.catalog.entries import license_for_source

    return license_for_source(source) if source else None


def resolve_license(store: ModelStore, model: StoredModel) -> ResolvedLicense:
    first_stated: ResolvedLicense | None = None
    for stated, origin in _evidence(store, model):
        if stated.strip().lower() in UNINFORMATIVE:
            continue
        terms = lookup(stated)
        if terms is not None:
            return ResolvedLicense(terms.id, origin)
        if first_stated is None:
            first_stated = ResolvedLicense(stated.strip(), origin)
    return first_stated or ResolvedLicense(None, "")


def license_id_of(store: ModelStore, model: StoredModel) -> str | None:
    return resolve_license(store, model).license_id
