"""Top-9 patches per unit (Zeiler & Fergus 2014): over an image set, the positions where a unit of one layer fires
most, each shown as the unit's receptive field in the input; optionally d(unit)/d(image) through the gradient graph.

The search keeps, per image variant and unit, the best few positions whose fields' centres are at least half a field
apart (non-maximum suppression), then takes the best k over all variants with at most `per_source` patches from one
source image (its scales and mirror images count as that source) and no two overlapping there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..engine.images import to_nchw
from ..engine.manifest import require_taps
from ..engine.model import Model
from ..engine.receptive import Box, ReceptiveField, receptive_field
from .image_set import ImageSet, Variant

PATCHES = 9  # per unit
PER_SOURCE = 2  # at most this many patches from one source image
DEFAULT_UNITS = 9  # random units when none are named
GREY = 0.5  # crops are padded with this where the field extends past the image


@dataclass(frozen=True)
class Patch:
    unit: int
    activation: float  # the features graph's value at (variant, unit, position)
    source: int  # index into the image set's sources
    spec: tuple[int, bool, float]  # the variant: (source, mirrored, scale)
    label: str  # the variant in words: "x0.5 mirrored"
    position: tuple[int, int]  # (row, col) in the layer's activation map of the variant
    box: Box  # the receptive field in the variant's pixels; may extend past its borders
    source_box: tuple[float, float, float, float]  # the same region in the source's working pixels


@dataclass
class UnitSearch:
    layer: str
    field: ReceptiveField
    units: tuple[int, ...]
    patches: dict[int, list[Patch]]  # unit -> best first
    variants: int  # image variants searched


def choose_units(channels: int, count: int, ids: Sequence[int] | None, seed: int) -> tuple[int, ...]:
    """The units named by `ids`, else `count` distinct random ones (seeded), sorted. ValueError naming the range."""
    if ids:
        bad = [u for u in ids if not 0 <= u < channels]
        if bad:
            raise ValueError(f"unit {bad[0]} does not exist: this layer has {channels} units, 0-{channels - 1}")
        return tuple(dict.fromkeys(ids))
    if not 1 <= count <= channels:
        raise ValueError(f"--units must be 1-{channels} for this layer, got {count}")
    return tuple(sorted(int(u) for u in np.random.default_rng(seed).choice(channels, count, replace=False)))


def _apart(a: tuple[float, float], b: tuple[float, float], distance: float) -> bool:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= distance


def best_positions(fmap: np.ndarray, field: ReceptiveField, count: int) -> list[tuple[float, int, int]]:
    """(activation, row, col) of the `count` highest values of a (h, w) map whose fields' centres are at least half a
    field apart; ties go to the first in row-major order."""
    flat = fmap.ravel()
    order = np.argsort(-flat, kind="stable")
    picks: list[tuple[float, int, int]] = []
    for idx in order:
        r, c = divmod(int(idx), fmap.shape[1])
        centre = (r * field.stride, c * field.stride)
        if all(_apart(centre, (pr * field.stride, pc * field.stride), field.size / 2) for _, pr, pc in picks):
            picks.append((float(flat[idx]), r, c))
            if len(picks) == count:
                break
    return picks


def _source_centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def select(candidates: list[Patch], k: int = PATCHES, per_source: int = PER_SOURCE) -> list[Patch]:
    """The k best candidates, at most per_source from one source image and none overlapping another from there."""
    chosen: list[Patch] = []
    for p in sorted(candidates, key=lambda p: -p.activation):  # stable: variant order, then position
        same = [q for q in chosen if q.source == p.source]
        side = p.source_box[2] - p.source_box[0]
        if len(same) >= per_source or not all(
            _apart(
                _source_centre(p.source_box),
                _source_centre(q.source_box),
                max(side, q.source_box[2] - q.source_box[0]) / 2,
            )
            for q in same
        ):
            continue
        chosen.append(p)
        if len(chosen) == k:
            break
    return chosen


def search(
    model: Model,
    layer: str,
    images: ImageSet,
    units: Sequence[int],
    *,
    k: int = PATCHES,
    per_source: int = PER_SOURCE,
    on_image: Callable[[int, int], None] | None = None,
) -> UnitSearch:
    """Run the features graph over every variant of `images` and keep the top-k patches of each unit.
    on_image(done, total) after each variant."""
    require_taps(model.manifest, [layer], str(model.path))
    field = receptive_field(model.manifest.layers, layer)
    specs = images.specs(model.manifest.min_size)
    candidates: dict[int, list[Patch]] = {u: [] for u in units}
    for n, spec in enumerate(specs, start=1):
        variant = images.variant(spec)
        fmap = model.features(to_nchw(variant.image), keep_state=False)[layer][0]
        for u in units:
            for value, r, c in best_positions(fmap[u], field, per_source + 2):
                box = field.box(r, c)
                candidates[u].append(
                    Patch(u, value, variant.source, spec, variant.label, (r, c), box, variant.to_source(box))
                )
        if on_image is not None:
            on_image(n, len(specs))
    return UnitSearch(layer, field, tuple(units), {u: select(candidates[u], k, per_source) for u in units}, len(specs))


def crop(image: np.ndarray, box: Box, fill: float = GREY) -> np.ndarray:
    """The box's pixels of an (H, W, C) image; where the box extends past the image, `fill` (grey)."""
    top, left, bottom, right = box
    out = np.full((bottom - top, right - left, image.shape[2]), fill, np.float32)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, image.shape[0]), min(right, image.shape[1])
    if b > t and r > lft:
        out[t - top : b - top, lft - left : r - left] = image[t:b, lft:r]
    return out


def _window(start: int, stop: int, n: int, stride: int, min_side: int) -> tuple[int, int]:
    """Rows (or columns) [a, b) of the image holding [start, stop) clipped to [0, n), with `a` a multiple of the
    layer's stride (so pooling windows line up) and b - a >= min_side (the model's smallest input)."""
    a, b = max(0, start) // stride * stride, min(n, stop)
    if b - a < min_side:
        b = min(n, a + min_side)
    if b - a < min_side:
        a = max(0, (b - min_side) // stride * stride)
    return a, b


def unit_gradient(
    model: Model, layer: str, image: np.ndarray, unit: int, position: tuple[int, int]
) -> tuple[np.ndarray, float]:
    """d(unit at position)/d(image) over the unit's receptive field, (size, size, 3) with zeros past the image's
    borders, and the unit's activation. Computed on the smallest stride-aligned window of the image that holds the
    field: a unit depends on nothing outside its field, so this equals the whole image's gradient, far cheaper."""
    field = receptive_field(model.manifest.layers, layer)
    top, left, bottom, right = field.box(*position)
    m, s = model.manifest.min_size, field.stride
    y0, y1 = _window(top, bottom, image.shape[0], s, m)
    x0, x1 = _window(left, right, image.shape[1], s, m)
    window = to_nchw(image[y0:y1, x0:x1])
    fmap = model.features(window)[layer]
    r, c = position[0] - y0 // s, position[1] - x0 // s
    onehot = np.zeros_like(fmap)
    onehot[0, unit, r, c] = 1.0
    grad = model.vjp(window, {layer: onehot})[0].transpose(1, 2, 0)
    full = np.zeros((*image.shape[:2], 3), np.float32)
    full[y0:y1, x0:x1] = grad
    return crop(full, (top, left, bottom, right), 0.0), float(fmap[0, unit, r, c])


def patch_pixels(
    images: ImageSet,
    search_result: UnitSearch,
    model: Model | None = None,
    on_patch: Callable[[int, int], None] | None = None,
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]]:
    """(unit, rank) -> (crop of the field, |gradient| map or None). With a model, the gradient too. Each variant
    holding a patch is rebuilt once. on_patch(done, total) after each patch."""
    out: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]] = {}
    by_spec: dict[tuple[int, bool, float], list[tuple[int, int, Patch]]] = {}
    for u, patches in search_result.patches.items():
        for rank, p in enumerate(patches):
            by_spec.setdefault(p.spec, []).append((u, rank, p))
    for spec, items in by_spec.items():
        variant: Variant = images.variant(spec)
        for u, rank, p in items:
            grad = None
            if model is not None:
                g, _ = unit_gradient(model, search_result.layer, variant.image, u, p.position)
                grad = np.abs(g).sum(axis=2)
            out[(u, rank)] = (crop(variant.image, p.box), grad)
            if on_patch is not None:
                on_patch(len(out), sum(len(v) for v in by_spec.values()))
    return out
