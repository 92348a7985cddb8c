"""``ps``: the loaded models as Ollama's ``/api/ps`` shows them, one line per model however many
instances (generation, embedding) it has loaded."""

from __future__ import annotations

from datetime import datetime, timezone

from hearth.api.types import ModelDetails, ProcessResponse, RunningModel
from hearth.errors import HearthError
from hearth.runtime.loaded import FOREVER, LoadedModel
from hearth.runtime.model_info import model_details
from hearth.scheduler import Scheduler
from hearth.store import ModelStore, StoredModel


def running_models(store: ModelStore, scheduler: Scheduler) -> ProcessResponse:
    running: list[RunningModel] = []
    by_digest = {m.model_layer.digest: m for m in _stored_models(store)}
    for slot in scheduler.slots():
        loaded: LoadedModel = slot.loaded
        stored = by_digest.get(loaded.digest)
        expires = None
        if slot.expires_at != float("inf"):
            expires = datetime.fromtimestamp(slot.expires_at, tz=timezone.utc)
        elif slot.in_use == 0:
            expires = FOREVER
        entry = RunningModel(
            name=slot.name, model=slot.name, size=slot.size,
            digest=(stored.digest[7:] if stored else loaded.digest[7:]),
            details=model_details(stored) if stored else ModelDetails(),
            expires_at=expires, context_length=loaded.engine.context_length,
            num_parallel=loaded.n_parallel, in_use=slot.in_use, runner_pid=loaded.engine.pid,
            runner_pids=[loaded.engine.pid] if loaded.engine.pid else None,
            flash_attention=loaded.settings.flash_attention, kv_cache_type=loaded.settings.kv_cache_type,
        )
        running.append(_merge_instances(running, entry))
    return ProcessResponse(models=list({m.name: m for m in running}.values()))


def _stored_models(store: ModelStore) -> list[StoredModel]:
    try:
        return store.list()
    except HearthError:
        return []


def _merge_instances(seen: list[RunningModel], entry: RunningModel) -> RunningModel:
    """``entry`` combined with an earlier instance of the same model: memory and requests add
    up, the later expiry counts, and the generating instance's context and runner are shown."""
    earlier = next((m for m in reversed(seen) if m.name == entry.name), None)
    if earlier is None:
        return entry
    main, other = (entry, earlier) if entry.num_parallel > earlier.num_parallel else (earlier, entry)
    expiries = [m.expires_at for m in (earlier, entry) if m.expires_at is not None]
    return main.model_copy(update={
        "size": earlier.size + entry.size, "in_use": earlier.in_use + entry.in_use,
        "expires_at": max(expiries) if expiries else None,
        "runner_pid": main.runner_pid or other.runner_pid,
        "runner_pids": (earlier.runner_pids or []) + (entry.runner_pids or []) or None,
    })
