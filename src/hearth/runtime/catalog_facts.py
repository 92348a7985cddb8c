"""The catalog as users see it: what a search matches (``catalog.search``) plus, for closed
models, the provider routes that reach them (``providers.closed_models``). One place for the CLI
(``hearth search``) and the server's ``/api/hearth/catalog``."""

from __future__ import annotations

from typing import Any


def search_catalog(query: str) -> list[dict[str, Any]]:
    from hearth.catalog import catalog_entry
    from hearth.catalog.search import match_catalog
    from hearth.providers.closed_models import provider_hint

    found = match_catalog(query)
    for item in found:
        if item["weights"] == "closed":
            entry = catalog_entry(item["model"])
            item["provider_hint"] = provider_hint(entry) if entry else ""
    return found
