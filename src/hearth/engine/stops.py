"""Stop strings over a stream of text pieces.

Text that might be the start of a stop string is held back until it is clear either way, so
a stop string is never shown even when it arrives split across several tokens.
"""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False
        self.matched: str | None = None  # the stop string that ended the text

    def feed(self, text: str) -> str:
        """Add text; return what can be shown now. After a stop matches, ``stopped`` is True."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        self._pending += text
        found = [(i, s) for s in self.stops if (i := self._pending.find(s)) >= 0]
        if found:
            cut, self.matched = min(found, key=lambda hit: hit[0])
            self.stopped = True
            out, self._pending = self._pending[:cut], ""
            return out
        hold = self._longest_partial_suffix()
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(self._pending) - hold :]
        return out

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return "" if self.stopped else out

    def _longest_partial_suffix(self) -> int:
        best = 0
        for stop in self.stops:
            for length in range(min(len(stop) - 1, len(self._pending)), best, -1):
                if self._pending.endswith(stop[:length]):
                    best = length
                    break
        return best
