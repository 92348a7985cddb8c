"""Will a model fit this machine? One memory estimate (weights + KV cache + overhead) held
against the free RAM and GPU memory, with a verdict: fits, tight or too large; and how fast it
will decode and read prompts here, predicted from this machine's measured figures (speed.py)."""

from hearth.fit.catalog_fit import (
    catalog_tags,
    fit_catalog_model,
    pull_warning,
    recommend_tag,
)
from hearth.fit.estimate import MemoryEstimate, estimate_memory
from hearth.fit.machine import MachineMemory, read_machine_memory
from hearth.fit.report import (
    FitReport,
    fit_catalog_tag,
    fit_gguf,
    fit_gguf_file,
    fit_size,
    fit_stored_model,
)
from hearth.fit.shape import ModelShape, shape_from_gguf
from hearth.fit.speed import MachineSpeed, SpeedPrediction, predict_speed
from hearth.fit.verdict import FITS, FITS_FRACTION, TIGHT, TIGHT_FRACTION, TOO_LARGE, verdict_for

__all__ = [
    "FITS",
    "FITS_FRACTION",
    "TIGHT",
    "TIGHT_FRACTION",
    "TOO_LARGE",
    "FitReport",
    "MachineMemory",
    "MachineSpeed",
    "MemoryEstimate",
    "ModelShape",
    "SpeedPrediction",
    "catalog_tags",
    "estimate_memory",
    "fit_catalog_model",
    "fit_catalog_tag",
    "fit_gguf",
    "fit_gguf_file",
    "fit_size",
    "fit_stored_model",
    "predict_speed",
    "pull_warning",
    "read_machine_memory",
    "recommend_tag",
    "shape_from_gguf",
    "verdict_for",
]
