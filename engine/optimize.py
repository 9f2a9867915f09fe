"""One L-BFGS-B optimisation of an image's pixels: scipy's minimize with bounds [0, 1], the float64 (scipy) <->
float32 (onnxruntime, NumPy) boundary, the best-iterate bookkeeping, NaN/Inf and Ctrl-C handling."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, minimize

from .errors import NonFiniteError

# image (1, 3, H, W) float32 -> (J, dJ/dimage float32, weighted terms {"content", "style", "tv"})
ObjectiveFn = Callable[[np.ndarray], tuple[float, np.ndarray, dict[str, float]]]
# after each iteration: (iteration, J, terms, evaluations so far, the iterate as float64 (1, 3, H, W))
IterationFn = Callable[[int, float, dict[str, float], int, np.ndarray], None]


@dataclass
class Optimised:
    image: np.ndarray  # (H, W, 3) float32: the lowest-loss image evaluated
    loss: float
    terms: dict[str, float]
    history: list[dict] = field(default_factory=list)  # per iteration: iteration, loss, content, style, tv
    iterations: int = 0
    evaluations: int = 0
    status: int = 0  # scipy's status; -1 interrupted
    message: str = ""
    interrupted: bool = False
    stopped: bool = False  # the callback raised StopIteration
    seconds: float = 0.0
    objective_seconds: float = 0.0  # of `seconds`, inside the objective (the rest: scipy's L-BFGS-B)


def to_hwc(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(x).reshape(shape)[0].transpose(1, 2, 0).astype(np.float32)


class _Tracker:
    """fun() for scipy: counts evaluations, keeps the best iterate, refuses NaN/Inf with the best finite image."""

    def __init__(self, objective: ObjectiveFn, shape: tuple[int, ...], x0: np.ndarray, clip: bool):
        self.objective, self.shape, self.clip = objective, shape, clip
        self.evals, self.iteration = 0, 0
        self.history: list[dict] = []
        self.best_f, self.best_x = math.inf, x0
        self.best_terms: dict[str, float] | None = None
        self.last: tuple[float, dict[str, float]] | None = None
        self.objective_seconds = 0.0  # inside the objective: the rest of a run is scipy's L-BFGS-B and this wrapper

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        image = x.astype(np.float32).reshape(self.shape)  # the one float64 -> float32 boundary
        if self.clip:  # unbounded L-BFGS: the network sees the image as it will be written
            np.clip(image, 0.0, 1.0, out=image)
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is checked just below,
            f, g, terms = self.objective(image)  # with a message; NumPy's warnings would only add noise on stderr
        self.objective_seconds += time.perf_counter() - t0
        self.evals += 1
        if not (math.isfinite(f) and np.isfinite(g).all()):
            what = "loss" if not math.isfinite(f) else "gradient"
            # if nothing finite was ever evaluated there is no image worth keeping
            best = to_hwc(self.best_x, self.shape) if math.isfinite(self.best_f) else None
            raise NonFiniteError(
                f"the {what} became NaN/Inf at iteration {self.iteration + 1} (evaluation "
                f"{self.evals}); try smaller content/style/tv weights",
                self.iteration + 1,
                best,
                self.history,
            )
        if f < self.best_f:
            self.best_f, self.best_x, self.best_terms = f, x.copy(), terms
        self.last = (f, terms)
        return f, g.astype(np.float64).ravel()  # float32 -> float64 for scipy

    def accepted(self, f: float) -> dict:
        """The history entry of an accepted iterate: normally the last evaluated point, else the best one."""
        self.iteration += 1
        terms = self.last[1] if self.last is not None and self.last[0] == f else self.best_terms
        entry = {"iteration": self.iteration, "loss": f, **(terms or {})}
        self.history.append(entry)
        return entry


def optimise(
    objective: ObjectiveFn,
    x0: np.ndarray,
    iterations: int,
    maxcor: int,
    on_iteration: IterationFn | None = None,
    bounds: str = "box",
) -> Optimised:
    """Minimise objective over x (1, 3, H, W) in [0, 1]. bounds: "box" (L-BFGS-B's bounds keep every iterate in
    [0, 1]) or "clip" (unbounded L-BFGS; the objective and the result see the iterate clipped to [0, 1], as most NST
    tools do). on_iteration may raise StopIteration to stop cleanly; KeyboardInterrupt (Ctrl-C) ends the run with
    interrupted=True and the best image so far; NonFiniteError is raised."""
    shape = x0.shape
    x64 = x0.astype(np.float64).ravel()
    track = _Tracker(objective, shape, x64, clip=bounds == "clip")
    t0 = time.perf_counter()

    def callback(intermediate_result) -> None:
        f = float(intermediate_result.fun)
        entry = track.accepted(f)
        if on_iteration is not None:
            on_iteration(track.iteration, f, entry, track.evals, intermediate_result.x.reshape(shape))

    interrupted = False
    try:
        res = minimize(
            track,
            x64,
            jac=True,
            method="L-BFGS-B",
            bounds=Bounds(0.0, 1.0) if bounds == "box" else None,
            callback=callback,
            # ftol = gtol = 0: run the iterations asked for; stop early only if the line search fails.
            options={
                "maxiter": int(iterations),
                "maxcor": int(maxcor),
                "ftol": 0.0,
                "gtol": 0.0,
                "maxfun": 3 * int(iterations) + 20,
            },
        )
        message, status = str(res.message), int(res.status)
    except KeyboardInterrupt:  # Ctrl-C: keep what was found so far; the caller decides what to write
        interrupted, message, status = True, "interrupted", -1
    terms = dict(track.best_terms) if track.best_terms else {"content": math.nan, "style": math.nan, "tv": math.nan}
    return Optimised(
        image=np.clip(to_hwc(track.best_x, shape), 0.0, 1.0),
        objective_seconds=track.objective_seconds,
        loss=float(track.best_f),
        terms=terms,
        history=track.history,
        iterations=track.iteration,
        evaluations=track.evals,
        status=status,
        message=message,
        interrupted=interrupted,
        stopped=status == 99 or "callback" in message.lower(),
        seconds=time.perf_counter() - t0,
    )
