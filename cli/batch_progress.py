"""nst-batch's view while it runs: one rich bar over the jobs (done / failed / running, an ETA from the finished
jobs' pace), and with --verbose one line per finished job. Reads a BatchRun; writes nothing but the terminal."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.text import Text


class Counts:
    """Live counts for the bar (read by its refresh thread) and the summary."""

    def __init__(self, run: Any):
        self.run, self.done, self.failed, self.skipped = run, 0, 0, 0
        self.started = time.perf_counter()
        self.first_error: str | None = None

    def eta(self) -> str:
        finished = self.done + self.failed
        left = len(self.run.todo) - finished
        if not finished or left <= 0:
            return "-:--:--" if left > 0 else "0:00:00"
        seconds = int((time.perf_counter() - self.started) / finished * left)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class CountsColumn(ProgressColumn):
    def __init__(self, counts: Counts):
        super().__init__()
        self.counts = counts

    def render(self, task: Any) -> Text:
        c = self.counts
        return Text(f"{c.done + c.skipped} done · {c.failed} failed · {c.run.running} running · ETA {c.eta()}")


def _bar(counts: Counts, quiet: bool) -> RichProgress:
    return RichProgress(
        TextColumn("[bold]jobs"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        CountsColumn(counts),
        console=Console(stderr=False),
        disable=quiet,
        transient=False,
    )


def _line(result: Any) -> str:
    r = result.record
    if result.status == "done":
        return f"done    {result.job.name}  {r.get('seconds', 0):.1f} s  J={r.get('loss') or float('nan'):.5g}"
    if result.status == "skipped":
        return f"skipped {result.job.name} (done before with the same options)"
    return f"failed  {result.job.name}: {result.error}"


def drive(run: Any, counts: Counts, quiet: bool, verbose: bool) -> None:
    with _bar(counts, quiet) as bar:
        task = bar.add_task("jobs", total=run.total)
        for result in run:
            if result.status == "failed":
                counts.failed += 1
                counts.first_error = counts.first_error or f"{result.job.name}: {result.error}"
            else:
                setattr(counts, result.status, getattr(counts, result.status) + 1)
            bar.advance(task)
            if verbose and not quiet:
                bar.console.print(_line(result), markup=False, highlight=False, soft_wrap=True)
