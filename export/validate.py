"""Numerical validation of freshly written graphs against the torch module (forward, and autograd for the VJP)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arch import Layer
from .errors import ExportValidationError
from .onnx_graphs import GRAD_IMAGE, IMAGE, grad_name, mask_name, size_name
from .torch_vgg import VGGFeatures, features_np, vjp_np

FEATURES_TOL = 1e-5  # relative L2 per tapped layer
GRADIENT_TOL = 1e-4  # relative L2 of dL/dimage


@dataclass
class Validation:
    size: tuple[int, int]
    features_rel_l2: dict[str, float]
    gradient_rel_l2: float


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm((a - b).ravel()) / max(np.linalg.norm(b.ravel()), 1e-30))


def relu_ties(outputs: dict[str, np.ndarray], layers: list[Layer]) -> dict[str, np.ndarray]:
    """The ReLU signs a features graph decided (tapped outputs, saved masks), per ReLU, for VGGFeatures' relu_ties.
    A ReLU folded into the max pool above it is known only at its windows' first maxima, the one place its gradient
    flows to; elsewhere it counts as 0 there (which only moves near-zero values)."""
    ties: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        if layer.kind != "relu":
            continue
        if layer.name in outputs:
            ties[layer.name] = outputs[layer.name] > 0
        elif mask_name(layer.name) in outputs:
            ties[layer.name] = outputs[mask_name(layer.name)]
        elif i + 1 < len(layers) and mask_name(layers[i + 1].name) in outputs:
            pool = layers[i + 1].name
            m4 = outputs[mask_name(pool)]  # (1, 4C, h, w); channel (2 dy + dx) C + c, as SpaceToDepth orders them
            _, c4, h, w = m4.shape
            up = m4.reshape(1, 2, 2, c4 // 4, h, w).transpose(0, 3, 4, 1, 5, 2).reshape(1, c4 // 4, 2 * h, 2 * w)
            full = np.zeros((1, c4 // 4, *(int(v) for v in outputs[size_name(pool)])), bool)
            full[..., : 2 * h, : 2 * w] = up
            ties[layer.name] = full
    return ties


def pool_ties(outputs: dict[str, np.ndarray], layers: list[Layer]) -> dict[str, np.ndarray]:
    """The first-max masks a features graph saved, per max pool, for VGGFeatures' pool_ties."""
    return {
        layer.name: outputs[mask_name(layer.name)]
        for layer in layers
        if layer.kind == "pool" and mask_name(layer.name) in outputs
    }


def validate(
    model_dir: Path, files: dict[str, str], module: VGGFeatures, size: tuple[int, int], seed: int = 0
) -> Validation:
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    image = rng.random((1, 3, *size), dtype=np.float32)
    image[:, :, : size[0] // 3, : size[1] // 3] = 0.5  # a flat patch: max-pool ties everywhere
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    cpu = ["CPUExecutionProvider"]
    feats_sess = ort.InferenceSession(str(model_dir / files["features"]), opts, providers=cpu)
    grad_sess = ort.InferenceSession(str(model_dir / files["gradient"]), opts, providers=cpu)
    names = [o.name for o in feats_sess.get_outputs()]
    outs = dict(zip(names, feats_sess.run(names, {IMAGE: image})))
    ref = features_np(module, image)
    errs = {t: rel_l2(outs[t], ref[t]) for t in module.taps}
    bad = {t: e for t, e in errs.items() if not e <= FEATURES_TOL}
    if bad:
        raise ExportValidationError(f"features graph differs from torch at {bad} (relative L2 > {FEATURES_TOL})")
    grads = {t: rng.standard_normal(ref[t].shape).astype(np.float32) for t in module.taps}
    feed = {grad_name(t): g for t, g in grads.items()}
    feed.update({i.name: outs[i.name] for i in grad_sess.get_inputs() if i.name not in feed})
    (dx,) = grad_sess.run([GRAD_IMAGE], feed)
    ties = {"relu_ties": relu_ties(outs, module.layers), "pool_ties": pool_ties(outs, module.layers)}
    err = rel_l2(dx, vjp_np(module, image, grads, **ties))
    if not err <= GRADIENT_TOL:
        raise ExportValidationError(
            f"gradient graph differs from torch autograd: relative L2 {err:.3g} > {GRADIENT_TOL}"
        )
    return Validation(size, errs, err)
