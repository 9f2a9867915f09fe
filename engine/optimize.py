"""One optimisation of an image's pixels, by the array-API L-BFGS (engine/lbfgs.py, the default) or scipy's
L-BFGS-B with bounds [0, 1]: the dtype boundary (float32 for the first, float64 for scipy), the best-iterate
bookkeeping, NaN/Inf and Ctrl-C handling, and the Progress record of each accepted iterate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, minimize

from .errors import NonFiniteError
from .objective import Evaluation

ObjectiveFn = Callable[[np.ndarray], Evaluation]  # image (1, 3, H, W) float32 -> J, dJ/dimage, terms


@dataclass(kw_only=True)
class Progress:
    """One accepted iterate. optimise() fills the first fields; the stage and the run add theirs to the same record
    before the caller's callback sees it."""

    iteration: int  # within the stage, from 1
    loss: float
    terms: dict[str, float]  # weighted value per loss term; they sum to loss
    evaluations: int  # within the stage
    elapsed: float  # seconds since the stage's optimisation started
    iterations: int = 0  # asked of the stage
    stage: int = 1
    stages: int = 1
    size: tuple[int, int] = (0, 0)  # the stage's (h, w)
    x: np.ndarray | None = field(default=None, repr=False)  # the iterate, float64 (1, 3, H, W)
    finish: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)  # iterate -> as written

    def image(self) -> np.ndarray:
        """The current iterate as (H, W, 3) float32, as it would be written (colours recombined with
        preserve_colors=luminance); computed on demand: most callbacks never need it."""
        assert self.x is not None
        image = self.x[0].transpose(1, 2, 0).astype(np.float32)
        return self.finish(image) if self.finish is not None else image

    def entry(self) -> dict:
        """The history entry of this iterate (the JSON log's `history`)."""
        return {"stage": self.stage, "iteration": self.iteration, "loss": self.loss, "terms": dict(self.terms)}


IterationFn = Callable[[Progress], None]  # may raise StopIteration to end the optimisation cleanly


@dataclass
class Optimised:
    image: np.ndarray  # (H, W, 3) float32: the lowest-loss image evaluated
    loss: float
    terms: dict[str, float]
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # of the lowest-loss image
    history: list[Progress] = field(default_factory=list)
    iterations: int = 0
    evaluations: int = 0
    status: int = 0  # scipy's status (0 converged, 1 a limit reached, 2 stopped abnormally); -1 interrupted
    message: str = ""
    interrupted: bool = False
    stopped: bool = False  # the callback raised StopIteration
    seconds: float = 0.0
    objective_seconds: float = 0.0  # of `seconds`, inside the objective (the rest: scipy's L-BFGS-B)
    # of the L-BFGS-B part, before the first evaluation: minimize()'s one-time setup, which with bounds turns them into
    # n Python tuples and back (seconds at 512 px, more than the iterations of a short run)
    lbfgs_setup_seconds: float = 0.0
    asked: int = 0  # iterations asked for

    @property
    def lbfgs_seconds(self) -> float:
        return self.seconds - self.objective_seconds

    @property
    def early_stop(self) -> str | None:
        """Why the optimisation ended before the iterations asked, in words; None when it ran them all or the
        caller stopped or interrupted it."""
        if self.interrupted or self.stopped or self.iterations >= self.asked:
            return None
        at = f"at iteration {self.iterations} of {self.asked}"
        if self.status == 0:
            return f"converged {at}: J stopped changing or its gradient vanished"
        if self.status == 1:
            return f"the evaluation limit ({self.evaluations}) was reached {at}"
        # the iteration whose line search failed is the one after the last accepted iterate
        failed = f"at iteration {self.iterations + 1} of {self.asked}"
        return f"the line search found no lower J {failed} (the loss is flat or too noisy at this scale)"


def to_hwc(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(x).reshape(shape)[0].transpose(1, 2, 0).astype(np.float32)


class _Tracker:
    """fun() for scipy: counts evaluations, keeps the best iterate, refuses NaN/Inf with the best finite image."""

    def __init__(self, objective: ObjectiveFn, shape: tuple[int, ...], x0: np.ndarray, clip: bool):
        self.objective, self.shape, self.clip = objective, shape, clip
        self.evals = 0
        self.history: list[Progress] = []
        self.best_f, self.best_x = math.inf, x0
        self.best: Evaluation | None = None
        self.last: Evaluation | None = None
        self.objective_seconds = 0.0  # inside the objective: the rest of a run is scipy's L-BFGS-B and this wrapper
        self.first_call: float | None = None  # perf_counter() at the first evaluation

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        image = x.astype(np.float32).reshape(self.shape)  # the one float64 -> float32 boundary
        if self.clip:  # unbounded L-BFGS: the network sees the image as it will be written
            np.clip(image, 0.0, 1.0, out=image)
        t0 = time.perf_counter()
        if self.first_call is None:
            self.first_call = t0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is checked just below,
            ev = self.objective(image)  # with a message; NumPy's warnings would only add noise on stderr
        self.objective_seconds += time.perf_counter() - t0
        self.evals += 1
        if not (math.isfinite(ev.loss) and np.isfinite(ev.grad).all()):
            what = "loss" if not math.isfinite(ev.loss) else "gradient"
            # if nothing finite was ever evaluated there is no image worth keeping
            best = to_hwc(self.best_x, self.shape) if math.isfinite(self.best_f) else None
            raise NonFiniteError(
                f"the {what} became NaN/Inf at iteration {len(self.history) + 1} (evaluation "
                f"{self.evals}); try smaller content/style/tv weights",
                len(self.history) + 1,
                best,
                [p.entry() for p in self.history],
            )
        if ev.loss < self.best_f:
            self.best_f, self.best_x, self.best = ev.loss, x.copy(), ev
        self.last = ev
        return ev.loss, ev.grad.astype(x.dtype, copy=False).ravel()  # float32 -> float64 for scipy

    def accepted(self, f: float, elapsed: float) -> Progress:
        """The record of an accepted iterate: its terms are the last evaluated point's, else the best one's."""
        ev = self.last if self.last is not None and self.last.loss == f else self.best
        terms = dict(ev.terms) if ev is not None else {}
        progress = Progress(
            iteration=len(self.history) + 1, loss=f, terms=terms, evaluations=self.evals, elapsed=elapsed
        )
        self.history.append(progress)
        return progress


def _array_api_lbfgs(
    track: _Tracker, x0: np.ndarray, iterations: int, maxcor: int, bounds: str, callback: Callable
) -> tuple[str, int]:
    """engine/lbfgs.py on the flat float32 image x0 (no float64 boundary): box = each iterate projected onto [0, 1]."""
    from .lbfgs import lbfgs

    r = lbfgs(
        track,
        x0,
        max_iter=int(iterations),
        history=int(maxcor),
        bounds=(0.0, 1.0) if bounds == "box" else None,
        max_evals=3 * int(iterations) + 20,
        callback=lambda x, f: callback(_Accepted(x, f)),
    )
    return r.message, min(r.status, 2)  # 3 (stopped by the callback) reads as scipy's 2; `stopped` says which


@dataclass
class _Accepted:  # what scipy hands its callback (intermediate_result), for the array-API optimiser's iterates
    x: np.ndarray
    fun: float


def optimise(
    objective: ObjectiveFn,
    x0: np.ndarray,
    iterations: int,
    maxcor: int,
    on_iteration: IterationFn | None = None,
    bounds: str = "box",
    optimizer: str = "scipy",
) -> Optimised:
    """Minimise objective over x (1, 3, H, W) in [0, 1]. bounds: "box" (L-BFGS-B's bounds keep every iterate in
    [0, 1]) or "clip" (unbounded L-BFGS; the objective and the result see the iterate clipped to [0, 1], as most NST
    tools do). optimizer: "scipy" (L-BFGS-B, float64) or "lbfgs" (engine/lbfgs.py on the float32 image, strong-Wolfe
    line search; with "box" it projects each iterate onto [0, 1]). on_iteration may raise StopIteration to stop
    cleanly; KeyboardInterrupt (Ctrl-C) ends the run with interrupted=True and the best image so far; NonFiniteError
    is raised."""
    shape = x0.shape
    # the one dtype boundary: scipy works in float64, the array-API L-BFGS on the float32 image itself
    x = x0.astype(np.float64 if optimizer == "scipy" else np.float32).ravel()
    track = _Tracker(objective, shape, x, clip=bounds == "clip")
    t0 = time.perf_counter()
    stopped = False

    def callback(intermediate_result) -> None:
        nonlocal stopped
        progress = track.accepted(float(intermediate_result.fun), time.perf_counter() - t0)
        if on_iteration is not None:
            progress.x = intermediate_result.x.reshape(shape)
            try:
                on_iteration(progress)
            except StopIteration:
                # scipy reports a callback's halt with the same status (2) as a failed line search, so the stop is
                # recorded here, where it is known
                stopped = True
                raise
            finally:
                progress.x = None  # the history keeps no copy of every iterate

    interrupted = False
    try:
        if optimizer == "lbfgs":
            message, status = _array_api_lbfgs(track, x, iterations, maxcor, bounds, callback)
        else:
            res = minimize(
                track,
                x,
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
    best = track.best
    return Optimised(
        image=np.clip(to_hwc(track.best_x, shape), 0.0, 1.0),
        objective_seconds=track.objective_seconds,
        lbfgs_setup_seconds=(track.first_call - t0) if track.first_call is not None else 0.0,
        loss=float(track.best_f),
        terms=dict(best.terms) if best else {},
        parts=dict(best.parts) if best else {},
        history=track.history,
        iterations=len(track.history),
        evaluations=track.evals,
        status=status,
        message="stopped by the callback" if stopped else message,
        interrupted=interrupted,
        stopped=stopped,
        seconds=time.perf_counter() - t0,
        asked=int(iterations),
    )
