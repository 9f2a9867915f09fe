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
from .optimize import Optimised, Progress
from .options import INIT_KEYWORDS, OptionError, StylizeOptions, mix_ratio
from .plan import Plan, Stage, plan_run
from .stage import run_stage
from .terms import LossTerm, TermFactory


@dataclass
class StylizeResult:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1] at the final size: the last stage's lowest-loss image
    loss: float  # of the last stage run
    terms: dict[str, float]  # weighted value per loss term at the image; they sum to loss
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # weighted breakdowns (style: per layer)
    history: list[dict] = field(default_factory=list)  # per iteration: Progress.entry() (stage, iteration, loss, terms)
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
    early_stop: str | None = None  # why a stage's optimisation ended before its iterations, in words


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


def _stage_record(stage: Stage, run: Optimised, terms: Sequence[LossTerm]) -> dict:
    return {
        "stage": stage.index,
        "size": list(stage.size),
        "iterations": run.iterations,
        "evaluations": run.evaluations,
        "seconds": run.seconds,
        "lbfgs_seconds": run.lbfgs_seconds,
        "lbfgs_setup_seconds": run.lbfgs_setup_seconds,
        "loss": run.loss,
        "terms": run.terms,
        "parts": run.parts,
        "weights": {t.name: t.weight for t in terms},
        # lambda_l of each term that weights layers (the style terms)
        "layer_weights": {
            t.name: dict(zip(t.layers, lam)) for t in terms if (lam := getattr(t, "layer_weights", None)) is not None
        },
        "message": run.message,
        "early_stop": run.early_stop,
    }


def _check_plan(plan: Plan, options: StylizeOptions | None, overrides: dict[str, Any]) -> None:
    """A plan is the run's one source of settings: options given beside it must be the ones it was made from."""
    if options is None and not overrides:
        return
    asked, _ = resolve_options(options if options is not None else plan.options, dict(overrides))
    if asked != plan.options:
        differ = [f.name for f in dataclasses.fields(asked) if getattr(asked, f.name) != getattr(plan.options, f.name)]
        raise OptionError(
            "plan",
            f"was made from other options than those given ({', '.join(differ)} differ); pass the options to "
            "plan_run, or pass the plan alone",
        )


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
    extra_terms: Sequence[TermFactory] = (),
    style_masks: Sequence[np.ndarray | None] | None = None,
    style_source_masks: Sequence[np.ndarray | None] | None = None,
    **overrides: Any,
) -> StylizeResult:
    """Minimise J(G) over the pixels of G with L-BFGS (pixels kept in [0, 1]), stage by stage.

    content: (H, W, 3) float32 RGB in [0, 1], any size (resized so its long side is options.size); styles: any sizes
    (resized so their long side is the content's long side x style_scale, at every stage). Options may also be given
    as keywords (stylize(model, c, [s], iterations=100)); weights default to the model's manifest. init_image: the
    start image when options.init names one. plan: from plan_run (else planned here, without a memory check).
    target_cache: a dict kept across calls on the same style arrays, so their Grams are computed once. extra_terms:
    loss terms added to the plan's (each built per stage by its factory, e.g. a temporal term). style_masks: per style
    image, the region of the output it styles, (H, W) in [0, 1] in the content's frame, or None for all of it;
    style_source_masks: per style image, the part of it the style is taken from (engine/region_plan.py; with a plan,
    give them to plan_run instead). The callback gets a
    Progress after every iteration and may raise StopIteration to stop cleanly (then stopped=True). With a plan,
    the plan is the one source of settings: options or keywords that disagree with it raise OptionError.
    Ctrl-C ends the run with interrupted=True and the best image so far, resized to the final size."""
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 3 or content.shape[2] != 3:
        raise ValueError(f"content must be (H, W, 3), got {content.shape}")
    if plan is not None:
        _check_plan(plan, options, overrides)
        if style_masks is not None or style_source_masks is not None:
            raise OptionError("plan", "carries the style masks; give them to plan_run, or pass them without a plan")
    else:
        resolved, _ = resolve_options(options, dict(overrides))
        plan = plan_run(
            model.manifest,
            content.shape[:2],
            [s.shape[:2] for s in styles],
            resolved,
            style_masks=style_masks,
            style_source_masks=style_source_masks,
        )
    if isinstance(overrides.get("init"), np.ndarray):
        init_image = overrides["init"]
    seen, run_styles, init_image = _colour_inputs(plan.preserve_colors, content, styles, init_image)
    luminance_only = plan.preserve_colors == "luminance"

    def finish(image: np.ndarray, size: tuple[int, int] = plan.size) -> np.ndarray:
        """An iterate as it is written: at `size`, with the content's colours when luminance-only."""
        image = resize(image, size)
        return color.recombine(image, resize(content, size)) if luminance_only else image

    def on_iteration(p: Progress) -> None:
        if callback is not None:
            if luminance_only:
                p.finish = lambda im: finish(im, p.size)
            callback(p)

    x = make_init(plan.init, resize(seen, plan.stages[0].size), plan.seed, init_image)
    result = StylizeResult(image=x, loss=math.nan, terms={}, provider=model.provider, plan=plan)
    for stage in plan.stages:
        try:
            if stage.index > 1:
                x = resize(x, stage.size)  # Lanczos upsampling of the previous stage's result, clipped to [0, 1]
            run, terms, setup = run_stage(
                model, plan, stage, seen, run_styles, x, on_iteration, target_cache, extra_terms
            )
        except NonFiniteError as e:
            e.image = None if e.image is None else finish(e.image)
            e.history = result.history + [{**h, "stage": stage.index} for h in e.history]
            raise
        except KeyboardInterrupt:  # while a later stage prepared its targets: keep the stage before
            if stage.index == 1:
                raise
            result.interrupted, result.success, result.message = True, False, "interrupted"
            break
        _accumulate(result, stage, run, terms, setup, len(plan.stages))
        x = run.image
        if run.interrupted or run.stopped:
            break
    result.image = finish(x)
    return result


def _accumulate(
    result: StylizeResult, stage: Stage, run: Optimised, terms: Sequence[LossTerm], setup: float, stages: int
) -> None:
    result.history += [p.entry() for p in run.history]
    result.stages.append(_stage_record(stage, run, terms))
    result.iterations += run.iterations
    result.evaluations += run.evaluations
    result.seconds += run.seconds
    result.setup_seconds += setup
    result.loss, result.terms, result.message, result.stage = run.loss, run.terms, run.message, stage.index
    result.parts = run.parts
    if run.early_stop and result.early_stop is None:
        result.early_stop = run.early_stop if stages == 1 else f"stage {stage.index}/{stages}: {run.early_stop}"
    result.stopped, result.interrupted = run.stopped, run.interrupted
    result.success = result.success and run.status in (0, 1) and not run.stopped and not run.interrupted
