"""The pure core: stylize(model, content, styles, ...) -> StylizeResult. Arrays in, arrays out; progress leaves
through a callback carrying a Progress; no printing, no files."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import Bounds, minimize

from .errors import NonFiniteError
from .images import fit_long_side, resize
from .model import Model
from .objective import LossWeights, Objective, style_targets

DEFAULT_ITERATIONS = 300  # at 512 px the image hardly changes after ~150 (README: choosing defaults)
DEFAULT_MAXCOR = 20  # L-BFGS memory; scipy's 10 is short for this problem, each pair costs 2 x 8 bytes per variable


@dataclass
class Progress:
    iteration: int
    iterations: int
    loss: float
    content: float  # weighted terms: content + style + tv == loss
    style: float
    tv: float
    evaluations: int
    elapsed: float  # seconds since the optimisation started
    _x: np.ndarray | None = field(default=None, repr=False)

    def image(self) -> np.ndarray:
        """The current iterate as (H, W, 3) float32 (computed on demand: most callbacks never need it)."""
        return self._x[0].transpose(1, 2, 0).astype(np.float32)


@dataclass
class StylizeResult:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]: the lowest-loss image evaluated
    loss: float
    terms: dict[str, float]
    history: list[dict] = field(default_factory=list)  # per iteration: iteration, loss, content, style, tv
    iterations: int = 0
    evaluations: int = 0
    success: bool = True  # False if scipy stopped abnormally (reported, not raised)
    stopped: bool = False  # True if the callback asked to stop (StopIteration)
    interrupted: bool = False  # True if KeyboardInterrupt (Ctrl-C) ended the run; image is still the best so far
    message: str = ""
    seconds: float = 0.0  # the optimisation loop alone
    setup_seconds: float = 0.0  # style/content targets
    provider: str = ""


def _positive_finite(name: str, v: float, allow_zero: bool = True) -> float:
    v = float(v)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {v}")
    return v


def _normalise(name: str, values: Sequence[float] | None, n: int) -> tuple[float, ...]:
    if values is None:
        return (1.0 / n,) * n
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values for {n} {'styles' if 'blend' in name else 'layers'}")
    vals = [_positive_finite(name, v) for v in values]
    if sum(vals) <= 0:
        raise ValueError(f"{name} must not all be zero")
    return tuple(v / sum(vals) for v in vals)


def _blas_threads(model: Model):
    """On the CPU provider, onnxruntime uses every core between the NumPy steps; OpenBLAS's idle threads spin and take
    those cores (measured at 256 px: NumPy losses 44-204 ms with 2 threads, 52-55 ms with 1; the evaluation 6-9% faster
    quiet and 2.5x faster under load). On CUDA the cores are free for BLAS, so its threads are left alone."""
    if model.provider != "CPUExecutionProvider":
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _to_nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)  # (1, 3, H, W)


def mix_ratio(init: str) -> float:
    """R of an init 'mix:R'; ValueError unless R is a number in [0, 1]."""
    try:
        r = float(init[4:])
    except ValueError:
        r = math.nan
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"init {init!r}: the ratio after 'mix:' must be a number in [0, 1]")
    return r


def make_init(init: str | np.ndarray, content: np.ndarray, seed: int) -> np.ndarray:
    """'content', 'noise' (seeded uniform, the seeds' random G), 'mix:R' (R noise + (1-R) content) or an array."""
    if isinstance(init, np.ndarray):
        if init.ndim != 3 or init.shape[2] != 3:
            raise ValueError(f"init image must be (H, W, 3), got {init.shape}")
        return resize(init.astype(np.float32), content.shape[:2])
    rng = np.random.default_rng(seed)
    if init == "content":
        return content.copy()
    if init == "noise":
        return rng.random(content.shape, dtype=np.float32)
    if isinstance(init, str) and init.startswith("mix:"):
        r = mix_ratio(init)
        return (r * rng.random(content.shape, dtype=np.float32) + (1 - r) * content).astype(np.float32)
    raise ValueError(f"unknown init {init!r}; choose one of: content, noise, mix:R, or an image")


def stylize(model: Model, content: np.ndarray, styles: Sequence[np.ndarray], *,
            iterations: int = DEFAULT_ITERATIONS, content_weight: float | None = None,
            style_weight: float | None = None, content_layer: str | None = None,
            style_layers: Sequence[str] | None = None, style_layer_weights: Sequence[float] | None = None,
            style_blend: Sequence[float] | None = None, style_scale: float = 1.0, tv_weight: float = 0.0,
            init: str | np.ndarray = "content", seed: int = 0, maxcor: int = DEFAULT_MAXCOR,
            callback: Callable[[Progress], None] | None = None) -> StylizeResult:
    """Minimise J(G) over the pixels of G with L-BFGS-B (bounds [0, 1]).

    content: (H, W, 3) float32 RGB in [0, 1] at the working size; styles: any sizes, resized so their long side is
    the content's times style_scale. Weights default to the model's manifest. The callback gets a Progress after every
    iteration and may raise StopIteration to stop cleanly (the result then has stopped=True)."""
    t_setup = time.perf_counter()
    m = model.manifest
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if int(maxcor) < 1:
        raise ValueError(f"maxcor must be >= 1, got {maxcor!r}")
    if not styles:
        raise ValueError("at least one style image is needed")
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 3 or content.shape[2] != 3:
        raise ValueError(f"content must be (H, W, 3), got {content.shape}")
    content_layer = content_layer or m["default_content_layer"]
    style_layers = tuple(style_layers or m["default_style_layers"])
    for layer in (content_layer, *style_layers):
        if layer not in m["taps"]:
            raise ValueError(f"layer {layer!r} is not exported by this model; choose from: {', '.join(m['taps'])} "
                             "(or re-export with it)")
    weights = LossWeights(
        content_layer, style_layers, _normalise("style_layer_weights", style_layer_weights, len(style_layers)),
        _positive_finite("content_weight", m["defaults"]["content_weight"] if content_weight is None else content_weight),
        _positive_finite("style_weight", m["defaults"]["style_weight"] if style_weight is None else style_weight),
        _positive_finite("tv_weight", tv_weight))
    blend = _normalise("style_blend", style_blend, len(styles))
    scale = _positive_finite("style_scale", style_scale, allow_zero=False)
    h, w = content.shape[:2]
    long_side = max(1, round(max(h, w) * scale))
    styles_nchw = [_to_nchw(resize(np.asarray(s, np.float32), fit_long_side(*s.shape[:2], long_side))) for s in styles]
    x0 = _to_nchw(make_init(init, content, seed))

    with _blas_threads(model):
        grams = style_targets(model, styles_nchw, list(blend), style_layers)
        objective = Objective(model, _to_nchw(content), grams, weights)
    setup_seconds = time.perf_counter() - t_setup

    shape = (1, 3, h, w)
    state = {"evals": 0, "best_f": math.inf, "best_x": x0.astype(np.float64).ravel(), "last_terms": None,
             "best_terms": None, "history": [], "iteration": 0}
    t0 = time.perf_counter()

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        # The one float64 (scipy) <-> float32 (onnxruntime, NumPy losses) boundary.
        image = x.astype(np.float32).reshape(shape)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is checked just below,
            f, g, terms = objective(image)  # with a message; NumPy's warnings would only add noise on stderr
        state["evals"] += 1
        if not (math.isfinite(f) and np.isfinite(g).all()):
            what = "loss" if not math.isfinite(f) else "gradient"
            best = None
            if math.isfinite(state["best_f"]):  # else nothing finite was ever evaluated: no image worth keeping
                best = state["best_x"].reshape(shape)[0].transpose(1, 2, 0).astype(np.float32)
            raise NonFiniteError(f"the {what} became NaN/Inf at iteration {state['iteration'] + 1} "
                                 f"(evaluation {state['evals']}); try smaller content/style/tv weights",
                                 state["iteration"] + 1, best, state["history"])
        if f < state["best_f"]:
            state["best_f"], state["best_x"], state["best_terms"] = f, x.copy(), terms
        state["last_terms"] = (f, terms)
        return f, g.astype(np.float64).ravel()

    def on_iteration(intermediate_result) -> None:
        state["iteration"] += 1
        f = float(intermediate_result.fun)
        last_f, terms = state["last_terms"]
        if last_f != f:  # the accepted point is normally the last evaluated; fall back to the best
            terms = state["best_terms"]
        entry = {"iteration": state["iteration"], "loss": f, **terms}
        state["history"].append(entry)
        if callback is not None:
            callback(Progress(state["iteration"], iterations, f, terms["content"], terms["style"], terms["tv"],
                              state["evals"], time.perf_counter() - t0, intermediate_result.x.reshape(shape)))

    interrupted = False
    try:
        with _blas_threads(model):
            res = minimize(fun, x0.astype(np.float64).ravel(), jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 1.0),
                           callback=on_iteration,
                           # ftol = gtol = 0: run the iterations asked for; stop early only if the line search fails.
                           options={"maxiter": int(iterations), "maxcor": int(maxcor), "ftol": 0.0, "gtol": 0.0,
                                    "maxfun": 3 * int(iterations) + 20})
        message, status, success = str(res.message), int(res.status), bool(res.success) or res.status == 1
    except KeyboardInterrupt:  # Ctrl-C: keep what was found so far; the caller decides what to write
        interrupted, message, status, success = True, "interrupted", -1, False
    seconds = time.perf_counter() - t0
    stopped = status == 99 or "callback" in message.lower()
    image = state["best_x"].reshape(shape)[0].transpose(1, 2, 0).astype(np.float32)
    if not state["history"] and state.get("best_terms") is None:
        state["best_terms"] = {"content": math.nan, "style": math.nan, "tv": math.nan}
    return StylizeResult(image=image, loss=float(state["best_f"]), terms=dict(state["best_terms"]),
                         history=state["history"], iterations=state["iteration"], evaluations=state["evals"],
                         success=success and not stopped, stopped=stopped, interrupted=interrupted, message=message,
                         seconds=seconds, setup_seconds=setup_seconds, provider=model.provider)
