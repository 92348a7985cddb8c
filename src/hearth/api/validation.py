"""What a pydantic validation error says, in the terms hearth's messages use: where (the field
path, ``options.temperature``) and what (pydantic's own sentence). Each caller words its
``InvalidRequest`` for its context; this is the one place that reads the error."""

from __future__ import annotations

from typing import Any


def first_problem(exc: Any) -> tuple[str, str]:
    """(``where``, ``what``) of the first error in a ``pydantic.ValidationError``."""
    errors = exc.errors()
    if not errors:
        return "", "invalid value"
    error = errors[0]
    return ".".join(str(part) for part in error.get("loc", ())), str(error.get("msg", "invalid value"))
