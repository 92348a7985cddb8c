"""Sizes and speeds as people read and write them (decimal units, as disks and downloads are
sold): the one place that formats a byte count (``human_size``) and parses a speed cap
(``parse_rate``: ``10M``, ``500K``, ``1.5MB/s``)."""

from __future__ import annotations

import re

from hearth.errors import InvalidRequest


def human_size(size: float) -> str:
    """``512 B``, ``98.4 MB``, ``4.7 GB``: one decimal above bytes, a trailing ``.0`` dropped."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1000
    return f"{size} B"


_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b)?(/s)?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_rate(value: str | float | int | None) -> float | None:
    """Bytes per second. Units are decimal (``10M`` = 10,000,000 B/s), ``Ki``/``Mi`` binary;
    a bare number is bytes per second. None, ``""`` and ``0`` mean no cap."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRequest(f"invalid speed {value!r}")
    if isinstance(value, (int, float)):
        rate = float(value)
    else:
        match = _RATE_RE.match(value)
        if not match:
            raise InvalidRequest(f"invalid speed '{value}': use bytes per second like 10M, 500K or 2000000")
        number, unit, binary = float(match.group(1)), match.group(2).lower(), match.group(3)
        rate = number * (1024 if binary else 1000) ** _POWERS[unit]
    if rate < 0:
        raise InvalidRequest(f"invalid speed {value!r}: it must be positive")
    return rate or None
