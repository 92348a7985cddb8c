"""The verdict: does an estimate fit the memory this machine has free? The thresholds live
here and nowhere else."""

from __future__ import annotations

# "fits" leaves 30% of the free memory unused: MemAvailable moves as other programs run, the
# estimate is a model's size while loaded, not the peak of a long prompt in every slot, and a
# machine that is made to page a model's weights in and out generates at disk speed.
FITS_FRACTION = 0.70
# Up to all of it is "tight": it loads, but other programs may be pushed into swap and a
# browser tab opened later may be enough to make generation crawl or the load fail.
TIGHT_FRACTION = 1.00

FITS, TIGHT, TOO_LARGE, UNKNOWN = "fits", "tight", "too large", "unknown"


def verdict_for(total_bytes: int, budget_bytes: int) -> str:
    """``unknown`` only when the machine's free memory could not be read at all."""
    if budget_bytes <= 0:
        return UNKNOWN
    if total_bytes <= FITS_FRACTION * budget_bytes:
        return FITS
    if total_bytes <= TIGHT_FRACTION * budget_bytes:
        return TIGHT
    return TOO_LARGE
