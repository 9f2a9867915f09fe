"""nst-video --report: a strip of frames evenly spaced over the video and, under it, the warping error of each frame
to the previous output frame (flow and consistency from the input frames). Pillow only."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .grid import BACKGROUND, FAINT, INK, PAD, Cell, draw_grid, font, text_size
from .report import GRID, PALETTE

STRIP_FRAMES = 8
THUMB = 160
PLOT_HEIGHT = 220


def strip_indices(count: int, n: int = STRIP_FRAMES) -> list[int]:
    """n frame indices (0-based) evenly spaced from the first frame to the last (all of them when fewer)."""
    if count <= n:
        return list(range(count))
    return sorted({round(i * (count - 1) / (n - 1)) for i in range(n)})


def draw_series(values: Sequence[float | None], size: tuple[int, int], label: str) -> Image.Image:
    """One value per frame (None or NaN: no point) on a linear scale from 0, frames on x (1-based)."""
    w, h = size
    f = font()
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    top_value = max(finite, default=1.0) * 1.1 or 1.0
    left, top, right, bottom = 64, PAD + 4, w - PAD, h - 34
    n = max(len(values), 2)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (right - left) * i / (n - 1), bottom - (bottom - top) * v / top_value

    for k in range(5):
        v = top_value * k / 4
        y = xy(0, v)[1]
        draw.line([(left, y), (right, y)], fill=GRID)
        text = f"{v:.2g}"
        draw.text((left - 6 - text_size(draw, text, f)[0], y - 7), text, fill=FAINT, font=f)
    draw.rectangle([left, top, right, bottom], outline=INK)
    points = [xy(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(points) > 1:
        draw.line(points, fill=PALETTE[0], width=2)
    for x, y in points:
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=PALETTE[0])
    for i in {0, n - 1, (n - 1) // 2}:
        tick = str(i + 1)
        x = xy(i, 0.0)[0]
        draw.text((x - text_size(draw, tick, f)[0] / 2, bottom + 4), tick, fill=FAINT, font=f)
    draw.text(((left + right) / 2 - text_size(draw, label, f)[0] / 2, h - 16), label, fill=INK, font=f)
    return canvas


def render_video_report(
    frames: Sequence[tuple[int, np.ndarray]], errors: Sequence[float | None], title: str = "", thumb: int = THUMB
) -> Image.Image:
    """frames: (0-based index, (H, W, 3) image) for the strip; errors: the warping error of every frame (None for the
    first)."""
    cells = [Cell(image, f"frame {i + 1}") for i, image in frames]
    h, w = frames[0][1].shape[:2]
    top = draw_grid([cells], (thumb, round(thumb * min(h / w, 1.0))), title=title)
    width = max(top.width, 640)
    plot = draw_series(errors, (width, PLOT_HEIGHT), "frame: warping error to the previous output frame")
    canvas = Image.new("RGB", (width, top.height + plot.height), BACKGROUND)
    canvas.paste(top, (0, 0))
    canvas.paste(plot, (0, top.height))
    return canvas
