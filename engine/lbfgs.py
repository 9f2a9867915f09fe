"""L-BFGS written against the Python array API: vectors stay in their namespace and on their device (NumPy here, CuPy
on a GPU), only scalars (dot products, step lengths, the loss) come to the host.

The method is Nocedal & Wright's (Numerical Optimization, 2nd ed., algorithms 7.4 and 3.5/3.6) with the conventions of
torch.optim.LBFGS, which most NST code uses:
  - the first step is scaled by min(1, 1/||g||_1) (the first direction is -g, whose length says nothing about scale);
  - the initial inverse Hessian of each two-loop recursion is H0 = y's / y'y from the newest pair;
  - a pair (s, y) is skipped when y's <= 1e-10 (curvature too small to keep H positive definite);
  - without a line search every step has length lr; with line_search="strong_wolfe" a bracketing search with cubic
    interpolation finds a step meeting the strong Wolfe conditions (c1 = 1e-4, c2 = 0.9).
Departure from plain L-BFGS: `bounds=(lo, hi)` projects every iterate onto the box (a projected quasi-Newton step,
what `--bounds clip` means); L-BFGS-B's exact handling of active bounds (scipy) is not reproduced. The history is kept
in the iterate's dtype (float32 for images: half of scipy's float64 memory per pair)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from array_api_compat import array_namespace

from .losses import Array

Fun = Callable[[Array], tuple[float, Array]]  # x -> (f, df/dx), x 1-D
LineSearch = Literal["strong_wolfe", "none"]
CURVATURE_EPS = 1e-10


@dataclass
class LBFGSResult:
    x: Array  # the last accepted iterate
    fun: float
    nit: int  # iterations done
    nfev: int  # evaluations
    status: int  # 0 converged, 1 iteration/evaluation limit, 2 no progress (line search failed), 3 stopped
    message: str


def _dot(a: Array, b: Array) -> float:
    return float(a @ b)  # 1-D @ 1-D: a BLAS dot on NumPy, cuBLAS on CuPy; one scalar to the host


def _cubic_min(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float, lo: float, hi: float) -> float:
    """The minimiser of the cubic through (t1, f1, slope g1) and (t2, f2, slope g2), kept in [lo, hi]; the middle of
    [lo, hi] when the cubic has no minimum."""
    d1 = g1 + g2 - 3.0 * (f1 - f2) / (t1 - t2)
    disc = d1 * d1 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = math.copysign(math.sqrt(disc), t2 - t1)
    t = t2 - (t2 - t1) * (g2 + d2 - d1) / (g2 - g1 + 2.0 * d2)
    return min(max(t, lo), hi) if math.isfinite(t) else (lo + hi) / 2.0


@dataclass
class _Point:
    t: float
    f: float
    g: Array
    slope: float  # g'd


def strong_wolfe(
    phi: Callable[[float], tuple[float, Array]],
    d: Array,
    start: _Point,
    t: float,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evals: int = 25,
) -> tuple[_Point, int]:
    """A step length t along d with f(t) <= f(0) + c1 t f'(0) and |f'(t)| <= c2 |f'(0)|, or the lowest point found.
    phi(t) evaluates (f, g) at x + t d. Returns (the point, evaluations)."""
    xp = array_namespace(d)
    d_max = float(xp.max(xp.abs(d)))

    def at(step: float) -> _Point:
        f, g = phi(step)
        return _Point(step, f, g, _dot(g, d))

    prev, cur, evals = start, at(t), 1
    lo = hi = None
    while evals < max_evals:  # bracketing: grow the step until an interval must hold a Wolfe point
        if cur.f > start.f + c1 * cur.t * start.slope or (evals > 2 and cur.f >= prev.f):
            lo, hi = prev, cur
            break
        if abs(cur.slope) <= -c2 * start.slope:
            return cur, evals
        if cur.slope >= 0:
            lo, hi = cur, prev
            break
        low, high = cur.t + 0.01 * (cur.t - prev.t), 10 * cur.t
        nxt = _cubic_min(prev.t, prev.f, prev.slope, cur.t, cur.f, cur.slope, low, high)
        prev, cur = cur, at(nxt)
        evals += 1
    if lo is None or hi is None:
        return (cur if cur.f < start.f else start), evals
    if hi.f < lo.f:
        lo, hi = hi, lo
    stalled = False  # the last trial fell close to an end of the interval
    while evals < max_evals:  # zoom: shrink [lo, hi] (lo: the lower f) around a Wolfe point
        if abs(hi.t - lo.t) * d_max < 1e-9:
            break
        a, b = min(lo.t, hi.t), max(lo.t, hi.t)
        t = _cubic_min(lo.t, lo.f, lo.slope, hi.t, hi.f, hi.slope, a, b)
        margin = 0.1 * (b - a)
        if min(b - t, t - a) < margin:  # near an end: twice in a row (or at it), step a tenth back inside
            if stalled or t >= b or t <= a:
                t, stalled = (b - margin if abs(t - b) < abs(t - a) else a + margin), False
            else:
                stalled = True
        else:
            stalled = False
        cur = at(t)
        evals += 1
        if cur.f > start.f + c1 * cur.t * start.slope or cur.f >= lo.f:
            hi = cur
            if hi.f < lo.f:
                lo, hi = hi, lo
            continue
        if abs(cur.slope) <= -c2 * start.slope:
            return cur, evals
        if cur.slope * (hi.t - lo.t) >= 0:
            hi = lo
        lo = cur
    return (lo if lo.f < start.f else start), evals


def _along(fun: Fun, clip: Callable[[Array], Array], x: Array, d: Array) -> Callable[[float], tuple[float, Array]]:
    """phi(t) = fun at x + t d (projected when there are bounds)."""
    return lambda t: fun(clip(x + t * d))


def lbfgs(
    fun: Fun,
    x0: Array,
    *,
    max_iter: int,
    history: int = 20,
    line_search: LineSearch = "strong_wolfe",
    lr: float = 1.0,
    bounds: tuple[float, float] | None = None,
    max_evals: int | None = None,
    tolerance_grad: float = 0.0,
    tolerance_change: float = 0.0,
    callback: Callable[[Array, float], None] | None = None,
) -> LBFGSResult:
    """Minimise fun from x0 (a 1-D array of any array-API namespace). callback(x, f) after each iteration may raise
    StopIteration (status 3). The defaults (tolerances 0) run max_iter iterations unless no progress is possible."""
    xp = array_namespace(x0)
    clip = (lambda v: xp.clip(v, bounds[0], bounds[1])) if bounds is not None else (lambda v: v)
    x = clip(x0)
    f, g = fun(x)
    evals, max_evals = 1, max_evals if max_evals is not None else max_iter * 5 // 4 + 20
    pairs: list[tuple[Array, Array, float]] = []  # (s, y, 1 / y's), oldest first
    h0 = 1.0
    status, message = 1, "iteration limit reached"
    for it in range(1, max_iter + 1):
        if not float(xp.max(xp.abs(g))) > tolerance_grad:
            status, message, it = 0, "the gradient vanished", it - 1
            break
        q = -g  # two-loop recursion: d = -H g
        alphas = []
        for s, y, rho in reversed(pairs):
            a = rho * _dot(s, q)
            q = q - a * y
            alphas.append(a)
        d = q * h0
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            d = d + s * (a - rho * _dot(y, d))
        slope = _dot(g, d)
        if not slope < 0:  # not a descent direction (H lost positive definiteness): restart from -g
            pairs.clear()
            d, slope = -g, -_dot(g, g)
        t = lr * min(1.0, 1.0 / float(xp.sum(xp.abs(g)))) if it == 1 else lr
        if line_search == "strong_wolfe":
            point, used = strong_wolfe(_along(fun, clip, x, d), d, _Point(0.0, f, g, slope), t)
            evals += used
            if point.t == 0.0:
                status, message, it = 2, "the line search found no lower value", it - 1
                break
            x_new, f_new, g_new = clip(x + point.t * d), point.f, point.g
        else:
            x_new = clip(x + t * d)
            f_new, g_new = fun(x_new)
            evals += 1
        s, y = x_new - x, g_new - g
        ys = _dot(y, s)
        if ys > CURVATURE_EPS:
            if len(pairs) == history:
                pairs.pop(0)
            pairs.append((s, y, 1.0 / ys))
            h0 = ys / _dot(y, y)
        change = abs(f_new - f)
        x, f, g = x_new, f_new, g_new
        try:
            if callback is not None:
                callback(x, f)
        except StopIteration:
            return LBFGSResult(x, f, it, evals, 3, "stopped by the callback")
        if evals >= max_evals:
            status, message = 1, "evaluation limit reached"
            break
        if tolerance_change and change < tolerance_change:
            status, message = 0, "the loss stopped changing"
            break
    else:
        it = max_iter
    return LBFGSResult(x, f, it, evals, status, message)
