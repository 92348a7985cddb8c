"""Small formatting pieces shared by the commands: sizes, ages, columns, progress."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from hearth.units import human_size

if TYPE_CHECKING:
    from hearth.api.types import ProgressResponse


def stdout_console(**options: Any) -> Any:
    """A rich console on stdout that treats a reader who went away (`hearth search x | head`)
    as main() does: a quiet end with status 0, where rich itself would exit with 1."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(**options)


def dimmed(text: str, file: Any = None) -> str:
    """Faint text on a terminal (a side remark beside the answer); plain text otherwise."""
    stream = file or sys.stderr
    return f"\033[2m{text}\033[0m" if getattr(stream, "isatty", lambda: False)() else text


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
        # Without a terminal there are no bars: a plain line per transfer every few seconds.
        self.plain = not self.console.is_terminal
        self.lines = PlainTransferLines(self.console.file) if self.plain else None

    def __enter__(self) -> ProgressPrinter:
        if not self.plain:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.plain:
            self.progress.stop()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing while a question is asked on the terminal."""
        if self.plain:
            yield
            return
        self.progress.stop()
        try:
            yield
        finally:
            self.progress.start()

    def __call__(self, event: ProgressResponse) -> None:
        if event.total and self.lines is not None:
            self.lines.show(event.status, event.completed or 0, event.total)
        elif event.total:
            task = self.tasks.get(event.status)
            if task is None:
                # Starting at what is already there (a resumed pull) keeps the speed honest.
                task = self.progress.add_task(event.status, total=event.total,
                                              completed=event.completed or 0)
                self.tasks[event.status] = task
            self.progress.update(task, completed=event.completed or 0, total=event.total)
        elif event.status != self.last_status:
            self.progress.console.print(event.status)
        self.last_status = event.status


class PlainTransferLines:
    """``pulling 1a2b3c: 45.0 MB / 98.0 MB (46%), 12.5 MB/s, 4s left`` every few seconds."""

    INTERVAL = 2.0

    def __init__(self, file: Any) -> None:
        self.file = file
        self.started: dict[str, tuple[float, int]] = {}
        self.last_shown: dict[str, float] = {}

    def show(self, status: str, completed: int, total: int) -> None:
        import time

        now = time.monotonic()
        start_time, start_bytes = self.started.setdefault(status, (now, completed))
        done = completed >= total
        if not done and now - self.last_shown.get(status, 0.0) < self.INTERVAL:
            return
        if done and self.last_shown.get(status) == -1.0:
            return
        self.last_shown[status] = -1.0 if done else now
        elapsed = now - start_time
        speed = (completed - start_bytes) / elapsed if elapsed > 0 else 0.0
        parts = [f"{status}: {human_size(completed)} / {human_size(total)} ({completed * 100 // total}%)"]
        if speed > 0:
            parts.append(f"{human_size(speed)}/s")
            if not done:
                parts.append(f"{human_duration((total - completed) / speed)} left")
        print(", ".join(parts), file=self.file, flush=True)


def human_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
