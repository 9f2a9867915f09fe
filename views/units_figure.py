"""How a units search is shown: one labelled grid (a row per unit, its top patches scaled to a common size, each
captioned with its activation; with gradients, the patch faded where
|d unit / d image| is small) and a JSON record of every patch
(image, variant, position, activation, crop box)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .grid import Cell, Figure
from .image_set import ImageSet
from .units import UnitSearch

DEFAULT_TILE = 80  # px: every patch is scaled to this side
FADE = np.array([0.92, 0.92, 0.92], np.float32)  # where a pixel does not move the unit


def overlay(patch: np.ndarray, grad: np.ndarray, stride: int = 1) -> np.ndarray:
    """The patch where its pixels move the unit, fading to pale grey where they do not: what is left visible is what
    the unit responds to. grad: |d unit / d pixel| summed over RGB. Through max pooling a deep unit's gradient is a
    sparse speckle, so it is blurred over about a quarter of the layer's stride and scaled by its 99th percentile."""
    from scipy.ndimage import gaussian_filter

    g = gaussian_filter(grad, stride / 4) if stride > 1 else grad
    top = float(np.percentile(g, 99))
    a = np.clip(g / top, 0, 1) if top > 0 else np.zeros_like(g)
    a = np.sqrt(a)[..., None]  # sqrt: weak but non-zero influence stays visible
    return (a * patch + (1 - a) * FADE).astype(np.float32)


def units_figure(result: UnitSearch, pixels: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]]) -> Figure:
    """A row per unit (label: its index), its patches best first (caption: activation); `pixels` from
    units.patch_pixels, with gradients if they are to be shown."""
    rows: list[list[Cell | None]] = []
    for u in result.units:
        row: list[Cell | None] = []
        for rank, p in enumerate(result.patches[u]):
            crop, grad = pixels[(u, rank)]
            image = overlay(crop, grad, result.field.stride) if grad is not None else crop
            row.append(Cell(image, f"{p.activation:.3g}", pixelated=True))
        rows.append(row)
    f = result.field
    what = "top patches and d(unit)/d(image)" if any(g is not None for _, g in pixels.values()) else "top patches"
    title = (
        f"{result.layer}: {what} over {result.variants} images; receptive field {f.size} px, stride {f.stride} "
        "px; captions: activation"
    )
    return Figure(rows, title, [f"unit {u}" for u in result.units])


def render_units(
    result: UnitSearch, pixels: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]], tile: int = DEFAULT_TILE
) -> Image.Image:
    return units_figure(result, pixels).draw((tile, tile))


def units_record(result: UnitSearch, images: ImageSet) -> dict[str, Any]:
    """The JSON of a search: per unit, its patches best first with the source image, the variant, the position in
    the layer's map, the activation and the crop box (in the variant's pixels and in the source's working pixels)."""
    f = result.field
    return {
        "layer": result.layer,
        "receptive_field": {"size": f.size, "stride": f.stride, "offset": f.offset},
        "variants_searched": result.variants,
        "sources": [str(s.path) for s in images.sources],
        "units": {
            str(u): [
                {
                    "image": str(images.sources[p.source].path),
                    "variant": p.label,
                    "scale": p.spec[2],
                    "mirrored": p.spec[1],
                    "position": list(p.position),
                    "activation": p.activation,
                    "box": list(p.box),
                    "source_box": [round(v, 1) for v in p.source_box],
                }
                for p in result.patches[u]
            ]
            for u in result.units
        },
        "note": "box: (top, left, bottom, right) of the receptive field in the variant's pixels (the source image "
        "resized to the working long side x scale, mirrored left-right if mirrored); it may extend past the "
        "image, where the crop is grey",
    }
