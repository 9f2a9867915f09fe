"""The torch reference: the same J as the engine, differentiated by autograd on the same weights, driven by the same
scipy L-BFGS-B call. The oracle of the parity tests, and the baseline of bench/ and scripts/gpu_check.py."""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.optimize import Bounds, minimize

from ..engine.images import to_nchw
from .torch_vgg import VGGFeatures


def gram_t(a: torch.Tensor) -> torch.Tensor:
    c = a.shape[1]
    A = a.reshape(c, -1)
    return A @ A.T / A.shape[1]


def content_t(a_g, a_c):
    _, c, h, w = a_g.shape
    return ((a_c - a_g) ** 2).sum() / (4.0 * h * w * c)


def style_t(a_g, g_s):
    c = a_g.shape[1]
    return ((g_s - gram_t(a_g)) ** 2).sum() / (4.0 * c * c)


def tv_t(x):
    h, w = x.shape[-2:]
    return (((x[..., 1:, :] - x[..., :-1, :]) ** 2).sum() + ((x[..., :, 1:] - x[..., :, :-1]) ** 2).sum()) / (
        3.0 * h * w
    )


class TorchObjective:
    def __init__(
        self,
        module: VGGFeatures,
        content: np.ndarray,
        styles: list[np.ndarray],
        content_layer: str,
        style_layers: list[str],
        alpha: float,
        beta: float,
        tau: float = 0.0,
        layer_weights: list[float] | None = None,
        blend: list[float] | None = None,
    ):
        self.module, self.cl, self.sl = module, content_layer, list(style_layers)
        self.alpha, self.beta, self.tau = alpha, beta, tau
        self.lam = layer_weights or [1.0 / len(style_layers)] * len(style_layers)
        blend = blend or [1.0 / len(styles)] * len(styles)
        with torch.no_grad():
            self.target_c = module(torch.from_numpy(content))[content_layer]
            self.target_s: dict[str, torch.Tensor] = {}
            for s, b in zip(styles, blend):
                feats = module(torch.from_numpy(s))
                for layer in self.sl:
                    g = gram_t(feats[layer]) * b
                    self.target_s[layer] = g if layer not in self.target_s else self.target_s[layer] + g

    def __call__(
        self,
        image: np.ndarray,
        relu_ties: dict[str, np.ndarray] | None = None,
        pool_ties: dict[str, np.ndarray] | None = None,
    ) -> tuple[float, np.ndarray]:
        """(J, dJ/dimage). relu_ties, pool_ties: another implementation's decisions at near-ties (VGGFeatures)."""
        x = torch.from_numpy(image).requires_grad_(True)
        feats = self.module(x, relu_ties, pool_ties)
        j = self.alpha * content_t(feats[self.cl], self.target_c)
        j = j + self.beta * sum(lam * style_t(feats[n], self.target_s[n]) for n, lam in zip(self.sl, self.lam))
        if self.tau:
            j = j + self.tau * tv_t(x)
        (g,) = torch.autograd.grad(j, x)
        return float(j.detach()), g.numpy()


def reference_stylize(objective: TorchObjective, x0: np.ndarray, iterations: int, maxcor: int = 20):
    """Same minimize call as nst.engine.stylize; returns (history of losses, final x, seconds, evaluations)."""
    shape = x0.shape
    history: list[float] = []
    evals = [0]

    def fun(x):
        evals[0] += 1
        f, g = objective(x.astype(np.float32).reshape(shape))
        return f, g.astype(np.float64).ravel()

    t0 = time.perf_counter()
    res = minimize(
        fun,
        x0.astype(np.float64).ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(0.0, 1.0),
        callback=lambda intermediate_result: history.append(float(intermediate_result.fun)),
        options={"maxiter": iterations, "maxcor": maxcor, "ftol": 0.0, "gtol": 0.0, "maxfun": 3 * iterations + 20},
    )
    return history, res.x.reshape(shape).astype(np.float32), time.perf_counter() - t0, evals[0]


__all__ = ["TorchObjective", "content_t", "gram_t", "reference_stylize", "style_t", "to_nchw", "tv_t"]
