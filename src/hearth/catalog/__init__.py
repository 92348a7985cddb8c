"""The curated model catalog (data in ``models.toml``) and lookups into it."""

from hearth.catalog.entries import CatalogTag, catalog_entry, find_tag, iter_entries, load_catalog

__all__ = ["CatalogTag", "catalog_entry", "find_tag", "iter_entries", "load_catalog"]
