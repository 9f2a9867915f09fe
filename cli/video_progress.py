"""nst-video's bar: frames done / total, seconds per frame and an ETA from the frames stylized in this run (resumed
frames are counted as done but not timed), and the current frame's iteration."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.text import Text


class FramePace(ProgressColumn):
    """`2.3 s/frame · ETA 0:01:10 · frame 5: iteration 12/20`, from the bar's own counts."""

    def __init__(self, pace: VideoBar):
        super().__init__()
        self.pace = pace

    def render(self, task: Any) -> Text:
        return Text(self.pace.text(task.total))


class VideoBar:
    """Context manager. resumed(n) after frames taken from an earlier run; iteration(frame, p) with the engine's
    Progress; frame_done() after each stylized frame."""

    def __init__(self, total: int | None, quiet: bool = False):
        self.done, self.timed, self.seconds = 0, 0, 0.0
        self.current = ""
        self.started = time.perf_counter()
        self.bar = RichProgress(
            TextColumn("[bold]frames"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            FramePace(self),
            disable=quiet,
            transient=False,
        )
        self.task = self.bar.add_task("frames", total=total)

    def __enter__(self) -> VideoBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.stop()

    def per_frame(self) -> float | None:
        return self.seconds / self.timed if self.timed else None

    def text(self, total: float | None) -> str:
        per = self.per_frame()
        pace = "-- s/frame" if per is None else f"{per:.1f} s/frame"
        if per is None or total is None:
            eta = "ETA -:--:--"
        else:
            s = int(per * max(0, total - self.done))
            eta = f"ETA {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
        return f"{pace} · {eta}" + (f" · {self.current}" if self.current else "")

    def resumed(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(self.task, completed=self.done)

    def iteration(self, frame: int, p: Any) -> None:
        stage = f" stage {p.stage}/{p.stages}" if p.stages > 1 else ""
        self.current = f"frame {frame + 1}:{stage} iteration {p.iteration}/{p.iterations}"
        self.bar.refresh()

    def frame_done(self, seconds: float) -> None:
        self.done += 1
        self.timed += 1
        self.seconds += seconds
        self.current = ""
        self.bar.update(self.task, completed=self.done)
