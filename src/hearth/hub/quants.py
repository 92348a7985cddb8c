"""Quantization names in GGUF file names: find them, order them, pick the closest one.

Repositories name their files like ``Model-7B-Instruct-Q4_K_M.gguf`` or ``model.q8_0.gguf``;
the quantization is the part that looks like ``Q4_K_M``, ``IQ3_XXS``, ``F16``. Split files
(``...-00001-of-00003.gguf``) are recognised so a pull can refuse them clearly.
"""

from __future__ import annotations

import re

from hearth.quantization import QUANT_ORDER

_RANK = {name: index for index, name in enumerate(QUANT_ORDER)}

_QUANT_RE = re.compile(r"(?<![A-Za-z0-9])(I?Q\d+(?:_[A-Za-z0-9]{1,3})*|BF16|F16|F32|FP16)(?![A-Za-z0-9])",
                       re.IGNORECASE)
_SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def quant_of(filename: str) -> str | None:
    """The quantization named in a file name, upper-cased (``Q4_K_M``), or None."""
    stem = filename.rsplit("/", 1)[-1]
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    stem = _SPLIT_RE.sub("", stem + ".gguf") if _SPLIT_RE.search(stem + ".gguf") else stem
    found = _QUANT_RE.findall(stem)
    if not found:
        return None
    quant = found[-1].upper()
    return "F16" if quant == "FP16" else quant


def split_parts(filename: str) -> int | None:
    """How many files a split GGUF has (``-00001-of-00003`` -> 3), None for a whole file."""
    match = _SPLIT_RE.search(filename)
    return int(match.group(2)) if match else None


def closest(wanted: str, available: list[str]) -> str | None:
    """The available quantization nearest to ``wanted`` in QUANT_ORDER (ties: the better one)."""
    if not available:
        return None
    wanted = wanted.upper()
    if wanted in available:
        return wanted
    known = [q for q in available if q in _RANK]
    if wanted not in _RANK or not known:
        return sorted(available)[0]
    target = _RANK[wanted]
    return min(known, key=lambda q: (abs(_RANK[q] - target), _RANK[q]))


def sort_quants(quants: list[str]) -> list[str]:
    return sorted(set(quants), key=lambda q: (_RANK.get(q, len(_RANK)), q))


def strip_quant(stem: str) -> str:
    """A file stem without its quantization and split suffix (``Foo-Q4_K_M`` -> ``Foo``)."""
    stem = _SPLIT_RE.sub("", stem + ".gguf").removesuffix(".gguf") if _SPLIT_RE.search(stem + ".gguf") else stem
    stripped = _QUANT_RE.sub("", stem)
    return re.sub(r"[-._]{2,}", "-", stripped).strip("-._") or stem
