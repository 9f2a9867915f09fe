"""The alpha/beta trade-off as a grid: one stylize() run per (content weight, style weight) cell, all sharing one
target cache so the style images' Grams are computed once for the whole grid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..engine.model import Model
from ..engine.stylize import stylize
from .grid import Cell, Figure

# beta = these x the model's recommended beta (its manifest's): from mostly content to mostly style
DEFAULT_STYLE_FACTORS = (0.01, 0.1, 1.0, 10.0)
DEFAULT_SIZE = 256  # working long side of every cell
DEFAULT_ITERATIONS = 100
DEFAULT_CELL = 200  # px per picture in the grid


@dataclass
class SweepCell:
    content_weight: float  # alpha
    style_weight: float  # beta
    image: np.ndarray
    loss: float
    terms: dict[str, float]
    iterations: int
    seconds: float


Callback = Callable[[str, int, int], Callable[[Any], None] | None]  # (label, index, count) -> per-iteration callback


def cell_label(alpha: float, beta: float) -> str:
    return f"alpha {alpha:g}, beta {beta:g}"


def sweep(
    model: Model,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    content_weights: Sequence[float],
    style_weights: Sequence[float],
    *,
    callback: Callback | None = None,
    **options: Any,
) -> list[list[SweepCell]]:
    """Rows: content weights (alpha); columns: style weights (beta). options: further StylizeOptions fields (size,
    iterations, init, seed, layers, ...), the same for every cell. callback(label, i, n) may return a per-iteration
    callback for cell i of n (a progress bar)."""
    cache: dict = {}
    styles = list(styles)  # one list of the same arrays for every cell: the cache keys on them
    n = len(content_weights) * len(style_weights)
    grid: list[list[SweepCell]] = []
    for a in content_weights:
        row: list[SweepCell] = []
        for b in style_weights:
            each = callback(cell_label(a, b), len(grid) * len(style_weights) + len(row) + 1, n) if callback else None
            r = stylize(
                model, content, styles, content_weight=a, style_weight=b, callback=each, target_cache=cache, **options
            )
            if r.interrupted:  # Ctrl-C inside the optimisation: stop the whole grid, not just this cell
                raise KeyboardInterrupt
            row.append(SweepCell(a, b, r.image, r.loss, dict(r.terms), r.iterations, r.seconds))
        grid.append(row)
    return grid


def sweep_figure(grid: Sequence[Sequence[SweepCell]], content: np.ndarray, styles: Sequence[np.ndarray]) -> Figure:
    """Columns beta (style weight), rows alpha (content weight), each caption alpha/beta; a first column shows the
    content and the style(s) (with more inputs than rows, one more row holds the rest)."""
    inputs: list[Cell | None] = [Cell(content, "content")]
    inputs += [Cell(s, f"style {i + 1}" if len(styles) > 1 else "style") for i, s in enumerate(styles)]
    rows: list[list[Cell | None]] = []
    for i, row in enumerate(grid):
        cells: list[Cell | None] = [inputs[i] if i < len(inputs) else None]
        for c in row:
            ratio = f"alpha/beta = {c.content_weight / c.style_weight:.3g}" if c.style_weight else "beta = 0"
            cells.append(Cell(c.image, ratio))
        rows.append(cells)
    rows += [[extra] for extra in inputs[len(grid) :]]
    iters = grid[0][0].iterations if grid and grid[0] else 0
    return Figure(
        rows,
        f"Content vs style weight: {iters} L-BFGS iterations per cell",
        [f"alpha = {row[0].content_weight:g}" for row in grid] + [""] * (len(rows) - len(grid)),
        ["", *(f"beta = {c.style_weight:g}" for c in grid[0])] if grid else [],
    )


def render_sweep(
    grid: Sequence[Sequence[SweepCell]], content: np.ndarray, styles: Sequence[np.ndarray], cell: int = DEFAULT_CELL
) -> Image.Image:
    h, w = content.shape[:2]
    return sweep_figure(grid, content, styles).draw((cell, max(1, round(cell * min(h / w, 1.0)))))
