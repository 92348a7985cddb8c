"""The license knowledge base (``catalog/licenses.toml``) and lookups into it.

A license id is matched by its own id, its name or one of its aliases, ignoring case, spaces
and punctuation (dots excepted, so "llama3.1" and "Llama 3.1" meet but "llama3" stays apart).
Anything that matches nothing is unknown: never guessed from a partial match.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

COMMERCIAL_VALUES = ("yes", "no", "conditional")

# Values that say "no license information" rather than naming a license.
UNINFORMATIVE = frozenset({"", "other", "unknown", "none", "noassertion", "n/a", "na", "custom"})


@dataclass(frozen=True)
class LicenseTerms:
    id: str
    name: str
    aliases: tuple[str, ...]
    osi_approved: bool
    commercial_use: str
    attribution: str
    redistribution: str
    modification: str
    restrictions: tuple[str, ...]
    url: str
    text_markers: tuple[str, ...] = ()
    text_requires: tuple[str, ...] = ()
    text_excludes: tuple[str, ...] = ()

    @property
    def needs_acceptance(self) -> bool:
        # OSI licenses carry no use restrictions a user must agree to before downloading.
        return not self.osi_approved


def alias_key(text: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", text.lower())


def _terms(data: dict[str, Any]) -> LicenseTerms:
    def strings(key: str) -> tuple[str, ...]:
        return tuple(str(item) for item in data.get(key, []))

    return LicenseTerms(
        id=str(data["id"]),
        name=str(data["name"]),
        aliases=strings("aliases"),
        osi_approved=bool(data.get("osi_approved", False)),
        commercial_use=str(data.get("commercial_use", "")),
        attribution=str(data.get("attribution", "")),
        redistribution=str(data.get("redistribution", "")),
        modification=str(data.get("modification", "")),
        restrictions=strings("restrictions"),
        url=str(data.get("url", "")),
        text_markers=strings("text_markers"),
        text_requires=strings("text_requires"),
        text_excludes=strings("text_excludes"),
    )


@functools.lru_cache(maxsize=1)
def all_licenses() -> tuple[LicenseTerms, ...]:
    text = resources.files("hearth.catalog").joinpath("licenses.toml").read_text("utf-8")
    return tuple(_terms(item) for item in tomllib.loads(text).get("license", []))


@functools.lru_cache(maxsize=1)
def _by_alias() -> dict[str, LicenseTerms]:
    index: dict[str, LicenseTerms] = {}
    for terms in all_licenses():
        for spelling in (terms.id, terms.name, *terms.aliases):
            index.setdefault(alias_key(spelling), terms)
    return index


def lookup(license_id: str | None) -> LicenseTerms | None:
    """The known license ``license_id`` names (any spelling of it), else None."""
    if not isinstance(license_id, str) or license_id.strip().lower() in UNINFORMATIVE:
        return None
    return _by_alias().get(alias_key(license_id))


def license_summary(license_id: str | None) -> dict[str, Any]:
    """A JSON-ready description; an unknown id is reported as unknown, with nothing guessed."""
    terms = lookup(license_id)
    if terms is None:
        shown = license_id.strip() if isinstance(license_id, str) and license_id.strip() else None
        return {
            "id": shown, "known": False, "name": shown or "unknown", "osi_approved": False,
            "commercial_use": "unknown", "attribution": "", "redistribution": "", "modification": "",
            "restrictions": [], "url": "", "needs_acceptance": True,
        }
    return {
        "id": terms.id, "known": True, "name": terms.name, "osi_approved": terms.osi_approved,
        "commercial_use": terms.commercial_use, "attribution": terms.attribution,
        "redistribution": terms.redistribution, "modification": terms.modification,
        "restrictions": list(terms.restrictions), "url": terms.url,
        "needs_acceptance": terms.needs_acceptance,
    }


def badge(license_id: str | None) -> str:
    """One line: ``Apache-2.0 · OSI · commercial: yes``."""
    terms = lookup(license_id)
    if terms is None:
        shown = license_id.strip() if isinstance(license_id, str) and license_id.strip() else "no license stated"
        return f"{shown} · unknown license · commercial: unknown"
    osi = "OSI" if terms.osi_approved else "not OSI"
    return f"{terms.id} · {osi} · commercial: {terms.commercial_use}"
