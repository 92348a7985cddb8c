"""Finding markers in text that arrives in pieces: a marker split across two pieces must not
leak out as text, so the end of a piece that could begin one waits for the next."""

from __future__ import annotations

from collections.abc import Iterable


def held_suffix(text: str, markers: Iterable[str]) -> int:
    """How many characters at the end of ``text`` could be the start of one of ``markers``."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:size]):
                longest = size
                break
    return longest


def first_marker(text: str, markers: Iterable[str], start: int = 0) -> tuple[int, str] | None:
    """The earliest marker in ``text`` from ``start`` (the longest one where two begin at once)."""
    best: tuple[int, str] | None = None
    for marker in markers:
        at = text.find(marker, start)
        if at >= 0 and (best is None or at < best[0]
                        or (at == best[0] and len(marker) > len(best[1]))):
            best = (at, marker)
    return best


def search_from(searched: int, longest_marker: int) -> int:
    """Where to search again in a grown buffer: a marker may straddle the old end."""
    return max(0, searched - longest_marker + 1)
