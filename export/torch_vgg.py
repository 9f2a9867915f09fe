"""The truncated VGG as a torch module: the oracle the ONNX graphs are validated against (forward and autograd)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .arch import Layer
from .weights import Weights, preprocess_affine


class VGGFeatures(nn.Module):
    """image (1, 3, H, W) RGB in [0, 1] -> {tap: activation}. Preprocessing is part of the module, as in the graphs."""

    pre_a: torch.Tensor  # registered buffers: (3, 3) and (3,)
    pre_c: torch.Tensor

    def __init__(self, layers: list[Layer], weights: Weights, pooling: str, taps: list[str]):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"unknown pooling {pooling!r}; choose one of: max, avg")
        self.layers, self.pooling, self.taps = layers, pooling, list(taps)
        a, c = preprocess_affine(weights.preprocess)
        self.register_buffer("pre_a", torch.from_numpy(a))
        self.register_buffer("pre_c", torch.from_numpy(c))
        self.convs = nn.ModuleDict()
        for layer in layers:
            if layer.kind == "conv":
                conv = nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1)
                w, b = weights.convs[layer.name]
                conv.weight.data.copy_(torch.from_numpy(w))
                assert conv.bias is not None
                conv.bias.data.copy_(torch.from_numpy(b))
                self.convs[layer.name] = conv
        self.requires_grad_(False)

    def forward(self, image: torch.Tensor, relu_ties: dict[str, np.ndarray] | None = None) -> dict[str, torch.Tensor]:
        """relu_ties: another implementation's ReLU outputs. Where a ReLU input is within float rounding of 0 its sign
        (and so the subgradient) can legitimately differ between implementations; there the module adopts theirs, so
        a gradient comparison measures real differences instead of one flipped unit."""
        x = torch.einsum("oc,nchw->nohw", self.pre_a, image) + self.pre_c[None, :, None, None]
        out = {}
        for layer in self.layers:
            if layer.kind == "conv":
                x = self.convs[layer.name](x)
            elif layer.kind == "relu" and relu_ties is not None and layer.name in relu_ties:
                near_zero = x.detach().abs() <= 1e-5 * x.detach().abs().amax()
                theirs = torch.from_numpy(relu_ties[layer.name] > 0)
                x = x * torch.where(near_zero, theirs, x.detach() > 0).to(x.dtype)
            elif layer.kind == "relu":
                x = F.relu(x)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            if layer.name in self.taps:
                out[layer.name] = x
        return out


def features_np(module: VGGFeatures, image: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {k: v.numpy() for k, v in module(torch.from_numpy(image)).items()}


def vjp_np(
    module: VGGFeatures, image: np.ndarray, grads: dict[str, np.ndarray], relu_ties: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """torch.autograd.grad of sum_l <g_l, F_l(image)> w.r.t. the image: the quantity the gradient graph computes."""
    x = torch.from_numpy(image).requires_grad_(True)
    feats = module(x, relu_ties)
    total = sum((feats[k] * torch.from_numpy(g)).sum() for k, g in grads.items())
    (dx,) = torch.autograd.grad(total, x)
    return dx.numpy()
