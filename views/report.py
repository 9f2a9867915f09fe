"""nst-run --report: one picture of a run, drawn with Pillow alone (so it works on a runtime-only install): the
content, the style(s) and the output side by side, and below them the loss curves (total and each weighted term) on
a log scale over the iterations, with the stage boundaries of a multi-stage run marked."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .grid import BACKGROUND, FAINT, INK, PAD, Cell, draw_grid, font, text_size

TOTAL = (20, 20, 20)
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75))
DEFAULT_THUMB = 200  # px: the long side of each picture in the report
PLOT_HEIGHT = 260
GRID = (215, 215, 215)
MINOR_GRID = (240, 240, 240)  # 2x .. 9x each decade, when the plot spans at most 4 decades


def _decades(values: Sequence[float]) -> tuple[int, int]:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return 0, 1
    lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    return lo, max(hi, lo + 1)


def _series(history: Sequence[dict]) -> list[tuple[str, tuple[int, int, int], list[float]]]:
    """(legend, colour, values): the total J, then each loss term by the name the run gave it, in the order the terms
    first appear; a term that is never positive (weighted 0) is left out."""
    names = list(dict.fromkeys(name for h in history for name in h.get("terms", {})))
    out = [("total J", TOTAL, [float(h["loss"]) for h in history])]
    for i, name in enumerate(names):
        values = [float(h.get("terms", {}).get(name) or 0.0) for h in history]
        if any(v > 0 for v in values):
            out.append((name, PALETTE[i % len(PALETTE)], values))
    return out


def draw_losses(history: Sequence[dict], size: tuple[int, int]) -> Image.Image:
    """Loss curves on a log scale: x the iteration over the whole run, y one gridline per decade. Values <= 0 (a term
    weighted 0) are left out of their curve."""
    w, h = size
    f = font()
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    series = _series(history)
    lo, hi = _decades([v for _, _, vs in series for v in vs])
    left, top, right, bottom = 52, PAD + 4, w - PAD, h - 34
    n = max(len(history), 2)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (right - left) * i / (n - 1)
        return x, bottom - (bottom - top) * (math.log10(v) - lo) / (hi - lo)

    step = max(1, math.ceil((hi - lo) / 8))
    if hi - lo <= 4:
        for d in range(lo, hi):
            for k in range(2, 10):
                y = xy(0, k * 10.0**d)[1]
                draw.line([(left, y), (right, y)], fill=MINOR_GRID)
    for d in range(lo, hi + 1):
        y = xy(0, 10.0**d)[1]
        draw.line([(left, y), (right, y)], fill=GRID)
        if (d - lo) % step == 0:
            label = f"1e{d}"
            draw.text((left - 6 - text_size(draw, label, f)[0], y - 7), label, fill=FAINT, font=f)
    stages = [i for i in range(1, len(history)) if history[i].get("stage") != history[i - 1].get("stage")]
    for i in stages:
        x = xy(i, 1.0)[0]
        draw.line([(x, top), (x, bottom)], fill=(170, 170, 170))
    draw.rectangle([left, top, right, bottom], outline=INK)
    for _, colour, values in series:
        points = [xy(i, v) for i, v in enumerate(values) if v > 0 and math.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        elif points:
            draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=colour)
    for tick in _ticks(len(history)):
        x = xy(tick - 1, 1.0)[0]
        draw.text((x - text_size(draw, str(tick), f)[0] / 2, bottom + 4), str(tick), fill=FAINT, font=f)
    axis = "iteration" + (" (grey lines: next stage)" if stages else "")
    draw.text(((left + right) / 2 - text_size(draw, axis, f)[0] / 2, h - 16), axis, fill=INK, font=f)
    x = right - 8
    for name, colour, _ in reversed(series):  # legend, top right, drawn right to left
        x -= text_size(draw, name, f)[0]
        draw.text((x, top + 4), name, fill=colour, font=f)
        x -= 14
    return canvas


def _ticks(n: int) -> list[int]:
    """About 6 round iteration numbers in 1..n."""
    if n <= 1:
        return [1]
    raw = max(n / 6, 1.0)
    base = 10 ** math.floor(math.log10(raw))
    step = next(int(m * base) for m in (1, 2, 5, 10) if m * base >= raw)
    return [1, *range(step, n + 1, step)] if step > 1 else list(range(1, n + 1))


def render_report(
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    output: np.ndarray,
    history: Sequence[dict],
    title: str = "",
    thumb: int = DEFAULT_THUMB,
    masks: Sequence[np.ndarray | None] | None = None,
) -> Image.Image:
    """The report picture: title, the images in a row (each style's region mask, (H, W) in [0, 1], after its style
    when given; a style without one covers the whole picture), the loss plot under them."""
    shown: list[tuple[np.ndarray, str]] = [(content, "content")]
    for i, s in enumerate(styles):
        shown.append((s, f"style {i + 1}" if len(styles) > 1 else "style"))
        if masks is not None and masks[i] is not None:
            shown.append((np.repeat(np.asarray(masks[i], np.float32)[..., None], 3, axis=2), f"mask {i + 1}"))
    shown.append((output, "output"))
    cells = [Cell(im, caption) for im, caption in shown]
    tall = max(min(im.shape[0] / im.shape[1], 1.0) for im, _ in shown)  # landscape: a lower row
    top = draw_grid([cells], (thumb, round(thumb * tall)), title=title)
    width = max(top.width, 640)
    plot = draw_losses(history, (width, PLOT_HEIGHT))
    canvas = Image.new("RGB", (width, top.height + plot.height), BACKGROUND)
    canvas.paste(top, (0, 0))
    canvas.paste(plot, (0, top.height))
    return canvas
