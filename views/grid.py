"""Labelled grids of images, drawn with Pillow: a title, column headings, row headings and a caption under each
cell. Every view's picture is one of these (the run report adds a plot, views/report.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..engine.files import atomic_write
from ..engine.images import check_output_path, to_uint8

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
FAINT = (110, 110, 110)
FRAME = (200, 200, 200)
PAD = 6  # px between cells and around the picture
FONT_PX = 13
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def font(px: int = FONT_PX) -> Font:
    """Pillow's bundled font at `px` (a scalable one where Pillow has FreeType, else its bitmap font)."""
    return ImageFont.load_default(px)


def text_size(draw: ImageDraw.ImageDraw, text: str, f: Font) -> tuple[int, int]:
    if not text:
        return 0, 0
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=f)
    return int(right - left), int(bottom - min(top, 0))


def to_pil(image: np.ndarray) -> Image.Image:
    """(H, W, 3) float in [0, 1] -> RGB image."""
    return Image.fromarray(to_uint8(image), "RGB")


def fit(image: np.ndarray | Image.Image, box: tuple[int, int], pixelated: bool = False) -> Image.Image:
    """Scale to fit inside box (w, h), keeping the aspect ratio. pixelated: nearest-neighbour when enlarging (a 3 px
    receptive field stays 3 visible squares), else Lanczos."""
    img = image if isinstance(image, Image.Image) else to_pil(image)
    scale = min(box[0] / img.width, box[1] / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    nearest = pixelated and scale > 1
    return img.resize(size, Image.Resampling.NEAREST if nearest else Image.Resampling.LANCZOS)


@dataclass
class Cell:
    image: np.ndarray | Image.Image
    caption: str = ""
    pixelated: bool = False


def _heights(draw: ImageDraw.ImageDraw, rows: Sequence[Sequence[Cell | None]], f: Font) -> int:
    return max((text_size(draw, c.caption, f)[1] for row in rows for c in row if c is not None), default=0)


def draw_grid(
    rows: Sequence[Sequence[Cell | None]],
    cell: tuple[int, int],
    *,
    title: str = "",
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    px: int = FONT_PX,
) -> Image.Image:
    """A grid of cells, each image fitted into a `cell` (w, h) box and centred, its caption below; row labels on the
    left (may have several lines), column labels on top, the title above all. None leaves a cell empty."""
    f, small = font(px), font(max(9, px - 2))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max((text_size(probe, t, f)[0] for t in row_labels), default=0)
    label_w = label_w + PAD if label_w else 0
    col_h = max((text_size(probe, t, f)[1] for t in col_labels), default=0)
    col_h = col_h + PAD if col_h else 0
    title_h = text_size(probe, title, f)[1] + PAD if title else 0
    cap_h = _heights(probe, rows, small)
    cap_h = cap_h + 2 if cap_h else 0
    ncols = max((len(r) for r in rows), default=0)
    width = PAD + label_w + ncols * (cell[0] + PAD)
    row_h = cell[1] + cap_h + PAD
    height = PAD + title_h + col_h + len(rows) * row_h
    width = max(width, PAD * 2 + text_size(probe, title, f)[0])
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, PAD), title, fill=INK, font=f)
    x0, y0 = PAD + label_w, PAD + title_h
    for j, text in enumerate(col_labels):
        w = text_size(draw, text, f)[0]
        draw.multiline_text((x0 + j * (cell[0] + PAD) + (cell[0] - w) // 2, y0), text, fill=INK, font=f, align="center")
    y0 += col_h
    for i, row in enumerate(rows):
        y = y0 + i * row_h
        if i < len(row_labels):
            h = text_size(draw, row_labels[i], f)[1]
            draw.multiline_text((PAD, y + max(0, (cell[1] - h) // 2)), row_labels[i], fill=INK, font=f)
        for j, c in enumerate(row):
            if c is None:
                continue
            x = x0 + j * (cell[0] + PAD)
            img = fit(c.image, cell, c.pixelated)
            px0, py0 = x + (cell[0] - img.width) // 2, y + (cell[1] - img.height) // 2
            canvas.paste(img, (px0, py0))
            if c.pixelated:  # patches: a frame, so a white patch still shows its extent
                draw.rectangle([px0 - 1, py0 - 1, px0 + img.width, py0 + img.height], outline=FRAME)
            if c.caption:
                w = text_size(draw, c.caption, small)[0]
                draw.text((x + (cell[0] - w) // 2, y + cell[1] + 1), c.caption, fill=FAINT, font=small)
    return canvas


@dataclass
class Figure:
    """What a view shows, before drawing: cells by row, their labels and a title (tests check these)."""

    rows: list[list[Cell | None]]
    title: str = ""
    row_labels: list[str] = field(default_factory=list)
    col_labels: list[str] = field(default_factory=list)

    def draw(self, cell: tuple[int, int], px: int = FONT_PX) -> Image.Image:
        return draw_grid(
            self.rows, cell, title=self.title, row_labels=self.row_labels, col_labels=self.col_labels, px=px
        )


def save_picture(image: Image.Image, path: str | Path) -> Path:
    """Write a picture atomically in the format of its extension (.png, .jpg, ...): a reader never sees half a file
    and an existing one is replaced only by a complete one."""
    fmt = check_output_path(path)
    extra = {"optimize": True} if fmt == "PNG" else {"quality": 92} if fmt in ("JPEG", "WEBP") else {}
    return atomic_write(path, lambda fh: image.save(fh, format=fmt, **extra))
