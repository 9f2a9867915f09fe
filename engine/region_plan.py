"""Planning a run with regions (style masks; the maths is engine/regions.py): the masks checked against the images
they belong to and against every stage's layers before any work, and what the plan and the log record of them.

A style's mask is in the content's frame: it is resized with the content at every stage, then brought to each style
layer by the plan's mask method. A style's source mask is in its style image's frame and resized with it. A mask must
keep its image's aspect ratio (within ASPECT_TOLERANCE) and must cover some unit of every style layer at every stage;
otherwise OptionError (a command-line error) before the run. Pure: arrays in, a Regions record out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .images import resize_grey
from .manifest import Manifest
from .options import NO_MASK, OptionError, StylizeOptions
from .regions import check_mask, coverage, layer_masks

HW = tuple[int, int]
ASPECT_TOLERANCE = 0.03  # a mask's width/height may differ from its image's by 3% (rounding of resized copies)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Regions:
    method: str  # how masks reach the layers: "resize" or "inside" (regions.layer_masks)
    masks: tuple[np.ndarray | None, ...]  # per style, (H, W) float32 in [0, 1] in the content's frame; None: everywhere
    source_masks: tuple[np.ndarray | None, ...]  # per style, in its style image's frame; None: all of the image
    labels: tuple[str, ...]  # how the log names each mask: its file, "array N" (the API) or "none"
    source_labels: tuple[str, ...]
    coverage: tuple[dict[str, float], ...]  # per style, its region's mean over each style layer's units (last stage)
    uncovered: float  # the share of the picture no mask covers (mean of 1 - max_i m_i at the final size)

    def resolved(self) -> dict:
        return {
            "mask_method": self.method,
            "styles": [
                {"mask": label, "source_mask": source, "coverage": {la: round(c, 4) for la, c in cov.items()}}
                for label, source, cov in zip(self.labels, self.source_labels, self.coverage)
            ],
            "uncovered": round(self.uncovered, 4),
        }


def stage_mask(mask: np.ndarray | None, size: HW) -> np.ndarray:
    """A mask at a stage's size (h, w), resized as the images are; None (everywhere) -> ones."""
    if mask is None:
        return np.ones(size, np.float32)
    return resize_grey(mask, size)


def _resolve(
    name: str, labels: Sequence[str] | None, arrays: Sequence[Any] | None, n: int
) -> tuple[tuple[np.ndarray | None, ...], tuple[str, ...]]:
    """Per style: the checked mask array (or None) and its label."""
    if arrays is None:
        if labels is None:
            return (None,) * n, (NO_MASK,) * n
        if any(label != NO_MASK for label in labels):
            raise OptionError(
                name,
                "names files, which the engine does not read; load them (nst.engine.load_mask) and pass the arrays: "
                f"{name}=[array or None, ...]",
            )
        arrays = [None] * len(labels)
    if len(arrays) != n:
        raise OptionError(
            name,
            f"has {len(arrays)} mask(s) for {n} style image(s); give one per style image, in their order "
            f"({NO_MASK}: the whole image)",
        )
    if labels is None:
        labels = tuple(NO_MASK if a is None else f"array {i + 1}" for i, a in enumerate(arrays))
    elif len(labels) != n or any((label == NO_MASK) != (a is None) for label, a in zip(labels, arrays)):
        raise OptionError(name, f"names {list(labels)} but the arrays given do not match them (None for {NO_MASK})")
    checked: list[np.ndarray | None] = []
    for label, a in zip(labels, arrays):
        if a is None:
            checked.append(None)
            continue
        if isinstance(a, (str, bytes)):
            raise OptionError(name, f"{label}: the engine takes arrays; load the file with nst.engine.load_mask")
        try:
            checked.append(check_mask(np.asarray(a)))
        except ValueError as e:
            raise OptionError(name, f"{label}: {e}") from None
    return tuple(checked), tuple(labels)


def _check_aspect(name: str, label: str, mask_hw: HW, image_hw: HW, image: str) -> None:
    (h, w), (H, W) = mask_hw, image_hw
    differ = abs((w / h) / (W / H) - 1.0)
    if differ > ASPECT_TOLERANCE:
        raise OptionError(
            name,
            f"{label} is {w}x{h} px but {image} is {W}x{H} px: their aspect ratios differ by {differ:.0%} (more than "
            f"{ASPECT_TOLERANCE:.0%}); give a mask in {image}'s frame",
        )


def _check_covers(
    name: str,
    label: str,
    mask: np.ndarray,
    size: HW,
    stage: int,
    manifest: Manifest,
    layers: Sequence[str],
    method: str,
) -> dict[str, float]:
    """The mask's coverage per layer at `size`; OptionError naming the deepest layer it covers nothing of."""
    cov = coverage(layer_masks(stage_mask(mask, size), manifest, layers, method))
    empty = [la for la in layers if cov[la] == 0.0]
    if empty:
        other = " or --mask-method resize" if method == "inside" else ""
        raise OptionError(
            name,
            f"{label} covers nothing of layer {empty[-1]} at {size[1]}x{size[0]} px (stage {stage}); draw a larger "
            f"region{other}, or leave {empty[-1]} out of --style-layers",
        )
    return cov


def plan_regions(
    manifest: Manifest,
    content_hw: HW,
    style_hws: Sequence[HW],
    stages: Sequence[Any],
    style_layers: Sequence[str],
    options: StylizeOptions,
    masks: Sequence[Any] | None = None,
    source_masks: Sequence[Any] | None = None,
    style_names: Sequence[str] | None = None,
) -> Regions | None:
    """The run's regions, checked; None when no mask was asked for (the plain blended style term).

    masks / source_masks: per style image an (H, W) array in [0, 1] or None; options.style_masks /
    style_source_masks name them (files on the command line, which the CLI loads). stages: the plan's Stages."""
    if masks is None and source_masks is None and options.style_masks is None and options.style_source_masks is None:
        return None
    n = len(style_hws)
    out, labels = _resolve("style_masks", options.style_masks, masks, n)
    src, src_labels = _resolve("style_source_masks", options.style_source_masks, source_masks, n)
    names = style_names or [f"style image {i + 1}" for i in range(n)]
    method = options.mask_method
    for i in range(n):
        if (m := out[i]) is not None:
            _check_aspect("style_masks", labels[i], m.shape, content_hw, "the content")
        if (s := src[i]) is not None:
            _check_aspect("style_source_masks", src_labels[i], s.shape, style_hws[i], names[i])
    covered: list[dict[str, float]] = [{la: 1.0 for la in style_layers} for _ in range(n)]
    for stage in stages:
        for i in range(n):
            if (m := out[i]) is not None:  # the last stage's coverage is kept
                covered[i] = _check_covers(
                    "style_masks", labels[i], m, stage.size, stage.index, manifest, style_layers, method
                )
            if (s := src[i]) is not None:
                hw = stage.style_sizes[i]
                _check_covers("style_source_masks", src_labels[i], s, hw, stage.index, manifest, style_layers, method)
    size = stages[-1].size
    if any(m is None for m in out):
        uncovered = 0.0
    else:
        union = np.max([stage_mask(m, size) for m in out], axis=0)
        uncovered = float(np.mean(1.0 - union, dtype=np.float64))
    return Regions(method, out, src, labels, src_labels, tuple(covered), uncovered)
