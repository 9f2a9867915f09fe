"""Progress for nst-inspect: a counting bar (images searched, patches drawn) and one engine ProgressBar per run of a
view (a reconstruction, a sweep cell), each started when its run starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from .progress import ProgressBar


class CountBar:
    """Context manager; update(done, total). Quiet: does nothing."""

    def __init__(self, label: str, quiet: bool = False):
        self.bar = (
            None
            if quiet
            else RichProgress(
                TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False
            )
        )
        self.task = self.bar.add_task(label, total=None) if self.bar is not None else None

    def __enter__(self) -> CountBar:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, done: int, total: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done, total=total)


class RunBars:
    """Pass as a view's callback: each call (label, i, n) closes the previous run's bar and returns the next one's
    update function. Use as a context manager so the last bar is closed too."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar: ProgressBar | None = None

    def __call__(self, label: str, i: int, n: int) -> Callable[[Any], None] | None:
        self.close()
        if self.quiet:
            return None
        self.bar = ProgressBar(f"{i}/{n} {label}").__enter__()
        return self.bar.update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __enter__(self) -> RunBars:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
