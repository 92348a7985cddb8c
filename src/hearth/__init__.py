"""hearth: run open-weight LLMs on your own machine.

The Python API mirrors the CLI: ``hearth.generate("smollm2", "The sky is")`` and
``hearth.chat("smollm2", [{"role": "user", "content": "Hi"}])``. Heavy modules load on first use.
"""

from __future__ import annotations

from hearth.version import __version__

__all__ = ["__version__", "chat", "generate"]


def __getattr__(name: str):
    if name in {"generate", "chat"}:
        from hearth import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'hearth' has no attribute {name!r}")
