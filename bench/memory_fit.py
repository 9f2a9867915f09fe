"""How the engine's memory scales: a line through the evaluation loop's peak RSS at several sizes, compared with
nst.engine.memory.estimate_bytes (what a run is refused by), calibrated constants for it, and the largest square that
fits this machine's RAM."""

from __future__ import annotations

import math

import numpy as np
from workload import MAXCOR, OPTIMIZER

from nst.engine import memory as mem
from nst.engine.manifest import Manifest


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    a_mat = np.vstack([np.ones(len(xs)), np.asarray(xs, float)]).T
    (a, b), *_ = np.linalg.lstsq(a_mat, np.asarray(ys, float), rcond=None)
    return float(a), float(b)


def lbfgs_bytes(pixels: int) -> int:
    """The default optimiser's work arrays once all maxcor pairs are stored, as estimate_bytes counts them."""
    return mem.lbfgs_bytes(pixels, MAXCOR, OPTIMIZER)


def memory_analysis(
    manifest: Manifest, points: list[dict], weights_bytes: int, available: int | None, swap: bool
) -> dict:
    """points: {size, pixels, peak_rss_eval_bytes, s_per_eval[, peak_rss_bytes]} per engine child. The evaluation
    loop holds no L-BFGS state, so a full run is projected as measured + lbfgs_bytes."""
    app = mem.activations_per_pixel(manifest)
    out: dict = {
        "activations_per_pixel": app,
        "maxcor": MAXCOR,
        "weights_bytes": weights_bytes,
        "current": {"ACTIVATION_FACTOR": mem.ACTIVATION_FACTOR, "BASE_BYTES": mem.BASE_BYTES},
    }
    if len(points) < 2:
        return out
    a, b = fit_line([p["pixels"] for p in points], [p["peak_rss_eval_bytes"] for p in points])
    out["fit"] = {
        "intercept_bytes": a,
        "bytes_per_pixel": b,
        "model": "peak_rss_eval = intercept + bytes_per_pixel * pixels (evaluation loop: features, losses, "
        "vjp; no L-BFGS state)",
    }
    # Constants that make estimate = BASE + 2 weights + FACTOR acts + lbfgs + images equal the fit + lbfgs arrays.
    factor = max(0.0, (b - mem.image_bytes(1)) / app)
    out["proposed"] = {"ACTIVATION_FACTOR": round(factor, 2), "BASE_BYTES": round((a - 2 * weights_bytes) / 1e6) * 1e6}
    rows = []
    for p in points:
        n = p["pixels"]
        est = mem.estimate_bytes(manifest, p["size"], p["size"], MAXCOR, weights_bytes, OPTIMIZER)
        projected = p["peak_rss_eval_bytes"] + lbfgs_bytes(n)
        row = {
            "size": p["size"],
            "pixels": n,
            "peak_rss_eval_bytes": p["peak_rss_eval_bytes"],
            "projected_full_run_bytes": projected,
            "estimate_bytes": est,
            "estimate_over_projected": est / projected,
            "fit_bytes": a + b * n,
            "s_per_eval": p["s_per_eval"],
        }
        if p.get("peak_rss_bytes") is not None:
            row["peak_rss_child_bytes"] = p["peak_rss_bytes"]
        rows.append(row)
    out["points"] = rows
    if available:
        out["largest_square"] = largest_square(manifest, points, (a, b), weights_bytes, available, swap)
    return out


def largest_square(
    manifest: Manifest, points: list[dict], fit: tuple[float, float], weights_bytes: int, available: int, swap: bool
) -> dict:
    """The largest square (a multiple of 16) whose projected run fits 90% of MemAvailable, beside what
    estimate_bytes allows, with the time per evaluation extrapolated linearly in pixels."""
    a, b = fit
    budget = 0.9 * available
    n_max = (budget - a) / (b + lbfgs_bytes(1))
    side = math.isqrt(int(max(0, n_max))) // 16 * 16
    out = {
        "available_bytes": available,
        "budget_bytes": budget,
        "side": side,
        "pixels": side * side,
        "projected_bytes": a + (b + lbfgs_bytes(1)) * side * side,
        "estimate_says_side": mem.largest_fitting_long_side(
            manifest, (1, 1), MAXCOR, available, weights_bytes, OPTIMIZER
        ),
        "swap": swap,
        "note": "from the fit plus steady-state L-BFGS memory, 90% of MemAvailable",
    }
    ts = [(p["pixels"], p["s_per_eval"]) for p in points if p.get("s_per_eval")]
    if len(ts) >= 2:
        ta, tb = fit_line([t[0] for t in ts], [t[1] for t in ts])
        out["s_per_eval_extrapolated"] = ta + tb * side * side
    return out


def fit_prediction(memory: dict, side: int) -> float | None:
    """The fitted evaluation-loop peak at side², to compare with a confirmation run there."""
    fit = memory.get("fit")
    return None if not fit else fit["intercept_bytes"] + fit["bytes_per_pixel"] * side * side
