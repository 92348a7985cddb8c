"""The check the runtime makes before it loads or uses an installed model (run and serve)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hearth.licenses.policy import check_policy, current_policy
from hearth.licenses.resolve import license_id_of

if TYPE_CHECKING:
    from hearth.store import ModelStore, StoredModel

_license_ids: dict[str, str | None] = {}
_lock = threading.Lock()


def cached_license_id(store: ModelStore, model: StoredModel) -> str | None:
    """The model's license id, worked out once per manifest (a manifest never changes under
    its digest), so a check on every request costs a dictionary lookup."""
    key = model.digest
    with _lock:
        if key in _license_ids:
            return _license_ids[key]
    found = license_id_of(store, model)
    with _lock:
        _license_ids[key] = found
    return found


def enforce_policy(store: ModelStore, model: StoredModel, *, action: str) -> None:
    """LicenseBlocked when the license policy forbids ``action`` for ``model``; nothing, at no
    cost, when HEARTH_LICENSE_POLICY is not set."""
    if current_policy() is None:
        return
    check_policy(cached_license_id(store, model), action=action, model=model.name.short)
