"""The pure core: stylize(model, content, styles, options) -> StylizeResult. Arrays in, arrays out; progress leaves
through a callback carrying a Progress; no printing, no files."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .images import resize
from .model import Model
from .objective import LossWeights, Objective, style_targets
from .optimize import Optimised, optimise
from .options import INIT_KEYWORDS, OptionError, StylizeOptions, mix_ratio
from .plan import Plan, Stage, plan_run


@dataclass
class Progress:
    iteration: int  # within the stage
    iterations: int  # of the stage
    loss: float
    content: float  # weighted terms: content + style + tv == loss
    style: float
    tv: float
    evaluations: int
    elapsed: float  # seconds since the stage's optimisation started
    stage: int = 1
    stages: int = 1
    size: tuple[int, int] = (0, 0)  # the stage's (h, w)
    _x: np.ndarray | None = field(default=None, repr=False)

    def image(self) -> np.ndarray:
        """The current iterate as (H, W, 3) float32 (computed on demand: most callbacks never need it)."""
        assert self._x is not None
        return self._x[0].transpose(1, 2, 0).astype(np.float32)


@dataclass
class StylizeResult:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]: the lowest-loss image evaluated
    loss: float
    terms: dict[str, float]
    history: list[dict] = field(default_factory=list)  # per iteration: stage, iteration, loss, content, style, tv
    iterations: int = 0
    evaluations: int = 0
    success: bool = True  # False if scipy stopped abnormally (reported, not raised)
    stopped: bool = False  # True if the callback asked to stop (StopIteration)
    interrupted: bool = False  # True if KeyboardInterrupt (Ctrl-C) ended the run; image is still the best so far
    message: str = ""
    seconds: float = 0.0  # the optimisation loops alone
    setup_seconds: float = 0.0  # style/content targets
    provider: str = ""
    plan: Plan | None = None


def _blas_threads(model: Model) -> Any:
    """On the CPU provider, onnxruntime uses every core between the NumPy steps; OpenBLAS's idle threads spin and take
    those cores (measured at 256 px: NumPy losses 44-204 ms with 2 threads, 52-55 ms with 1; the evaluation 6-9% faster
    quiet and 2.5x faster under load). On CUDA the cores are free for BLAS, so its threads are left alone."""
    if model.provider != "CPUExecutionProvider":
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def to_nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)  # (1, 3, H, W)


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
        if overrides.get(key) is not None:
            overrides[key] = tuple(overrides[key])
    return dataclasses.replace(options or StylizeOptions(), **overrides), init_image


def _targets(
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


def _run_stage(
    model: Model,
    plan: Plan,
    stage: Stage,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    x0: np.ndarray,
    callback: Callable[[Progress], None] | None,
    cache: dict | None = None,
) -> tuple[Optimised, float]:
    t0 = time.perf_counter()
    weights = LossWeights(
        plan.content_layer,
        plan.style_layers,
        plan.style_layer_weights,
        plan.content_weight,
        plan.style_weight,
        plan.options.tv_weight,
    )
    with _blas_threads(model):
        grams = _targets(model, plan, stage, styles, cache)
        objective = Objective(model, to_nchw(resize(content, stage.size)), grams, weights)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()

    def on_iteration(i: int, f: float, terms: dict, evals: int, x: np.ndarray) -> None:
        if callback is not None:
            callback(
                Progress(
                    i,
                    stage.iterations,
                    f,
                    terms["content"],
                    terms["style"],
                    terms["tv"],
                    evals,
                    time.perf_counter() - t1,
                    stage.index,
                    len(plan.stages),
                    stage.size,
                    x,
                )
            )

    with _blas_threads(model):
        return optimise(objective, to_nchw(x0), stage.iterations, plan.options.maxcor, on_iteration), setup


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
    """Minimise J(G) over the pixels of G with L-BFGS-B (bounds [0, 1]).

    content: (H, W, 3) float32 RGB in [0, 1], any size (resized so its long side is options.size); styles: any sizes
    (resized so their long side is the content's working long side x style_scale). Options may also be given as
    keywords (stylize(model, c, [s], iterations=100)); weights default to the model's manifest. init_image: the start
    image when options.init names one. target_cache: a dict kept across calls on the same style arrays, so their
    Grams are computed once (see _targets). The callback gets a Progress after every iteration and may raise
    StopIteration to stop cleanly (the result then has stopped=True)."""
    options, array_init = resolve_options(options, dict(overrides))
    init_image = array_init if array_init is not None else init_image
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 3 or content.shape[2] != 3:
        raise ValueError(f"content must be (H, W, 3), got {content.shape}")
    if plan is None:
        plan = plan_run(model.manifest, content.shape[:2], [s.shape[:2] for s in styles], options)
    stage = plan.stages[0]
    x0 = make_init(options.init, resize(content, stage.size), options.seed, init_image)
    run, setup = _run_stage(model, plan, stage, content, styles, x0, callback, target_cache)
    history = [{"stage": stage.index, **h} for h in run.history]
    return StylizeResult(
        image=run.image,
        loss=run.loss,
        terms=run.terms,
        history=history,
        iterations=run.iterations,
        evaluations=run.evaluations,
        success=run.status in (0, 1) and not run.stopped,
        stopped=run.stopped,
        interrupted=run.interrupted,
        message=run.message,
        seconds=run.seconds,
        setup_seconds=setup,
        provider=model.provider,
        plan=plan,
    )
