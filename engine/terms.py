"""Loss terms: the pieces J is summed from. A term has a name, a weight and a call that returns its unweighted value
and the gradient of that value w.r.t. what it reads, either activations at some taps or the image's pixels.

Objective (objective.py) sums any list of terms, so a new term (a temporal term for video, a region-guided style
term) is a new object in the list, never an edit of the objective. The three terms of Gatys et al. are here:

  content  alpha * J_c(F_c(G), F_c(C))                     at one layer
  style    beta * sum_l lambda_l J_s(gram(F_l(G)), G_S^l)  one term per style target set, `parts` = each layer's share
  tv       tau * TV(G)                                      on the pixels (not in the paper; optional smoothness)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .losses import Array, content_loss, gram, style_loss, tv_loss

if TYPE_CHECKING:
    from .model import Model
    from .plan import Stage

PIXELS = "pixels"  # the key of a gradient w.r.t. the image itself, beside the tap names


@dataclass
class TermValue:
    value: float  # unweighted
    grads: dict[str, Array]  # d value / d input, keyed by tap name ((1, C, h, w) each) or PIXELS ((1, 3, H, W))
    parts: dict[str, float] = field(default_factory=dict)  # an optional breakdown of value (style: per layer)


class LossTerm(Protocol):
    """A term of J. The objective adds weight * value to J and weight * grads to the gradient.

    The tap gradients a call returns belong to the objective, which scales them in place: return fresh arrays
    (as every loss here does), never a view of the features or an array the term keeps."""

    @property
    def name(self) -> str: ...  # unique within an objective; the key of the term in histories, logs and progress

    @property
    def weight(self) -> float: ...

    @property
    def layers(self) -> tuple[str, ...]: ...  # the taps it reads; () for a term on the pixels alone

    def __call__(self, feats: Mapping[str, Array], image: Array) -> TermValue: ...


# builds a term for one stage of a run (its size); stylize(extra_terms=[...]) takes these
TermFactory = Callable[["Stage"], LossTerm]


@dataclass
class ContentTerm:
    target: Array  # (1, C, h, w): the content image's activations at `layer`
    layer: str
    weight: float
    name: str = "content"

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def __call__(self, feats: Mapping[str, Array], image: Array) -> TermValue:
        value, grad = content_loss(feats[self.layer], self.target)
        return TermValue(value, {self.layer: grad})


@dataclass
class StyleTerm:
    """sum_l lambda_l J_s^l against one set of target Grams (a blend of style images is one set)."""

    targets: dict[str, Array]  # layer -> target Gram (C, C)
    layer_weights: tuple[float, ...]  # lambda_l, in the order of `layers`
    weight: float
    layers: tuple[str, ...]
    name: str = "style"

    def __call__(self, feats: Mapping[str, Array], image: Array) -> TermValue:
        grads: dict[str, Array] = {}
        parts: dict[str, float] = {}
        for layer, lam in zip(self.layers, self.layer_weights):
            v, g = style_loss(feats[layer], self.targets[layer], scale=float(lam))
            parts[layer] = lam * v
            grads[layer] = g
        return TermValue(sum(parts.values()), grads, parts)


@dataclass
class TVTerm:
    weight: float
    name: str = "tv"
    layers: tuple[str, ...] = ()

    def __call__(self, feats: Mapping[str, Array], image: Array) -> TermValue:
        value, grad = tv_loss(image)
        return TermValue(value, {PIXELS: grad})


def style_targets(
    model: Model, styles: Sequence[np.ndarray], blend: Sequence[float], layers: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per layer, the blend-weighted average of the style images' Grams. styles: (1, 3, h, w) float32 each."""
    targets: dict[str, np.ndarray] = {}
    for image, w in zip(styles, blend):
        feats = model.features(image, keep_state=False)
        for layer in layers:
            g = gram(feats[layer]) * float(w)  # (C, C); a Python float keeps the dtype in any namespace
            targets[layer] = g if layer not in targets else targets[layer] + g
    return targets


def auto_layer_weights(grams: Mapping[str, Any], layers: Sequence[str]) -> tuple[float, ...]:
    """lambda_l = 4 C_l^2 / (L ||G_S^l||^2), so that sum_l lambda_l J_style^l = (1/L) sum_l ||G^l - G_S^l||^2 /
    ||G_S^l||^2: the mean relative Gram error. With equal weights, deep layers (large Gram entries) outweigh relu1_1
    by ~100x and the optimiser leaves colour and fine texture unmatched; relative errors put every layer on one scale.
    Departure from the paper (equal w_l): these weights do not sum to 1, and the recommended beta differs."""
    lam = []
    for layer in layers:
        g = np.asarray(grams[layer], dtype=np.float64)  # (C, C)
        lam.append(4.0 * g.shape[0] ** 2 / max(float(np.sum(g * g)), 1e-30) / len(layers))
    return tuple(lam)
