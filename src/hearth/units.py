"""Sizes as people read them (decimal units, as disks and downloads are sold): the one place
every message, table and report formats a byte count."""

from __future__ import annotations


def human_size(size: float) -> str:
    """``512 B``, ``98.4 MB``, ``4.7 GB``: one decimal above bytes, a trailing ``.0`` dropped."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1000
    return f"{size} B"
