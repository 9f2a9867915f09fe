"""The truncated VGG as a torch module: the oracle the ONNX graphs are validated against (forward and autograd)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .arch import Layer
from .weights import Weights, preprocess_affine

# Where two implementations' float rounding can decide a branch: a ReLU input within TIE_TOL * max|input| of 0, or a
# max-pool window whose top values are within TIE_TOL * max|input| of each other. The convolutions of torch and
# onnxruntime agree to ~1e-7 relative, so 1e-5 is far above rounding and far below any real difference.
TIE_TOL = 1e-5


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

    def forward(
        self,
        image: torch.Tensor,
        relu_ties: dict[str, np.ndarray] | None = None,
        pool_ties: dict[str, np.ndarray] | None = None,
    ) -> dict[str, torch.Tensor]:
        """relu_ties: another implementation's ReLU outputs. Where a ReLU input is within float rounding of 0 its sign
        (and so the subgradient) can legitimately differ between implementations; there the module adopts theirs, so
        a gradient comparison measures real differences instead of one flipped unit. pool_ties: their max-pool masks,
        the same for a window whose maximum is a near-tie (see _max_pool_adopting)."""
        x = torch.einsum("oc,nchw->nohw", self.pre_a, image) + self.pre_c[None, :, None, None]
        out = {}
        for layer in self.layers:
            if layer.kind == "conv":
                x = self.convs[layer.name](x)
            elif layer.kind == "relu" and relu_ties is not None and layer.name in relu_ties:
                near_zero = x.detach().abs() <= TIE_TOL * x.detach().abs().amax()
                theirs = torch.from_numpy(relu_ties[layer.name] > 0)
                x = x * torch.where(near_zero, theirs, x.detach() > 0).to(x.dtype)
            elif layer.kind == "relu":
                x = F.relu(x)
            elif self.pooling == "max" and pool_ties is not None and layer.name in pool_ties:
                x = _max_pool_adopting(x, pool_ties[layer.name])
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            if layer.name in self.taps:
                out[layer.name] = x
        return out


def _max_pool_adopting(x: torch.Tensor, theirs: np.ndarray) -> torch.Tensor:
    """2x2 max pool whose gradient goes where another implementation's first-max mask says, in the windows where
    that mask picks one position and its value is within rounding of torch's maximum: a near-tie, or an exact tie in
    torch that their convolution's rounding split, decided differently. theirs: (1, 4C, h, w) bool, channel
    (2 dy + dx) C + c as SpaceToDepth orders them; a window with no position set (a ReLU folded into the mask zeroed
    it) or several (not a first-max mask) keeps torch's choice. The forward value stays torch's max. That the graphs
    pick the first maximum at exact ties is checked on their own values (tests/test_export.py), not here."""
    y, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    n, c, h, w = y.shape
    win = x[..., : 2 * h, : 2 * w].reshape(n, c, h, 2, w, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, 4)
    t = torch.from_numpy(theirs).reshape(n, 4, c, h, w).permute(0, 2, 3, 4, 1)  # (1, C, h, w, 4)
    row, col = idx // x.shape[-1], idx % x.shape[-1]
    k = 2 * (row - 2 * torch.arange(h)[:, None]) + col - 2 * torch.arange(w)[None, :]
    ours = F.one_hot(k, 4).bool()
    gap = y.detach() - (win.detach() * t).sum(-1)
    adopt = (t.sum(-1) == 1) & (gap <= TIE_TOL * x.detach().abs().amax())
    if not bool(adopt.any()):
        return y
    picked = (win * torch.where(adopt[..., None], t, ours).to(x.dtype)).sum(-1)
    return picked + (y - picked).detach()


def features_np(module: VGGFeatures, image: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {k: v.numpy() for k, v in module(torch.from_numpy(image)).items()}


def vjp_np(
    module: VGGFeatures,
    image: np.ndarray,
    grads: dict[str, np.ndarray],
    relu_ties: dict[str, np.ndarray] | None = None,
    pool_ties: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """torch.autograd.grad of sum_l <g_l, F_l(image)> w.r.t. the image: the quantity the gradient graph computes."""
    x = torch.from_numpy(image).requires_grad_(True)
    feats = module(x, relu_ties, pool_ties)
    total = sum((feats[k] * torch.from_numpy(g)).sum() for k, g in grads.items())
    (dx,) = torch.autograd.grad(total, x)
    return dx.numpy()
