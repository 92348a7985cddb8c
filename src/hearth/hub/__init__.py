"""Where models come from. Each source streams into the store's atomic writer, verifies the
sha256 it was promised and reports progress events."""

from hearth.hub.pull import pull_model

__all__ = ["pull_model"]
