"""nst-export's core: weights -> graphs -> validation -> manifest, written to a temporary directory and renamed into
place, so an interrupted or failed export leaves no half-written model directory."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .arch import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, truncate, vgg_layers
from .onnx_graphs import GRAD_IMAGE, IMAGE, OPSET, build_graphs, grad_name, saved_outputs
from .validate import Validation, validate
from .weights import load_weights, preprocess_affine, sha256_file

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_OUT = Path("models") / "vgg19"
# Recommended alpha, beta for the engine's loss definitions, per input convention (activation scale).
# caffe: chosen by looking at runs on ../shared/images (README "Choosing alpha and beta"). torchvision: not measurable
# offline; derived from caffe's by the ~100x activation-scale ratio k: J_c scales as k^2 and J_s as k^4, so the same
# balance needs beta / k^2.
DEFAULT_LOSS_WEIGHTS = {"caffe": (1.0, 1e-3), "torchvision": (1.0, 10.0)}


class ExportError(Exception):
    """The export could not be done as asked (e.g. the output directory exists)."""


@dataclass
class ExportReport:
    path: Path
    files: dict[str, int]  # file name -> bytes
    validation: Validation | None
    seconds: float
    manifest: dict = field(default_factory=dict)


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


def export_model(out_dir: str | Path = DEFAULT_OUT, *, arch: str = "vgg19", content_layer: str = DEFAULT_CONTENT_LAYER,
                 style_layers: list[str] | tuple[str, ...] = DEFAULT_STYLE_LAYERS,
                 extra_layers: list[str] | tuple[str, ...] = (), pooling: str = "max",
                 weights: str = "original", weights_file: str | Path | None = None, preprocess: str | None = None,
                 seed: int = 0, force: bool = False, check: bool = True) -> ExportReport:
    from .torch_vgg import VGGFeatures

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
        sha = {k: sha256_file(tmp / f) for k, f in files.items()}
        alpha, beta = DEFAULT_LOSS_WEIGHTS[w.preprocess]
        by_name = {layer.name: layer for layer in layers}
        manifest = {
            "format": "nst-model",
            "format_version": FORMAT_VERSION,
            "id": f"{arch}-{w.source}-{w.preprocess}-{pooling}-{sha['features'][:12]}",
            "arch": arch,
            "layers": [layer.name for layer in layers],
            "taps": taps,
            "tap_channels": {t: by_name[t].out_channels for t in taps},
            "tap_scales": {t: by_name[t].scale for t in taps},
            # every layer's (channels, downsampling): lets the engine estimate memory before allocating
            "layer_shapes": {layer.name: [layer.out_channels, layer.scale] for layer in layers},
            "default_content_layer": content_layer,
            "default_style_layers": list(dict.fromkeys(style_layers)),
            "pooling": pooling,
            "preprocess": {"name": w.preprocess, "matrix": pre_a.tolist(), "bias": pre_c.tolist(),
                           "note": "x_net = matrix @ rgb + bias per pixel, rgb in [0, 1]; inside the features graph"},
            "weights": {"source": w.source, "file": w.file, "sha256": w.sha256},
            "graphs": {
                "features": {"file": files["features"], "sha256": sha["features"], "inputs": [IMAGE],
                             "outputs": {"taps": taps, "saved": saved_outputs(layers, taps)}},
                "gradient": {"file": files["gradient"], "sha256": sha["gradient"],
                             "inputs": {"grads": {t: grad_name(t) for t in taps},
                                        "saved": [layer.name for layer in layers if layer.kind == "relu"]},
                             "outputs": [GRAD_IMAGE]},
                "weights": {"file": files["weights"], "sha256": sha["weights"]},
            },
            "dynamic_axes": {"image": {"2": "height", "3": "width"}},
            "min_size": layers[-1].scale,
            "opset": OPSET,
            "exporter": _versions(),
            "defaults": {"content_weight": alpha, "style_weight": beta},
            "validation": None if validation is None else {
                "size": list(validation.size), "features_rel_l2_max": max(validation.features_rel_l2.values()),
                "gradient_rel_l2": validation.gradient_rel_l2},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
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
