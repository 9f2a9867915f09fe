"""One rich progress bar for the engine's Progress callbacks (nst-run, and the per-cell views of nst-inspect)."""

from __future__ import annotations

import math
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


def terms_text(terms: dict[str, float], sep: str = ", ") -> str:
    """The weighted loss terms by name, e.g. 'content 3.1e+04, style 9.2e+04'; zero terms (tv off) left out."""
    return sep.join(f"{name} {value:.3g}" for name, value in terms.items() if value)


class ProgressBar:
    """Context manager; update(p) with an engine Progress. A multi-stage run shows `stage 2/4 · 362 px`."""

    def __init__(self, label: str):
        self.bar = RichProgress(
            TextColumn(f"[bold]{label}"),
            TextColumn("{task.fields[stage]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("J {task.fields[loss]:.4g}  {task.fields[terms]}"),
            TextColumn("{task.fields[rate]:.2f} it/s"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.bar.add_task("run", total=None, loss=math.nan, terms="", rate=0.0, stage="")

    def __enter__(self) -> ProgressBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.stop()

    def update(self, p: Any) -> None:
        stage = f"stage {p.stage}/{p.stages} · {max(p.size)} px" if p.stages > 1 else ""
        self.bar.update(
            self.task,
            total=p.iterations,
            completed=p.iteration,
            loss=p.loss,
            terms=terms_text(p.terms, "  "),
            rate=p.iteration / max(p.elapsed, 1e-9),
            stage=stage,
        )
