"""The optimiser's own time per iteration at an image's size, with a cheap objective so that only the optimiser is
timed: scipy's L-BFGS-B (box, clip) against engine/lbfgs.py (projected box, unbounded), through the engine's
optimise() with `lbfgs_seconds` as it records it. OpenBLAS on one thread, as stylize() runs it on the CPU.

    .venv/bin/python bench/lbfgs_overhead.py [--size 512x384] [--iterations 40] [--maxcor 20]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from threadpoolctl import threadpool_limits

from nst.engine.objective import Evaluation
from nst.engine.optimize import optimise


def surrogate(target: np.ndarray):
    """J = sum w (x - t)^2 + 0.1 sum (x - t)^4, w over four decades: a smooth convex objective costing a few ms."""
    w = np.logspace(-2, 2, target.size, dtype=np.float32).reshape(target.shape)  # ill-conditioned: many iterations

    def objective(image: np.ndarray) -> Evaluation:
        d = image - target
        d2 = d * d
        f = float(np.sum(w * d2, dtype=np.float64) + 0.1 * np.sum(d2 * d2, dtype=np.float64))
        return Evaluation(f, (2 * w + 0.4 * d2) * d, {"surrogate": f})

    return objective


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="512x384", help="W x H of the image (default 512x384: 590k variables)")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--maxcor", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    rng = np.random.default_rng(0)
    target = rng.random((1, 3, h, w), dtype=np.float32) * 1.2 - 0.1  # partly outside [0, 1]: bounds matter
    x0 = np.full_like(target, 0.5)
    print(
        f"{w}x{h} ({3 * w * h} variables), {args.iterations} iterations, maxcor {args.maxcor}, median of {args.repeats}"
    )
    print("| optimizer | bounds | optimiser ms/iteration | objective ms/evaluation | evaluations/iteration |")
    print("|---|---|---:|---:|---:|")
    with threadpool_limits(1, user_api="blas"):
        for optimizer in ("scipy", "lbfgs"):
            for bounds in ("box", "clip"):
                per_it, per_eval, evals = [], [], []
                for _ in range(args.repeats):
                    r = optimise(surrogate(target), x0, args.iterations, args.maxcor, None, bounds, optimizer)
                    per_it.append(1e3 * r.lbfgs_seconds / max(r.iterations, 1))
                    per_eval.append(1e3 * r.objective_seconds / r.evaluations)
                    evals.append(r.evaluations / max(r.iterations, 1))
                print(
                    f"| {optimizer} | {bounds} | {statistics.median(per_it):.1f} | {statistics.median(per_eval):.1f}"
                    f" | {statistics.median(evals):.2f} |"
                )


if __name__ == "__main__":
    main()
