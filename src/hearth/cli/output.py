"""Small formatting pieces shared by the commands: sizes, ages, columns, progress."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hearth.api.types import ProgressResponse


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1000
    return f"{size} B"


def human_age(moment: datetime) -> str:
    seconds = (datetime.now(timezone.utc) - moment).total_seconds()
    for limit, unit in ((60, "second"), (3600, "minute"), (86400, "hour"), (86400 * 30, "day")):
        if seconds < limit:
            divisor = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[unit]
            count = max(0, int(seconds // divisor))
            if unit == "second" and count < 5:
                return "just now"
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return moment.strftime("%Y-%m-%d")


def print_columns(rows: list[list[str]], file: Any = None) -> None:
    file = file or sys.stdout
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("    ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=file)


class ProgressPrinter:
    """Draws progress events as rich bars on stderr (plain lines when not a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.last_status = ""

    def __enter__(self) -> ProgressPrinter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: ProgressResponse) -> None:
        if event.total:
            task = self.tasks.get(event.status)
            if task is None:
                task = self.progress.add_task(event.status, total=event.total)
                self.tasks[event.status] = task
            self.progress.update(task, completed=event.completed or 0, total=event.total)
        elif event.status != self.last_status:
            self.progress.console.print(event.status)
        self.last_status = event.status
