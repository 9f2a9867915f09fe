"""The temporal loss of Ruder, Dosovitskiy & Brox (2016), eq. 5 (and eq. 6 for several previous frames), as a loss
term on the pixels:

  L_temporal(x) = (1/D) sum_j sum_k c_j[k] (x[k] - w_j[k])^2        D = 3 H W, the number of pixel-channels

w_j is a previous stylized frame warped onto the current one (nst.video.flow.warp), c_j its per-pixel consistency
weights (0 at disocclusions and motion boundaries, shared by the three channels of a pixel). One pair (j = 1) is the
short-term loss; several pairs with the c_long weights of eq. 7 are the long-term one.

Written against the array API like engine/losses.py, so the same code runs on NumPy and CuPy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from array_api_compat import array_namespace

from nst.engine.losses import Array
from nst.engine.terms import PIXELS, TermValue


def temporal_loss(x: Array, warped: Array, weights: Array) -> tuple[float, Array]:
    """(1/D) sum c (x - w)^2 and its gradient (2/D) c (x - w), D = x.size.

    x, warped: (1, 3, H, W) (or (3, H, W)); weights: (1, 1, H, W) (or (1, H, W)), broadcast over the channels.
    The value is accumulated in float64; the gradient has x's namespace, dtype and shape."""
    xp = array_namespace(x, warped, weights)
    if tuple(warped.shape) != tuple(x.shape) or weights.shape[-2:] != x.shape[-2:] or weights.shape[-3] != 1:
        raise ValueError(
            f"temporal loss: image {tuple(x.shape)}, warped {tuple(warped.shape)} and weights {tuple(weights.shape)} "
            "must be (1, 3, H, W), (1, 3, H, W) and (1, 1, H, W)"
        )
    d = 1.0
    for n in x.shape:
        d *= n
    diff = x - warped
    cdiff = weights * diff  # (1, 3, H, W)
    value = float(xp.sum(cdiff * diff, dtype=xp.float64)) / d
    return value, cdiff * (2.0 / d)


@dataclass
class TemporalTerm:
    """gamma * L_temporal against one or more (warped previous output, consistency weights) pairs, on the pixels.

    warped: (1, 3, H, W) each; weights: (1, 1, H, W) each (c for the previous frame; c_long for several)."""

    warped: Sequence[Array]
    weights: Sequence[Array]
    weight: float
    name: str = "temporal"
    layers: tuple[str, ...] = ()

    def __call__(self, feats: Mapping[str, Array], image: Array) -> TermValue:
        value, grad = 0.0, None
        for w, c in zip(self.warped, self.weights, strict=True):
            v, g = temporal_loss(image, w, c)
            value += v
            grad = g if grad is None else grad + g
        return TermValue(value, {} if grad is None else {PIXELS: grad})
