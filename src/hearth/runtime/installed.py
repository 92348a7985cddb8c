"""The installed models as ``hearth list`` prints them, read straight from the store without the
wire types, so the command answers in tens of milliseconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hearth.store import ModelStore


@dataclass(frozen=True)
class InstalledModel:
    name: str
    short_id: str
    size: int
    modified_at: datetime


def installed_models() -> list[InstalledModel]:
    return [InstalledModel(m.name.short, m.short_id, m.size, m.modified_at) for m in ModelStore().list()]
