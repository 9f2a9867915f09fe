"""One stage of a run: the loss terms at the stage's size (content and style targets, weights, any extra terms), one
L-BFGS-B optimisation from a start image. stylize() chains stages coarse to fine."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .images import resize, to_nchw
from .model import Model
from .objective import Objective
from .optimize import Optimised, Progress, optimise
from .plan import Plan, Stage
from .region_plan import stage_mask
from .regions import RegionStyleTerm, layer_masks, source_gram
from .terms import ContentTerm, LossTerm, StyleTerm, TermFactory, TVTerm, auto_layer_weights, style_targets


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


def region_targets(
    model: Model, plan: Plan, stage: Stage, index: int, style: np.ndarray, cache: dict | None
) -> dict[str, np.ndarray]:
    """Style image `index`'s Grams at this stage, from its source mask's part of the image (the guided Gram) or all
    of it; cached like stage_targets."""
    assert plan.regions is not None
    source = plan.regions.source_masks[index]
    hw = stage.style_sizes[index]
    key = ("region", id(style), hw, plan.style_layers, id(source), plan.regions.method)
    if cache is not None and key in cache:
        return cache[key]
    feats = model.features(to_nchw(resize(np.asarray(style, np.float32), hw)), keep_state=False)
    masks = (
        None
        if source is None
        else layer_masks(stage_mask(source, hw), model.manifest, plan.style_layers, plan.regions.method)
    )
    grams = {la: source_gram(feats[la], None if masks is None else masks[la]) for la in plan.style_layers}
    if cache is not None:
        cache[key] = grams
    return grams


def region_terms(
    model: Model, plan: Plan, stage: Stage, styles: Sequence[np.ndarray], cache: dict | None
) -> list[LossTerm]:
    """One RegionStyleTerm per style image, "style:1", "style:2", ..., each confined to its mask at this stage's size,
    with auto lambda_l from its own targets. Weight beta * n * blend_i * share_i, share_i = the mask's mean over the
    picture: a region's pull per pixel is that of one style over the whole picture at the same beta (the guided Gram
    is normalised by the region's mass, so its gradient per pixel grows as 1/share), and --style-blend (summing to 1,
    equal by default) scales each style's term around 1."""
    assert plan.regions is not None
    terms: list[LossTerm] = []
    n = len(styles)
    for i, (style, blend) in enumerate(zip(styles, plan.style_blend)):
        targets = region_targets(model, plan, stage, i, style, cache)
        lam = plan.style_layer_weights or auto_layer_weights(targets, plan.style_layers)
        mask = stage_mask(plan.regions.masks[i], stage.size)
        masks = layer_masks(mask, model.manifest, plan.style_layers, plan.regions.method)
        weight = plan.style_weight * n * blend * float(mask.mean(dtype=np.float64))
        terms.append(RegionStyleTerm(f"style:{i + 1}", weight, plan.style_layers, masks, targets, lam))
    return terms


def stage_terms(
    model: Model,
    plan: Plan,
    stage: Stage,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    extra: Sequence[TermFactory] = (),
    cache: dict | None = None,
) -> list[LossTerm]:
    """The plan's terms at the stage's size: content, style (auto lambda_l from this stage's targets; with style
    masks, one region term per style instead), TV when weighted, then the extra terms built for this stage."""
    target = model.features(to_nchw(resize(content, stage.size)), keep_state=False)[plan.content_layer]
    terms: list[LossTerm] = [ContentTerm(target, plan.content_layer, plan.content_weight)]
    if plan.regions is not None:
        terms += region_terms(model, plan, stage, styles, cache)
    else:
        grams = stage_targets(model, plan, stage, styles, cache)
        lam = plan.style_layer_weights or auto_layer_weights(grams, plan.style_layers)
        terms.append(StyleTerm(grams, lam, plan.style_weight, plan.style_layers))
    if plan.tv_weight:
        terms.append(TVTerm(plan.tv_weight))
    return terms + [make(stage) for make in extra]


def run_stage(
    model: Model,
    plan: Plan,
    stage: Stage,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    x0: np.ndarray,
    on_iteration: Callable[[Progress], None] | None = None,
    cache: dict | None = None,
    extra: Sequence[TermFactory] = (),
) -> tuple[Optimised, list[LossTerm], float]:
    """Optimise from x0 (H, W, 3) at the stage's size; (result, the terms used, setup seconds)."""
    t0 = time.perf_counter()
    with blas_threads(model):
        terms = stage_terms(model, plan, stage, content, styles, extra, cache)
        objective = Objective(model, terms)
    setup = time.perf_counter() - t0

    def report(p: Progress) -> None:
        p.stage, p.stages, p.size, p.iterations = stage.index, len(plan.stages), stage.size, stage.iterations
        if on_iteration is not None:
            on_iteration(p)

    with blas_threads(model):
        run = optimise(objective, to_nchw(x0), stage.iterations, plan.lbfgs_pairs, report, plan.bounds, plan.optimizer)
    return run, terms, setup
