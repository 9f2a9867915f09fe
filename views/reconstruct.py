"""Per-layer reconstructions (Gatys et al., CVPR 2016, Fig. 1): images optimised from white noise to match only the
content representation at one layer, or only the style representation (Grams) of a growing set of layers.

Each is one stylize() run with the other loss weighted 0 and init="noise": the engine's own loss, gradient graph and
optimiser, so what the strip shows is exactly what those layers constrain in a real run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..engine.images import resize
from ..engine.manifest import Manifest, require_taps
from ..engine.model import Model
from ..engine.stylize import stylize
from .grid import Cell, Figure

RELU_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONV_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # Gatys et al.'s Fig. 1, when exported
DEFAULT_SIZE = 192  # working long side: small, a strip of 10 reconstructions is many runs
DEFAULT_ITERATIONS = 100
DEFAULT_CELL = 160  # px per picture in the strip


@dataclass
class Reconstruction:
    kind: str  # "content" | "style"
    layers: tuple[str, ...]  # the one content layer, or the style layer set
    image: np.ndarray  # (H, W, 3) in [0, 1]
    target: np.ndarray  # the image reconstructed, at the same size
    loss: float
    iterations: int
    seconds: float

    @property
    def label(self) -> str:
        return layer_set_label(self.layers)

    @property
    def rel_l2(self) -> float:
        """||reconstruction - target|| / ||target||: how much of the image itself the layer(s) pin down."""
        return float(np.linalg.norm(self.image - self.target) / np.linalg.norm(self.target))


def layer_set_label(layers: Sequence[str]) -> str:
    return layers[0] if len(layers) == 1 else f"{layers[0]}..{layers[-1]}"


def default_content_layers(manifest: Manifest) -> tuple[str, ...]:
    """conv1_1..conv5_1 when the model exports them all (as in the paper's figure), else relu1_1..relu5_1."""
    return CONV_LAYERS if all(x in manifest.taps for x in CONV_LAYERS) else RELU_LAYERS


def cumulative(layers: Sequence[str]) -> list[tuple[str, ...]]:
    """{l1}, {l1, l2}, ...: the style layer sets of the paper's figure."""
    return [tuple(layers[: i + 1]) for i in range(len(layers))]


Callback = Callable[[str, int, int], Callable[[Any], None] | None]  # (label, index, count) -> per-iteration callback


def reconstruct(
    model: Model,
    content: np.ndarray,
    style: np.ndarray,
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    *,
    size: int = DEFAULT_SIZE,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = 0,
    callback: Callback | None = None,
) -> list[Reconstruction]:
    """Content reconstructions at each of content_layers, then style reconstructions from the cumulative sets of
    style_layers, all from the same seeded noise. callback(label, i, n) may return a per-iteration callback for
    run i of n (a progress bar)."""
    require_taps(model.manifest, [*content_layers, *style_layers], str(model.path))
    runs = [("content", (layer,)) for layer in content_layers] + [("style", s) for s in cumulative(style_layers)]
    cache: dict = {}
    out = []
    for i, (kind, layers) in enumerate(runs, start=1):
        source = content if kind == "content" else style  # a style reconstruction takes the style image's shape
        if kind == "content":
            weights: dict[str, Any] = {"content_layer": layers[0], "style_layers": layers, "style_weight": 0.0}
        else:
            weights = {"style_layers": layers, "content_weight": 0.0}
        each = callback(f"{kind} {layer_set_label(layers)}", i, len(runs)) if callback is not None else None
        result = stylize(
            model,
            source,
            [style],
            size=size,
            iterations=iterations,
            init="noise",
            seed=seed,
            callback=each,
            target_cache=cache,
            **weights,
        )
        if result.interrupted:  # Ctrl-C inside the optimisation: stop the whole strip, not just this run
            raise KeyboardInterrupt
        target = resize(np.asarray(source, np.float32), result.image.shape[:2])
        out.append(Reconstruction(kind, layers, result.image, target, result.loss, result.iterations, result.seconds))
    return out


def strip_figure(content: np.ndarray, style: np.ndarray, runs: Sequence[Reconstruction]) -> Figure:
    """Two labelled rows, as in the paper's Fig. 1: the content image then its reconstructions layer by layer; the
    style image then its reconstructions from growing layer sets. Content captions give the relative L2 distance to
    the content."""
    rows: list[list[Cell | None]] = []
    labels = []
    for kind, original in (("content", content), ("style", style)):
        mine = [r for r in runs if r.kind == kind]
        if mine:
            row: list[Cell | None] = [Cell(original, "original")]
            row += [Cell(r.image, f"{r.label}: rel L2 {r.rel_l2:.2f}" if kind == "content" else r.label) for r in mine]
            rows.append(row)
            labels.append(f"{kind}\nfrom\nnoise")
    iters = runs[0].iterations if runs else 0
    return Figure(
        rows,
        f"Reconstructions from white noise, {iters} L-BFGS iterations each: content loss at one "
        "layer; style loss over growing layer sets",
        labels,
    )


def render_strip(
    content: np.ndarray, style: np.ndarray, runs: Sequence[Reconstruction], cell: int = DEFAULT_CELL
) -> Image.Image:
    h, w = content.shape[:2]
    return strip_figure(content, style, runs).draw((cell, max(1, round(cell * min(h / w, 1.0)))))
