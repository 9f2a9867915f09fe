"""J(G) = alpha J_content + beta sum_l lambda_l J_style^l + tau TV, and its gradient w.r.t. the image pixels:
the losses (losses.py, NumPy here) give dJ/dF_l at each tap, the model's gradient graph maps them back to dJ/dimage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .losses import content_loss, gram, style_loss, tv_loss
from .model import Model


@dataclass(frozen=True)
class LossWeights:
    content_layer: str
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...]  # lambda_l: summing to 1, or auto_layer_weights()
    content_weight: float  # alpha
    style_weight: float  # beta
    tv_weight: float  # tau


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


def auto_layer_weights(grams: dict[str, np.ndarray], layers: Sequence[str]) -> tuple[float, ...]:
    """lambda_l = 4 C_l^2 / (L ||G_S^l||^2), so that sum_l lambda_l J_style^l = (1/L) sum_l ||G^l - G_S^l||^2 /
    ||G_S^l||^2: the mean relative Gram error. With equal weights, deep layers (large Gram entries) outweigh relu1_1
    by ~100x and the optimiser leaves colour and fine texture unmatched; relative errors put every layer on one scale.
    Departure from the paper (equal w_l): these weights do not sum to 1, and the recommended beta differs."""
    lam = []
    for layer in layers:
        g = grams[layer].astype(np.float64)  # (C, C)
        lam.append(4.0 * g.shape[0] ** 2 / max(float(np.sum(g * g)), 1e-30) / len(layers))
    return tuple(lam)


class Objective:
    """Callable image (1, 3, H, W) float32 -> (J, dJ/dimage float32, weighted terms)."""

    def __init__(self, model: Model, content: np.ndarray, grams: dict[str, np.ndarray], weights: LossWeights):
        self.model, self.w, self.grams = model, weights, grams
        self.content_target = model.features(content, keep_state=False)[weights.content_layer]

    def __call__(self, image: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        w = self.w
        feats = self.model.features(image)
        grads: dict[str, np.ndarray] = {}
        jc, gc = content_loss(feats[w.content_layer], self.content_target)
        grads[w.content_layer] = gc * float(w.content_weight)
        js = 0.0
        for layer, lam in zip(w.style_layers, w.style_layer_weights):
            v, g = style_loss(feats[layer], self.grams[layer])
            js += lam * v
            g *= float(w.style_weight * lam)
            grads[layer] = g if layer not in grads else grads[layer] + g
        dimage = self.model.vjp(image, grads)
        terms = {"content": w.content_weight * jc, "style": w.style_weight * js, "tv": 0.0}
        if w.tv_weight:
            jt, gt = tv_loss(image)
            terms["tv"] = w.tv_weight * jt
            dimage += float(w.tv_weight) * gt
        return terms["content"] + terms["style"] + terms["tv"], dimage, terms
