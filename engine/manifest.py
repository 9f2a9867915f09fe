"""The model directory's contract: manifest.json as a typed, frozen dataclass. No torch, no onnxruntime.

The exporter builds a Manifest and writes it with `write_manifest`; the engine reads it with `read_manifest`, which
also checks every file's sha256. Nothing else opens manifest.json."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LayerError, ModelError
from .files import atomic_write, sha256_file

MANIFEST_FILE = "manifest.json"
DEFAULT_MODEL_DIR = Path("models") / "vgg19"  # where nst-export writes and every command reads by default
FORMAT = "nst-model"
FORMAT_VERSION = 2  # the model format this engine reads and the exporter writes (2: beta per layer weighting)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the exported network. VGG's kinds fix the geometry: conv 3x3 stride 1 pad 1, pool 2x2 stride 2."""

    name: str  # "conv3_2", "relu3_2", "pool3": the papers' names
    channels: int  # output channels
    scale: int  # output downsampling relative to the image (1, 2, 4, ...)

    @property
    def kind(self) -> str:
        return "conv" if self.name.startswith("conv") else "relu" if self.name.startswith("relu") else "pool"

    @property
    def kernel(self) -> int:
        return 3 if self.kind == "conv" else 2 if self.kind == "pool" else 1

    @property
    def stride(self) -> int:
        return 2 if self.kind == "pool" else 1

    @property
    def padding(self) -> int:
        return 1 if self.kind == "conv" else 0


@dataclass(frozen=True)
class GraphFile:
    file: str
    sha256: str


@dataclass(frozen=True)
class Manifest:
    id: str
    arch: str  # "vgg19" | "vgg16"
    layers: tuple[LayerSpec, ...]  # input to the deepest tap, in order (the network is truncated there)
    taps: tuple[str, ...]  # layers whose activations the features graph returns, in network order
    saved: tuple[str, ...]  # forward state: features-graph outputs besides the taps, read by the gradient graph
    grad_inputs: Mapping[str, str]  # tap -> the gradient graph's input name for dL/d(tap)
    default_content_layer: str
    default_style_layers: tuple[str, ...]
    content_weight: float  # recommended alpha for these weights' activation scale
    style_weight: float  # recommended beta with auto style-layer weights (relative Gram errors)
    style_weight_equal: float  # recommended beta with equal or given style-layer weights (the seeds' J_style)
    pooling: str  # "max" | "avg"
    preprocess: str  # "caffe" | "torchvision": the input convention, applied inside the features graph
    preprocess_matrix: tuple[tuple[float, ...], ...]  # x_net = matrix @ rgb + bias, rgb in [0, 1]
    preprocess_bias: tuple[float, ...]
    weights_source: str  # "original" | "torchvision" | "file" | "random"
    weights_origin: str | None  # the file or URL the weights came from
    weights_sha256: str | None
    features: GraphFile
    gradient: GraphFile
    weights: GraphFile  # conv weights, stored once, read by both graphs as ONNX external data
    opset: int
    exporter: Mapping[str, str | None] = field(default_factory=dict)  # package versions at export
    validation: Mapping[str, Any] | None = None  # relative errors against torch at export
    format_version: int = FORMAT_VERSION

    @property
    def min_size(self) -> int:
        """The smallest image side the deepest layer accepts (its downsampling factor)."""
        return self.layers[-1].scale

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "id": self.id,
            "arch": self.arch,
            "layers": [s.name for s in self.layers],
            "layer_shapes": {s.name: [s.channels, s.scale] for s in self.layers},
            "taps": list(self.taps),
            "tap_channels": {t: self.layer(t).channels for t in self.taps},
            "tap_scales": {t: self.layer(t).scale for t in self.taps},
            "default_content_layer": self.default_content_layer,
            "default_style_layers": list(self.default_style_layers),
            "pooling": self.pooling,
            "preprocess": {
                "name": self.preprocess,
                "matrix": [list(r) for r in self.preprocess_matrix],
                "bias": list(self.preprocess_bias),
                "note": "x_net = matrix @ rgb + bias per pixel, rgb in [0, 1]; inside the features graph",
            },
            "weights": {"source": self.weights_source, "file": self.weights_origin, "sha256": self.weights_sha256},
            "graphs": {
                "features": {
                    "file": self.features.file,
                    "sha256": self.features.sha256,
                    "inputs": ["image"],
                    "outputs": {"taps": list(self.taps), "saved": list(self.saved)},
                },
                "gradient": {
                    "file": self.gradient.file,
                    "sha256": self.gradient.sha256,
                    "inputs": {"grads": dict(self.grad_inputs), "saved": list(self.saved)},
                    "outputs": ["grad_image"],
                },
                "weights": {"file": self.weights.file, "sha256": self.weights.sha256},
            },
            "dynamic_axes": {"image": {"2": "height", "3": "width"}},
            "min_size": self.min_size,
            "opset": self.opset,
            "exporter": dict(self.exporter),
            "defaults": {
                "content_weight": self.content_weight,
                "style_weight": self.style_weight,
                "style_weight_equal": self.style_weight_equal,
            },
            "validation": None if self.validation is None else dict(self.validation),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        """KeyError/TypeError/ValueError for a missing or mistyped field (read_manifest turns them into ModelError)."""
        graphs, pre, weights = d["graphs"], d["preprocess"], d["weights"]
        shapes = d["layer_shapes"]
        layers = tuple(LayerSpec(str(n), int(shapes[n][0]), int(shapes[n][1])) for n in d["layers"])
        taps = tuple(d["taps"])
        return cls(
            id=str(d.get("id", "unknown")),
            arch=str(d["arch"]),
            layers=layers,
            taps=taps,
            saved=tuple(graphs["features"]["outputs"]["saved"]),
            grad_inputs=dict(graphs["gradient"]["inputs"]["grads"]),
            default_content_layer=str(d["default_content_layer"]),
            default_style_layers=tuple(d["default_style_layers"]),
            content_weight=float(d["defaults"]["content_weight"]),
            style_weight=float(d["defaults"]["style_weight"]),
            style_weight_equal=float(d["defaults"]["style_weight_equal"]),
            pooling=str(d["pooling"]),
            preprocess=str(pre["name"]),
            preprocess_matrix=tuple(tuple(float(v) for v in row) for row in pre["matrix"]),
            preprocess_bias=tuple(float(v) for v in pre["bias"]),
            weights_source=str(weights["source"]),
            weights_origin=weights.get("file"),
            weights_sha256=weights.get("sha256"),
            features=GraphFile(graphs["features"]["file"], graphs["features"]["sha256"]),
            gradient=GraphFile(graphs["gradient"]["file"], graphs["gradient"]["sha256"]),
            weights=GraphFile(graphs["weights"]["file"], graphs["weights"]["sha256"]),
            opset=int(d["opset"]),
            exporter=dict(d.get("exporter") or {}),
            validation=d.get("validation"),
            format_version=int(d["format_version"]),
        )


def write_manifest(manifest: Manifest, model_dir: str | Path) -> Path:
    text = json.dumps(manifest.to_json(), indent=2) + "\n"
    return atomic_write(Path(model_dir) / MANIFEST_FILE, lambda f: f.write(text.encode()))


def _load_json(path: Path) -> dict:
    if not path.exists():
        raise ModelError(f"model directory {path} does not exist; run nst-export first (or pass --model DIR)")
    if not path.is_dir():
        raise ModelError(f"{path} is not a model directory; pass the directory nst-export wrote")
    mpath = path / MANIFEST_FILE
    if not mpath.is_file():
        raise ModelError(f"{path} has no {MANIFEST_FILE}; it is not an nst model directory (run nst-export)")
    try:
        data = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{mpath} is not valid JSON ({e}); re-export the model") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{mpath} is not an nst model manifest; re-export the model")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(
            f"{mpath} has format version {version!r}, newer than this nst reads ({FORMAT_VERSION}); "
            "upgrade nst or re-export with this version"
        )
    if version < FORMAT_VERSION:
        raise ModelError(
            f"{mpath} has format version {version}, older than this nst reads ({FORMAT_VERSION}); "
            "re-export the model with nst-export --force"
        )
    return data


def read_manifest(path: str | Path, check_files: bool = True) -> Manifest:
    """Read and check a model directory's manifest, and (check_files) that every file it names is there with the
    recorded sha256. ModelError with a one-line message otherwise."""
    path = Path(path)
    mpath = path / MANIFEST_FILE
    data = _load_json(path)
    try:
        manifest = Manifest.from_json(data)
    except KeyError as e:
        raise ModelError(f"{mpath} lacks {e}; re-export the model") from None
    except (TypeError, ValueError, IndexError) as e:
        raise ModelError(f"{mpath} has a malformed field ({e}); re-export the model") from None
    if check_files:
        for graph in (manifest.features, manifest.gradient, manifest.weights):
            file = path / graph.file
            if not file.is_file():
                raise ModelError(f"{file} is missing; re-export the model")
            if sha256_file(file) != graph.sha256:
                raise ModelError(
                    f"{file} does not match the sha256 in {MANIFEST_FILE} (corrupt or modified); re-export the model"
                )
    return manifest


_VGG_NAME = re.compile(r"^(?:(?:conv|relu)[1-5]_[1-4]|pool[1-5])$")


def require_taps(manifest: Manifest, layers: Sequence[str], model_dir: str = "DIR") -> None:
    """LayerError unless every layer is one of the model's taps: a misspelt name is called unknown; a real VGG layer
    the export left out comes with the nst-export command that adds it."""
    taps = ", ".join(manifest.taps)
    for layer in layers:
        if layer in manifest.taps:
            continue
        if not _VGG_NAME.match(layer):
            raise LayerError(
                f"unknown layer {layer!r}; layers are named as in the papers (conv1_1, relu1_1, ..., "
                f"pool5) and this model exports {taps}"
            )
        missing = [x for x in layers if x not in manifest.taps and _VGG_NAME.match(x)]
        raise LayerError(
            f"layer {layer!r} is not exported by this model (its layers: {taps}); re-export it with "
            f"nst-export --out {model_dir} --force --extra-layers {','.join(missing)} (plus your other "
            "options)"
        )
