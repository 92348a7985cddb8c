"""The curated model catalog (data in ``models.toml``) and lookups into it."""

from hearth.catalog.entries import CatalogTag, find_tag, load_catalog

__all__ = ["CatalogTag", "find_tag", "load_catalog"]
