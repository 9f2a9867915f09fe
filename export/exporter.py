"""nst-export's core: weights -> graphs -> validation -> manifest, written to a temporary directory and renamed into
place, so an interrupted or failed export leaves no half-written model directory."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.files import sha256_file
from ..engine.manifest import DEFAULT_MODEL_DIR, GraphFile, LayerSpec, Manifest, write_manifest
from .arch import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, Layer, truncate, vgg_layers
from .errors import ExportError

if TYPE_CHECKING:
    from .validate import Validation
    from .weights import Weights

DEFAULT_OUT = DEFAULT_MODEL_DIR
# Recommended (alpha, beta with auto style-layer weights, beta with equal/given weights) per input convention.
# caffe: measured on ../shared/images (README "Choosing the defaults"; bench/quality.py): with auto weights the style
# term is a mean relative Gram error (order 1), so beta carries the content term's scale (J_content ~ 1e4..1e5).
# torchvision: not measurable offline; its activations are ~k = 100x smaller than caffe's. J_content scales as 1/k^2,
# the auto style term not at all and the equal-weights J_style as 1/k^4: the same balance needs beta_auto / k^2 and
# beta_equal * k^2.
DEFAULT_LOSS_WEIGHTS = {"caffe": (1.0, 2e6, 1e-3), "torchvision": (1.0, 2e2, 10.0)}


@dataclass
class ExportReport:
    path: Path
    files: dict[str, int]  # file name -> bytes
    validation: Validation | None
    seconds: float
    manifest: Manifest | None = None


def _versions() -> dict[str, str]:
    import onnx
    import torch

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    from importlib.metadata import PackageNotFoundError, version

    try:
        nst_version = version("nst")
    except PackageNotFoundError:
        nst_version = "unknown"
    return {"nst": nst_version, "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort_version}


def order_taps(arch: str, content_layer: str, style_layers: list[str] | tuple[str, ...]) -> list[str]:
    index = {layer.name: layer.index for layer in vgg_layers(arch)}
    taps = list(dict.fromkeys([content_layer, *style_layers]))
    truncate(arch, taps)  # validates names
    return sorted(taps, key=index.__getitem__)


def validation_size(layers) -> tuple[int, int]:
    """An odd-sized image large enough for the deepest layer to have a few pixels."""
    s = layers[-1].scale
    return max(67, 4 * s + 3), max(53, 3 * s + 5)


def _manifest(
    arch: str,
    layers: list[Layer],
    taps: list[str],
    content_layer: str,
    style_layers: Any,
    pooling: str,
    w: Weights,
    pre_a: np.ndarray,
    pre_c: np.ndarray,
    files: dict[str, str],
    tmp: Path,
    validation: Validation | None,
) -> Manifest:
    from .onnx_graphs import OPSET, grad_name, saved_outputs

    sha = {k: sha256_file(tmp / f) for k, f in files.items()}
    alpha, beta, beta_equal = DEFAULT_LOSS_WEIGHTS[w.preprocess]
    return Manifest(
        id=f"{arch}-{w.source}-{w.preprocess}-{pooling}-{sha['features'][:12]}",
        arch=arch,
        layers=tuple(LayerSpec(layer.name, layer.out_channels, layer.scale) for layer in layers),
        taps=tuple(taps),
        saved=tuple(saved_outputs(layers, taps, pooling)),
        grad_inputs={t: grad_name(t) for t in taps},
        default_content_layer=content_layer,
        default_style_layers=tuple(dict.fromkeys(style_layers)),
        content_weight=alpha,
        style_weight=beta,
        style_weight_equal=beta_equal,
        pooling=pooling,
        preprocess=w.preprocess,
        preprocess_matrix=tuple(tuple(float(v) for v in row) for row in pre_a),
        preprocess_bias=tuple(map(float, pre_c)),
        weights_source=w.source,
        weights_origin=w.file,
        weights_sha256=w.sha256,
        features=GraphFile(files["features"], sha["features"]),
        gradient=GraphFile(files["gradient"], sha["gradient"]),
        weights=GraphFile(files["weights"], sha["weights"]),
        opset=OPSET,
        exporter=_versions(),
        validation=None
        if validation is None
        else {
            "size": list(validation.size),
            "features_rel_l2_max": max(validation.features_rel_l2.values()),
            "gradient_rel_l2": validation.gradient_rel_l2,
        },
    )


def export_model(
    out_dir: str | Path = DEFAULT_OUT,
    *,
    arch: str = "vgg19",
    content_layer: str = DEFAULT_CONTENT_LAYER,
    style_layers: list[str] | tuple[str, ...] = DEFAULT_STYLE_LAYERS,
    extra_layers: list[str] | tuple[str, ...] = (),
    pooling: str = "max",
    weights: str = "original",
    weights_file: str | Path | None = None,
    preprocess: str | None = None,
    seed: int = 0,
    force: bool = False,
    check: bool = True,
) -> ExportReport:
    from .onnx_graphs import build_graphs  # onnx and torch are imported here, not with the package: its
    from .torch_vgg import VGGFeatures  # constants (layer names, defaults) stay importable without them
    from .validate import validate
    from .weights import load_weights, preprocess_affine

    t0 = time.perf_counter()
    if pooling not in ("max", "avg"):
        raise ValueError(f"unknown pooling {pooling!r}; choose one of: max, avg")
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise ExportError(f"{out_dir} already exists; pass --force to replace it")
    taps = order_taps(arch, content_layer, [*style_layers, *extra_layers])
    layers = truncate(arch, taps)
    w = load_weights(weights, arch, layers, weights_file=weights_file, preprocess=preprocess, seed=seed)
    pre_a, pre_c = preprocess_affine(w.preprocess)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    try:
        files = build_graphs(layers, taps, pooling, w.convs, pre_a, pre_c, tmp)
        validation = None
        if check:
            module = VGGFeatures(layers, w, pooling, taps)
            validation = validate(tmp, files, module, validation_size(layers), seed=seed)
        manifest = _manifest(
            arch, layers, taps, content_layer, style_layers, pooling, w, pre_a, pre_c, files, tmp, validation
        )
        write_manifest(manifest, tmp)
        os.chmod(tmp, 0o755)
        if out_dir.exists():  # only with force: swap, so a failure here still leaves one complete model
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if old.exists() and not out_dir.exists():  # interrupted between the two renames: put the old model back
            old.rename(out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sizes = {f.name: f.stat().st_size for f in sorted(out_dir.iterdir())}
    return ExportReport(out_dir, sizes, validation, time.perf_counter() - t0, manifest)
