"""J(G) = sum_t w_t J_t(G) over a list of loss terms (terms.py), and its gradient w.r.t. the image pixels: the terms
give dJ_t/dF_l at the taps they read (summed per tap) and dJ_t/dG on the pixels; the model's gradient graph maps the
tap gradients back to the image in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .model import Model
from .terms import PIXELS, LossTerm


@dataclass
class Evaluation:
    loss: float  # J
    grad: np.ndarray  # dJ/dimage, (1, 3, H, W) float32
    terms: dict[str, float]  # weighted value per term name; they sum to loss
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # weighted breakdowns (style: per layer)


class Objective:
    """Callable image (1, 3, H, W) float32 -> Evaluation, for any list of terms with distinct names."""

    def __init__(self, model: Model, terms: Sequence[LossTerm]):
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"loss term names must be distinct, got {names}")
        self.model, self.terms = model, list(terms)
        self.layers = tuple(dict.fromkeys(layer for t in terms for layer in t.layers))  # the taps any term reads

    def __call__(self, image: np.ndarray) -> Evaluation:
        feats = self.model.features(image) if self.layers else {}
        tap_grads: dict[str, np.ndarray] = {}
        pixel_grad = None
        terms: dict[str, float] = {}
        parts: dict[str, dict[str, float]] = {}
        for term in self.terms:
            w = float(term.weight)
            out = term(feats, image)
            terms[term.name] = w * out.value
            if out.parts:
                parts[term.name] = {k: w * v for k, v in out.parts.items()}
            for key, g in out.grads.items():
                if key == PIXELS:
                    g = g * w
                    pixel_grad = g if pixel_grad is None else pixel_grad + g
                elif key in tap_grads:
                    tap_grads[key] += g * w
                else:
                    # in place (the LossTerm contract): a weighted copy at 512 px is another ~120 MB of fresh pages
                    # per evaluation, page faults as well as a pass (bench/README.md)
                    g *= w
                    tap_grads[key] = g
        grad = self.model.vjp(image, tap_grads) if tap_grads else np.zeros_like(image, dtype=np.float32)
        if pixel_grad is not None:
            grad += pixel_grad
        return Evaluation(sum(terms.values()), grad, terms, parts)
