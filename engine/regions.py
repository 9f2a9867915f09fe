"""Spatial control: a style confined to a region of the picture by guided Gram matrices (Gatys, Ecker, Bethge,
Hertzmann & Shechtman, CVPR 2017, "Controlling Perceptual Factors in Neural Style Transfer", section 4).

A region is a mask m (H, W) in [0, 1] at the image's size. Per style layer it is brought to the layer's resolution
(h, w) = (H // s, W // s), s = the layer's downsampling (LayerSpec.scale: VGG's 2x2 pools floor), by one of the paper's
two propagations (layer_masks):
  "resize"  the mean of m over the s x s block of pixels each unit sits on (area downsampling; the rows and columns
            the pools drop are dropped too). Soft: units on the region's border get a partial weight.
  "inside"  1 for a unit whose whole receptive field (views/receptive.py, clipped to the image: the zero padding is no
            other region's content) lies where m >= 0.5, else 0. Binary and smaller: no unit that sees across the
            border contributes, so deep layers lose a band of the field's half-size around it.

With A = a layer's activations (C, N), N = h w, and m_l the mask at that layer flattened to (N,):
  guided Gram  G_r = (A ⊙ m_l)(A ⊙ m_l)^T / sum(m_l^2)
               The paper's G_r = F_l[T_r] F_l[T_r]^T with F_l[T_r] = F_l ⊙ T_r^l, normalised by the mask's mass
               sum(m_l^2) instead of the layer's pixel count N (losses.gram's departure from the paper's raw sum, taken
               over the region): m_l = 1 gives gram() exactly; a region of a uniform texture gives about the Gram of the
               whole texture, whatever the region's size; and G_r does not change when m_l is scaled (a soft mask's
               overall level is no weight; beta and lambda_l are).
  style        J_r = 1/(4 C^2) sum (G_r(a_g) - G_target)^2,  dJ_r/dA = m_l ⊙ ((G_r - G_target) A_m) / (C^2 sum(m_l^2))
               with A_m = A ⊙ m_l (the mask's mass is a constant of the mask, not of A).
A style's target is source_gram(style activations, the style image's mask at that layer): the same guided Gram, so a
style can be taken from a part of its image; without a mask, the plain Gram.

The losses are written against the array API like losses.py (NumPy, CuPy, array_api_strict arrays); the masks are
NumPy (computed once per stage from an image) and are moved to the activations' namespace and device on use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from .losses import Array, gram, style_loss
from .manifest import LayerSpec, Manifest
from .receptive import receptive_field
from .terms import TermValue, auto_layer_weights

METHODS = ("resize", "inside")
INSIDE_THRESHOLD = 0.5  # "inside" binarises the mask: a pixel belongs to the region where m >= 0.5


# --- masks at each layer's resolution (NumPy: once per stage) -------------------------------------------------------


def check_mask(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"a region mask must be (H, W), got shape {m.shape}")
    if not np.issubdtype(m.dtype, np.floating) and not np.issubdtype(m.dtype, np.bool_):
        raise ValueError(f"a region mask must be float in [0, 1] or bool, got dtype {m.dtype}")
    m = m.astype(np.float32)
    if not np.all(np.isfinite(m)) or m.min(initial=0.0) < 0.0 or m.max(initial=0.0) > 1.0:
        raise ValueError("a region mask's values must be finite and in [0, 1]")
    return m


def resize_mask(mask: np.ndarray, scale: int) -> np.ndarray:
    """(H, W) -> (H // scale, W // scale) float32: each unit's value is the mean of its scale x scale pixel block."""
    m = check_mask(mask)
    h, w = m.shape[0] // scale, m.shape[1] // scale
    blocks = m[: h * scale, : w * scale].reshape(h, scale, w, scale)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def inside_mask(mask: np.ndarray, layers: Sequence[LayerSpec], name: str) -> np.ndarray:
    """(H, W) -> (H // s, W // s) float32 in {0, 1}: 1 where the unit's receptive field, clipped to the image, holds no
    pixel with m < 0.5. Counted with an integral image of the outside pixels: exact, O(H W) whatever the field's
    size (tests/test_regions.py checks it against a min-pooling through the layers)."""
    m = check_mask(mask)
    f = receptive_field(layers, name)
    H, W = m.shape
    outside = np.zeros((H + 1, W + 1), np.int64)  # outside[i, j] = pixels with m < 0.5 in rows < i, columns < j
    outside[1:, 1:] = np.cumsum(np.cumsum(m < INSIDE_THRESHOLD, axis=0), axis=1)

    def spans(n_units: int, extent: int) -> tuple[np.ndarray, np.ndarray]:
        start = np.arange(n_units) * f.stride + f.offset
        return np.clip(start, 0, extent), np.clip(start + f.size, 0, extent)

    t, b = spans(H // f.stride, H)
    le, r = spans(W // f.stride, W)
    count = outside[np.ix_(b, r)] - outside[np.ix_(t, r)] - outside[np.ix_(b, le)] + outside[np.ix_(t, le)]
    return (count == 0).astype(np.float32)


def layer_masks(
    mask: np.ndarray,
    layers_or_manifest: Manifest | Sequence[LayerSpec],
    layers: Sequence[str],
    method: str = "resize",
) -> dict[str, np.ndarray]:
    """Per layer in `layers`, the mask (H, W) at that layer's resolution (H // scale, W // scale), float32 in [0, 1].

    layers_or_manifest: the model's manifest or its layer list (input first), which fixes each layer's scale and
    receptive field. method: "resize" or "inside" (module docstring). KeyError for a layer the network lacks."""
    if method not in METHODS:
        raise ValueError(f"unknown mask method {method!r}; use one of {', '.join(METHODS)}")
    specs = tuple(layers_or_manifest.layers if isinstance(layers_or_manifest, Manifest) else layers_or_manifest)
    by_name = {s.name: s for s in specs}
    out: dict[str, np.ndarray] = {}
    for name in layers:
        if name not in by_name:
            raise KeyError(name)
        if method == "resize":
            out[name] = resize_mask(mask, by_name[name].scale)
        else:
            out[name] = inside_mask(mask, specs, name)
    return out


def coverage(masks: Mapping[str, Any]) -> dict[str, float]:
    """Per layer, the mask's mean over the layer's units, in [0, 1]: 0 when the region holds no unit there (then its
    guided Gram is undefined and a run must refuse, or drop that layer, before starting)."""
    out = {}
    for name, m in masks.items():
        a = np.asarray(m, dtype=np.float64)
        out[name] = float(a.mean()) if a.size else 0.0
    return out


# --- guided Gram and style loss (array API) ------------------------------------------------------------------------


def _masked(a: Array, mask: Array, xp: Any) -> tuple[Array, Array, float]:
    """(a ⊙ m, m in a's namespace, device and dtype, sum(m^2) as a Python float). ValueError on a shape mismatch or
    an empty mask."""
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[0] != 1):
        raise ValueError(f"activations must be (1, C, H, W) or (C, H, W), got shape {tuple(a.shape)}")
    if tuple(mask.shape) != tuple(a.shape[-2:]):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match the activations' {tuple(a.shape[-2:])}")
    m = xp.asarray(mask, device=device_of(a))
    if m.dtype != a.dtype:
        m = xp.astype(m, a.dtype)
    mass = float(xp.sum(m * m, dtype=xp.float64))  # exact N for m = 1 (up to 2^53 units)
    if not mass > 0.0:
        raise ValueError("the region's mask covers no unit of this layer; check coverage() before building the term")
    return a * m, m, mass


def guided_gram(a: Array, mask: Array | None) -> Array:
    """G_r = (A ⊙ m)(A ⊙ m)^T / sum(m^2), (C, C), exactly symmetric; mask (h, w) matching a's (1, C, h, w) or
    (C, h, w). mask None: the plain gram(a)."""
    if mask is None:
        return gram(a)
    xp = array_namespace(a)
    b, _, mass = _masked(a, mask, xp)
    # gram(b) divides by b's N; rescaled to the mask's mass (N / mass = 1.0 exactly when m = 1)
    return gram(b) * (b.shape[-1] * b.shape[-2] / mass)


def source_gram(a_s: Array, mask_l: Array | None = None) -> Array:
    """The style target at one layer: the style image's Gram from its masked part only (the guided Gram); mask_l None:
    the whole image's (losses.gram)."""
    return guided_gram(a_s, mask_l)


def guided_style_loss(a_g: Array, mask_l: Array, g_target: Array, scale: float = 1.0) -> tuple[float, Array]:
    """J_r = 1/(4 C^2) sum (G_r(a_g) - G_target)^2 and dJ_r/da_g (a_g's shape, dtype, namespace and device), the
    gradient times `scale` (a layer weight, folded into style_loss's (C, C) factor)."""
    xp = array_namespace(a_g, g_target)
    b, m, mass = _masked(a_g, mask_l, xp)
    n = b.shape[-1] * b.shape[-2]
    g_r = gram(b) * (n / mass)
    # style_loss against the given Gram: its value is J_r, its gradient dJ/dB = (G_r - G_t) B / (C^2 N); the chain
    # through B = A ⊙ m and the mass normaliser gives dJ/dA = m ⊙ (G_r - G_t) B / (C^2 mass) = m ⊙ dJ/dB * N / mass.
    value, grad_b = style_loss(b, g_target, g_r, scale=scale * n / mass)
    return value, grad_b * m


# --- the loss term -------------------------------------------------------------------------------------------------


class RegionStyleTerm:
    """beta * sum_l lambda_l J_r^l: one style confined to one region, a LossTerm.

    masks: per layer, the region at the generated image's size for this stage (layer_masks); targets: per layer, the
    style's (guided) Gram (source_gram). layer_weights: lambda_l, or None for auto_layer_weights(targets, layers).
    The call returns the value sum_l lambda_l J_r^l, its gradient per layer, and parts lambda_l J_r^l per layer
    (summing to the value); the caller multiplies by `weight`."""

    def __init__(
        self,
        name: str,
        weight: float,
        layers: Sequence[str],
        masks: Mapping[str, np.ndarray],
        targets: Mapping[str, Array],
        layer_weights: Sequence[float] | None = None,
    ):
        self.name, self.weight, self.layers = name, float(weight), tuple(layers)
        missing = [la for la in self.layers if la not in masks or la not in targets]
        if missing:
            raise ValueError(f"{name}: no mask or target for layer(s) {', '.join(missing)}")
        if layer_weights is None:
            layer_weights = auto_layer_weights(dict(targets), self.layers)
        if len(layer_weights) != len(self.layers):
            raise ValueError(f"{name}: {len(layer_weights)} layer weights for {len(self.layers)} layers")
        self.layer_weights = tuple(float(w) for w in layer_weights)
        empty = [la for la, c in coverage({la: masks[la] for la in self.layers}).items() if c == 0.0]
        if empty:
            raise ValueError(f"{name}: the region covers no unit of layer(s) {', '.join(empty)}")
        self.masks = {la: masks[la] for la in self.layers}
        self.targets = {la: targets[la] for la in self.layers}
        # Units outside the mask's bounding box add nothing to G_r, its mass or its gradient, so each layer is
        # computed on the box alone: two half-picture regions cost one whole picture's losses, not two (at 512 px the
        # uncropped halves took 1.27x the time of the run without masks; bench/README.md "Regions").
        self.boxes = {la: _support_box(np.asarray(self.masks[la])) for la in self.layers}
        self._placed: dict[str, Array] = {}  # the cropped masks on the activations' device, moved there once

    def _mask(self, layer: str, a: Array) -> Array:
        m = self._placed.get(layer)
        if m is None or array_namespace(m) is not array_namespace(a) or device_of(m) != device_of(a):
            xp = array_namespace(a)
            box = np.asarray(self.masks[layer])[self.boxes[layer]]
            m = self._placed[layer] = xp.astype(xp.asarray(np.ascontiguousarray(box), device=device_of(a)), a.dtype)
        return m

    def __call__(self, feats: Mapping[str, Array], image: Array) -> TermValue:
        total, grads, parts = 0.0, {}, {}
        for layer, lam in zip(self.layers, self.layer_weights):
            a = feats[layer]
            rows, cols = self.boxes[layer]
            whole = (rows.stop - rows.start, cols.stop - cols.start) == tuple(a.shape[-2:])
            v, g = guided_style_loss(
                a if whole else a[..., rows, cols], self._mask(layer, a), self.targets[layer], scale=float(lam)
            )
            if not whole:
                xp = array_namespace(a)
                full = xp.zeros_like(a)
                full[..., rows, cols] = g
                g = full
            parts[layer] = lam * v
            total += parts[layer]
            grads[layer] = g
        return TermValue(total, grads, parts)


def _support_box(mask: np.ndarray) -> tuple[slice, slice]:
    """(rows, cols): the smallest box holding every nonzero unit of a (h, w) mask (the whole mask if none is)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return slice(0, mask.shape[0]), slice(0, mask.shape[1])
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
