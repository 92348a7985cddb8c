"""Stored responses of the Responses API: ``HEARTH_HOME/responses/<id>.json``.

A response saved with ``store: true`` (OpenAI's default) is kept here so that a later request
naming it as ``previous_response_id`` continues the conversation, across server restarts, and
``GET`` / ``DELETE /v1/responses/{id}`` find it. Each record is one JSON file holding the
response object and the whole conversation up to and including it (``history``: input and
output items), so continuing needs one read and deleting an earlier response breaks nothing
later. Files are written atomically (temp file, fsync, rename; ``blobs.atomic_write_bytes``).
The log is bounded by count (``HEARTH_RESPONSES_KEEP``): after a save, the oldest records
beyond it are removed. An id is checked against ``ID_RE`` before it becomes part of a path, so
no id reaches outside the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from hearth import config
from hearth.errors import HearthError, StoreError
from hearth.store.blobs import TEMP_PREFIX, atomic_write_bytes

ID_RE = re.compile(r"^resp_[A-Za-z0-9]{1,100}$")
SUFFIX = ".json"


class ResponseNotFound(HearthError):
    status_code = 404
    code = "not_found"

    def __init__(self, response_id: str) -> None:
        super().__init__(f"Response with id '{response_id}' not found.")
        self.response_id = response_id


def valid_id(response_id: str) -> bool:
    return isinstance(response_id, str) and ID_RE.fullmatch(response_id) is not None


class ResponseLog:
    def __init__(self, root: Path | None = None, keep: int | None = None) -> None:
        self.root = root if root is not None else config.home() / "responses"
        self._keep = keep

    @property
    def keep(self) -> int:
        # Read at call time, as every setting is.
        return self._keep if self._keep is not None else config.responses_keep()

    def _path(self, response_id: str) -> Path:
        if not valid_id(response_id):
            raise ResponseNotFound(response_id)
        return self.root / f"{response_id}{SUFFIX}"

    def save(self, response_id: str, record: dict[str, Any]) -> None:
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        atomic_write_bytes(self._path(response_id), data)
        self._drop_oldest()

    def load(self, response_id: str) -> dict[str, Any]:
        """The record; ``ResponseNotFound`` for an unknown (or impossible) id."""
        path = self._path(response_id)
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            raise ResponseNotFound(response_id) from None
        except ValueError as exc:
            # Written atomically, so only a hand edit or a broken disk gets here.
            raise StoreError(f"stored response {path} is not valid JSON: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def delete(self, response_id: str) -> None:
        path = self._path(response_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ResponseNotFound(response_id) from None

    def ids(self) -> list[str]:
        """Stored ids, oldest first."""
        return [path.name[: -len(SUFFIX)] for _, path in self._by_age()]

    def _by_age(self) -> list[tuple[int, Path]]:
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                if entry.name.startswith(TEMP_PREFIX) or not entry.name.endswith(SUFFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    found.append((entry.stat().st_mtime_ns, Path(entry.path)))
        # Same mtime (a coarse clock): the name breaks the tie, so the order is stable.
        return sorted(found, key=lambda pair: (pair[0], pair[1].name))

    def _drop_oldest(self) -> None:
        records = self._by_age()
        for _, path in records[: max(0, len(records) - self.keep)]:
            # Another save may be pruning at the same time.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
