"""What a piece of user text refers to: a URL, a file on this machine, or (otherwise) a model
name. The one set of rules for every place that has to tell them apart: ``hearth pull`` and
``/api/pull``, ``hearth fit``, a Modelfile's ``FROM``."""

from __future__ import annotations

from pathlib import Path

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def written_like_path(text: str) -> bool:
    """Written the way only a path is: ``/…``, ``./…``, ``../…``, ``~…``, ``.``, ``..`` or a
    ``.gguf`` file name (model names never look like these)."""
    text = text.strip()
    return text.startswith(_PATH_PREFIXES) or text in (".", "..") or text.lower().endswith(".gguf")


def looks_like_path(text: str) -> bool:
    """A file path rather than a name: written like one, or a relative ``dir/file`` that exists
    (``library/model`` that is no file stays a name)."""
    return written_like_path(text) or ("/" in text.strip() and Path(text.strip()).is_file())


def is_local_path(text: str) -> bool:
    """A path on this machine (not a name, not a URL)."""
    return not is_url(text) and looks_like_path(text)
