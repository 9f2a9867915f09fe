"""The pure core: stylize(model, content, styles, options) -> StylizeResult. Arrays in, arrays out; progress leaves
through a callback carrying a Progress; no printing, no files.

A run is a plan's stages, coarse to fine: each stage optimises at its size from the previous stage's result
upsampled (Lanczos), with the style targets recomputed at that size, so the style's scale relative to the content is
the same at every stage. Colour preservation wraps the whole run (engine/color.py)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import color
from .errors import NonFiniteError
from .images import resize
from .model import Model
from .optimize import Optimised
from .options import INIT_KEYWORDS, OptionError, StylizeOptions, mix_ratio
from .plan import Plan, Stage, plan_run
from .stage import run_stage


@dataclass
class Progress:
    iteration: int  # within the stage
    iterations: int  # of the stage
    loss: float
    content: float  # weighted terms: content + style + tv == loss
    style: float
    tv: float
    evaluations: int  # within the stage
    elapsed: float  # seconds since the stage's optimisation started
    stage: int = 1
    stages: int = 1
    size: tuple[int, int] = (0, 0)  # the stage's (h, w)
    _x: np.ndarray | None = field(default=None, repr=False)
    _finish: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def image(self) -> np.ndarray:
        """The current iterate as (H, W, 3) float32, as it would be written (colours recombined with
        preserve_colors=luminance); computed on demand: most callbacks never need it."""
        assert self._x is not None
        image = self._x[0].transpose(1, 2, 0).astype(np.float32)
        return self._finish(image) if self._finish is not None else image


@dataclass
class StylizeResult:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1] at the final size: the last stage's lowest-loss image
    loss: float  # of the last stage run
    terms: dict[str, float]
    history: list[dict] = field(default_factory=list)  # per iteration: stage, iteration, loss, content, style, tv
    iterations: int = 0  # over all stages
    evaluations: int = 0
    success: bool = True  # False if scipy stopped abnormally (reported, not raised)
    stopped: bool = False  # True if the callback asked to stop (StopIteration)
    interrupted: bool = False  # True if KeyboardInterrupt (Ctrl-C) ended the run; image is still the best so far
    message: str = ""
    seconds: float = 0.0  # the optimisation loops alone
    setup_seconds: float = 0.0  # style/content targets
    provider: str = ""
    plan: Plan | None = None
    stages: list[dict] = field(default_factory=list)  # per stage run: stage, size, iterations, seconds, loss, lambda
    stage: int = 0  # the stage the run ended in (< len(plan.stages) when interrupted or stopped early)


def make_init(init: str, content: np.ndarray, seed: int, image: np.ndarray | None = None) -> np.ndarray:
    """'content', 'noise' (seeded uniform, the seeds' random G), 'mix:R' (R noise + (1-R) content), or `image` (any
    size, resized to the content's) when init names an image."""
    if image is not None:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"init image must be (H, W, 3), got {image.shape}")
        return resize(image.astype(np.float32), content.shape[:2])
    rng = np.random.default_rng(seed)
    if init == "content":
        return content.copy()
    if init == "noise":
        return rng.random(content.shape, dtype=np.float32)
    if init.startswith("mix:"):
        r = mix_ratio(init)
        return (r * rng.random(content.shape, dtype=np.float32) + (1 - r) * content).astype(np.float32)
    raise OptionError("init", f"{init!r} is unknown; choose one of: {', '.join(INIT_KEYWORDS)}, mix:R, or an image")


def resolve_options(options: StylizeOptions | None, overrides: dict[str, Any]) -> tuple[StylizeOptions, Any]:
    """options with keyword overrides applied; an `init` array becomes the init image (returned beside)."""
    init_image = None
    if isinstance(overrides.get("init"), np.ndarray):
        init_image, overrides["init"] = overrides["init"], "image"
    for key in ("style_layers", "style_layer_weights", "style_blend"):
        if overrides.get(key) is not None and not isinstance(overrides[key], str):
            overrides[key] = tuple(overrides[key])
    return dataclasses.replace(options or StylizeOptions(), **overrides), init_image


def _colour_inputs(mode: str, content: np.ndarray, styles: Sequence[np.ndarray], init: np.ndarray | None) -> tuple:
    """What the optimisation sees under preserve_colors: grey luminance images, or colour-matched styles."""
    if mode == "luminance":
        grey_init = None if init is None else color.grey(color.luminance(init))
        return color.grey(color.luminance(content)), [color.match_luminance(s, content) for s in styles], grey_init
    if mode == "histogram":
        return content, [color.match_histogram(s, content) for s in styles], init
    return content, list(styles), init


def _stage_record(stage: Stage, run: Optimised, lam: tuple[float, ...]) -> dict:
    return {
        "stage": stage.index,
        "size": list(stage.size),
        "iterations": run.iterations,
        "evaluations": run.evaluations,
        "seconds": run.seconds,
        "lbfgs_seconds": run.seconds - run.objective_seconds,
        "loss": run.loss,
        "terms": run.terms,
        "style_layer_weights": list(lam),
        "message": run.message,
    }


def stylize(
    model: Model,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    options: StylizeOptions | None = None,
    *,
    callback: Callable[[Progress], None] | None = None,
    init_image: np.ndarray | None = None,
    plan: Plan | None = None,
    target_cache: dict | None = None,
    **overrides: Any,
) -> StylizeResult:
    """Minimise J(G) over the pixels of G with L-BFGS-B (bounds [0, 1]), stage by stage.

    content: (H, W, 3) float32 RGB in [0, 1], any size (resized so its long side is options.size); styles: any sizes
    (resized so their long side is the content's long side x style_scale, at every stage). Options may also be given
    as keywords (stylize(model, c, [s], iterations=100)); weights default to the model's manifest. init_image: the
    start image when options.init names one. plan: from plan_run (else planned here, without a memory check).
    target_cache: a dict kept across calls on the same style arrays, so their Grams are computed once. The callback
    gets a Progress after every iteration and may raise StopIteration to stop cleanly (then stopped=True).
    Ctrl-C ends the run with interrupted=True and the best image so far, resized to the final size."""
    options, array_init = resolve_options(options, dict(overrides))
    init_image = array_init if array_init is not None else init_image
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 3 or content.shape[2] != 3:
        raise ValueError(f"content must be (H, W, 3), got {content.shape}")
    if plan is None:
        plan = plan_run(model.manifest, content.shape[:2], [s.shape[:2] for s in styles], options)
    seen, run_styles, init_image = _colour_inputs(options.preserve_colors, content, styles, init_image)
    luminance_only = options.preserve_colors == "luminance"

    def finish(image: np.ndarray, size: tuple[int, int] = plan.size) -> np.ndarray:
        """An iterate as it is written: at `size`, with the content's colours when luminance-only."""
        image = resize(image, size)
        return color.recombine(image, resize(content, size)) if luminance_only else image

    def on_iteration(stage: Stage, i: int, f: float, terms: dict, evals: int, secs: float, x: np.ndarray) -> None:
        if callback is not None:
            at_size = (lambda im: finish(im, stage.size)) if luminance_only else None
            callback(
                Progress(
                    i,
                    stage.iterations,
                    f,
                    terms["content"],
                    terms["style"],
                    terms["tv"],
                    evals,
                    secs,
                    stage.index,
                    len(plan.stages),
                    stage.size,
                    x,
                    at_size,
                )
            )

    x = make_init(options.init, resize(seen, plan.stages[0].size), options.seed, init_image)
    result = StylizeResult(image=x, loss=math.nan, terms={}, provider=model.provider, plan=plan)
    for stage in plan.stages:
        try:
            if stage.index > 1:
                x = resize(x, stage.size)  # Lanczos upsampling of the previous stage's result, clipped to [0, 1]
            run, weights, setup = run_stage(model, plan, stage, seen, run_styles, x, on_iteration, target_cache)
        except NonFiniteError as e:
            e.image = None if e.image is None else finish(e.image)
            e.history = result.history + [{"stage": stage.index, **h} for h in e.history]
            raise
        except KeyboardInterrupt:  # while a later stage prepared its targets: keep the stage before
            if stage.index == 1:
                raise
            result.interrupted, result.success, result.message = True, False, "interrupted"
            break
        _accumulate(result, stage, run, weights.style_layer_weights, setup)
        x = run.image
        if run.interrupted or run.stopped:
            break
    result.image = finish(x)
    return result


def _accumulate(result: StylizeResult, stage: Stage, run: Optimised, lam: tuple[float, ...], setup: float) -> None:
    result.history += [{"stage": stage.index, **h} for h in run.history]
    result.stages.append(_stage_record(stage, run, lam))
    result.iterations += run.iterations
    result.evaluations += run.evaluations
    result.seconds += run.seconds
    result.setup_seconds += setup
    result.loss, result.terms, result.message, result.stage = run.loss, run.terms, run.message, stage.index
    result.stopped, result.interrupted = run.stopped, run.interrupted
    result.success = result.success and run.status in (0, 1) and not run.stopped and not run.interrupted
