"""One stage of a run: the style and content targets at the stage's size, the loss weights, one L-BFGS-B
optimisation from a start image. stylize() chains stages coarse to fine."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .images import resize, to_nchw
from .model import Model
from .objective import LossWeights, Objective, auto_layer_weights, style_targets
from .optimize import Optimised, optimise
from .plan import Plan, Stage

# after each iteration: (stage, iteration, J, weighted terms, evaluations so far, seconds, iterate (1, 3, H, W))
StageCallback = Callable[[Stage, int, float, dict, int, float, np.ndarray], None]


def blas_threads(model: Model) -> Any:
    """On the CPU provider, onnxruntime uses every core between the NumPy steps; OpenBLAS's idle threads spin and take
    those cores (measured at 256 px: NumPy losses 44-204 ms with 2 threads, 52-55 ms with 1; the evaluation 6-9% faster
    quiet and 2.5x faster under load). On CUDA the cores are free for BLAS, so its threads are left alone."""
    if model.provider != "CPUExecutionProvider":
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def stage_targets(
    model: Model, plan: Plan, stage: Stage, styles: Sequence[np.ndarray], cache: dict | None
) -> dict[str, np.ndarray]:
    """The stage's style Grams; with a cache (a dict the caller keeps), runs that share styles, sizes, layers and
    blend (e.g. the cells of an alpha/beta sweep) compute them once."""
    key = (tuple(id(s) for s in styles), stage.style_sizes, plan.style_layers, plan.style_blend)
    if cache is not None and key in cache:
        return cache[key]
    styles_nchw = [to_nchw(resize(np.asarray(s, np.float32), hw)) for s, hw in zip(styles, stage.style_sizes)]
    grams = style_targets(model, styles_nchw, plan.style_blend, plan.style_layers)
    if cache is not None:
        cache[key] = grams
    return grams


def loss_weights(model: Model, plan: Plan, grams: dict[str, np.ndarray]) -> LossWeights:
    """The plan's weights; with auto style-layer weights, lambda_l derived from this stage's style targets."""
    lam = plan.style_layer_weights
    if lam is None:
        lam = auto_layer_weights(grams, plan.style_layers)
    return LossWeights(
        plan.content_layer, plan.style_layers, lam, plan.content_weight, plan.style_weight, plan.options.tv_weight
    )


def run_stage(
    model: Model,
    plan: Plan,
    stage: Stage,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    x0: np.ndarray,
    on_iteration: StageCallback | None = None,
    cache: dict | None = None,
) -> tuple[Optimised, LossWeights, float]:
    """Optimise from x0 (H, W, 3) at the stage's size; (result, the weights used, setup seconds)."""
    t0 = time.perf_counter()
    with blas_threads(model):
        grams = stage_targets(model, plan, stage, styles, cache)
        weights = loss_weights(model, plan, grams)
        objective = Objective(model, to_nchw(resize(content, stage.size)), grams, weights)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()

    def report(i: int, f: float, terms: dict, evals: int, x: np.ndarray) -> None:
        if on_iteration is not None:
            on_iteration(stage, i, f, terms, evals, time.perf_counter() - t1, x)

    with blas_threads(model):
        options = plan.options
        run = optimise(objective, to_nchw(x0), stage.iterations, options.lbfgs_pairs, report, options.bounds)
    return run, weights, setup
