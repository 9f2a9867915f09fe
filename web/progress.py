"""The one place nst-web reads the engine's Progress record: what the page is told after each iteration."""

from __future__ import annotations

from typing import Any


def progress_event(p: Any) -> dict:
    """An engine Progress -> the page's progress event (numbers only; the image is encoded separately)."""
    return {
        "type": "progress",
        "stage": p.stage,
        "stages": p.stages,
        "size": list(p.size),
        "iteration": p.iteration,
        "iterations": p.iterations,
        "loss": p.loss,
        "terms": dict(p.terms),  # weighted, by the names the run's loss terms have; they sum to loss
        "evaluations": p.evaluations,
        "elapsed": p.elapsed,
    }
