"""nst benchmark (issue 5): the engine (onnxruntime + NumPy + scipy) against the torch autograd reference and pastiche.

    .venv/bin/python bench/bench.py [--sizes 128 256 512] [--repeats N] [--out bench/results/bench.json] [--quick]

Every measurement runs in its own child process (`bench.py --child KIND --size S ...`), so peak resident memory
(ru_maxrss) belongs to one implementation only, and onnxruntime and torch never share a process. The parent collects the
children's JSON, adds FLOP counts, the machine's measured float32 GEMM peak and a memory fit, writes one JSON file and
prints Markdown tables (paste-able into a README) and pass/fail per target (reported, never asserted).

What is measured, per square size S (after warm-up evaluations; medians over --repeats):
  engine  one Objective call (nst.engine.objective) = ORT forward (Model.features, incl. OrtValue -> NumPy) + NumPy
          losses/Grams (the rest of Objective.__call__) + ORT gradient graph (Model.vjp, state already saved); then
          nst.engine.stylize for --iters iterations: L-BFGS overhead per iteration = median over iterations 2.. of
          (wall time between callbacks - time inside Objective.__call__): scipy's L-BFGS-B plus stylize's
          float32<->float64 wrapper; minimize()'s one-time setup is reported apart.
  lbfgs   scipy's L-BFGS-B alone on a cheap surrogate objective of the same size for maxcor+5 iterations: its cost
          grows with the stored correction pairs, so a short run understates a long run's steady state ("@20").
  torch   TorchObjective (tests/torch_reference.py): autograd fwd+bwd per evaluation, same weights, same J, same
          thread count; then reference_stylize (the same scipy call) for --iters iterations.
  pastiche  its CLI entry point (pastiche.pastiche.main, what `python -m pastiche` runs) at --size S, --num-steps
          --iters, CPU; each step (PasticheArtist.draw) timed. A pastiche step is one torch.optim.LBFGS step with
          max_iter=1: exactly one loss+gradient evaluation and no line search. An engine iteration is one scipy
          L-BFGS-B iteration: one or more evaluations (line search). Both counts are in the JSON.
  peak    float32 GEMM (NumPy/OpenBLAS and torch) 2048² and 4096², best of a few: this machine's reachable FLOP rate.
  memory  ru_maxrss of each child; engine children at more sizes (--scaling) give the fit peak = a + b * pixels,
          compared with nst.engine.memory.estimate_bytes, and the largest square that fits in MemAvailable.
Other processes' CPU use during each child is recorded (foreign_cpu_share, from /proc/stat): this machine is shared.
`--child engine --patch NAME` (hidden) measures a suggested engine change from outside (see PATCHES).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
DEFAULT_MODEL = ROOT / "models" / "vgg19"
DEFAULT_OUT = ROOT / "bench" / "results" / "bench.json"
SHARED_IMAGES = ROOT.parent / "shared" / "images"
CONTENT_IMAGE, STYLE_IMAGE = "tubingen.jpg", "starry_night.jpg"
MAXCOR = 20  # nst.engine.stylize.DEFAULT_MAXCOR
JSON_TAG = "BENCH_JSON:"
MB = 1 << 20

TARGETS = {
    "engine_vs_torch": 0.80,  # engine s/eval / torch s/eval at 256 and 512, at most
    "peak_share": 0.60,  # engine GFLOP/s / measured GEMM peak at 512, at least
    "engine_vs_pastiche": 0.80,  # engine s/iteration / pastiche s/step, at most
}


# ----------------------------------------------------------------------------------------------------------- helpers

def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def median(xs):
    return float(statistics.median(xs)) if xs else None


def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: smooth gradients, texture, a flat and a saturated patch (as tests/conftest.py)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / (5.0 + seed) + y / 7.0)], axis=-1)
    img += 0.15 * rng.standard_normal((h, w, 3)).astype(np.float32)
    img[: h // 4, : w // 4] = 0.5
    img[-h // 4:, -w // 4:] = 1.0
    return np.clip(img, 0, 1).astype(np.float32)


def square_image(name: str, size: int, seed: int) -> tuple[np.ndarray, str]:
    """A shared test image centre-cropped to a square and resized to size x size, else a synthetic one."""
    path = SHARED_IMAGES / name
    if path.is_file():
        from nst.engine.images import load_image, resize

        img = load_image(path)
        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        return resize(np.ascontiguousarray(img[top:top + s, left:left + s]), (size, size)), str(path)
    return synthetic_image(size, size, seed), f"synthetic(seed={seed})"


def bench_images(size: int) -> tuple[np.ndarray, np.ndarray, dict]:
    content, c_src = square_image(CONTENT_IMAGE, size, 0)
    style, s_src = square_image(STYLE_IMAGE, size, 9)
    return content, style, {"content": c_src, "style": s_src}


def to_nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def start_image(content: np.ndarray) -> np.ndarray:
    """The evaluation point for the split timings: half noise, half content (no exact zeros in any loss gradient)."""
    rng = np.random.default_rng(1)
    return to_nchw((0.5 * rng.random(content.shape, dtype=np.float32) + 0.5 * content).astype(np.float32))


def emit(result: dict) -> None:
    result["peak_rss_bytes"] = max_rss_bytes()
    print(JSON_TAG + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------------------------ children

PATCHES = {
    "blas1": "NumPy's and scipy's OpenBLAS limited to 1 thread (ctypes openblas_set_num_threads)",
    "no_arena": "onnxruntime SessionOptions.enable_cpu_mem_arena = False",
    "drop_state": "Model.features releases the previous saved state before running",
    "spinning": "onnxruntime session.intra_op.allow_spinning = 1",
}


def apply_patches(patches: list[str]) -> None:
    """What-if switches for the engine child (--patch), to measure a suggested change end to end without editing
    the engine: each one is applied from outside (monkeypatching), never in the engine's files."""
    if "blas1" in patches:
        import ctypes
        import glob

        import scipy

        for pkg, pattern, fn in ((np, "numpy.libs/libscipy_openblas64_*.so", "scipy_openblas_set_num_threads64_"),
                                 (scipy, "scipy.libs/libscipy_openblas-*.so", "scipy_openblas_set_num_threads")):
            for path in glob.glob(str(Path(pkg.__file__).resolve().parents[1] / pattern)):
                lib = ctypes.CDLL(path)
                if hasattr(lib, fn):
                    getattr(lib, fn)(ctypes.c_int(1))
    if "no_arena" in patches or "spinning" in patches:
        import onnxruntime as ort

        original = ort.SessionOptions

        def session_options():
            o = original()
            if "no_arena" in patches:
                o.enable_cpu_mem_arena = False
            return o

        ort.SessionOptions = session_options
        if "spinning" in patches:
            add = original.add_session_config_entry

            def add_entry(self, key, value):
                return add(self, key, "1" if key == "session.intra_op.allow_spinning" else value)

            original.add_session_config_entry = add_entry
    if "drop_state" in patches:
        from nst.engine.model import Model

        features = Model.features

        def dropping(self, image, keep_state=True):
            if keep_state:
                self._saved, self._saved_image = {}, None
            return features(self, image, keep_state)

        Model.features = dropping


def engine_objective(model_dir, size: int):
    """The engine at `size` on the benchmark pair with the manifest's default loss: (model, Objective, start image,
    (content, style, sources)). Shared by the engine child here and by experiments.py."""
    from nst.engine import load_model
    from nst.engine.objective import LossWeights, Objective, style_targets

    model = load_model(model_dir, "cpu")
    m = model.manifest
    content, style, sources = bench_images(size)
    layers = tuple(m["default_style_layers"])
    weights = LossWeights(m["default_content_layer"], layers, (1.0 / len(layers),) * len(layers),
                          m["defaults"]["content_weight"], m["defaults"]["style_weight"], 0.0)
    grams = style_targets(model, [to_nchw(style)], [1.0], layers)
    objective = Objective(model, to_nchw(content), grams, weights)
    return model, objective, start_image(content), (content, style, sources)


def child_engine(size: int, repeats: int, iters: int, model_dir: str, warmup: int,
                 patches: list[str] | None = None) -> None:
    """Engine split timings, then nst.engine.stylize for `iters` iterations. Never imports torch."""
    t_start = time.perf_counter()
    import importlib

    apply_patches(patches or [])
    st = importlib.import_module("nst.engine.stylize")  # the module: nst.engine.stylize the attribute is the function
    assert "torch" not in sys.modules, "the engine child must not import torch"
    rss_imports = current_rss_bytes()
    model, objective, x, (content, style, sources) = engine_objective(model_dir, size)
    m = model.manifest
    rss_setup = current_rss_bytes()

    acc = {"features": 0.0, "vjp": 0.0}
    orig_features, orig_vjp = model.features, model.vjp

    def features(image, keep_state=True):
        t = time.perf_counter()
        out = orig_features(image, keep_state)
        acc["features"] += time.perf_counter() - t
        return out

    def vjp(image, grads):
        t = time.perf_counter()
        out = orig_vjp(image, grads)
        acc["vjp"] += time.perf_counter() - t
        return out

    model.features, model.vjp = features, vjp  # instance attributes: Objective calls self.model.features(...)
    rows = []
    with st._blas_threads(model):  # the BLAS threading stylize() itself runs the objective under
        for _ in range(warmup):
            objective(x)
        for _ in range(repeats):
            acc["features"] = acc["vjp"] = 0.0
            t = time.perf_counter()
            objective(x)
            total = time.perf_counter() - t
            rows.append({"total": total, "features": acc["features"], "vjp": acc["vjp"],
                         "losses": total - acc["features"] - acc["vjp"]})
    model.features, model.vjp = orig_features, orig_vjp
    peak_eval = max_rss_bytes()
    split = {k: median([r[k] for r in rows]) for k in ("total", "features", "losses", "vjp")}

    run = None
    if iters > 0:
        inside = {"seconds": 0.0, "calls": 0}

        class TimedObjective(st.Objective):
            def __call__(self, image):
                t = time.perf_counter()
                inside.setdefault("first", t)
                out = super().__call__(image)
                inside["seconds"] += time.perf_counter() - t
                inside["calls"] += 1
                return out

        stamps: list[float] = []
        marks: list[tuple[float, float]] = []  # (perf_counter, seconds inside Objective so far) at each iteration end
        loop_start: list[float] = []

        def on_iteration(p):
            now = time.perf_counter()
            if not loop_start:
                loop_start.append(now - p.elapsed)  # stylize's t0, just before minimize()
            stamps.append(p.elapsed)
            marks.append((now, inside["seconds"]))

        original = st.Objective
        st.Objective = TimedObjective
        try:
            res = st.stylize(model, content, [style], iterations=iters, maxcor=MAXCOR, init="content",
                             callback=on_iteration)
        finally:
            st.Objective = original
        per_iter = [b - a for a, b in zip([0.0] + stamps[:-1], stamps)]
        timed = inside["calls"] == res.evaluations and res.evaluations > 0 and len(marks) >= 2
        # Per-iteration overhead from iteration 2 on, between callbacks: wall time minus time inside the Objective.
        # minimize()'s one-time setup (Bounds converted to n tuples and back, a Python loop over the n variables
        # after the first evaluation, work arrays) all falls before the first callback and is reported apart.
        overheads = [(t1 - t0) - (s1 - s0) for (t0, s0), (t1, s1) in zip(marks, marks[1:])]
        per_iter_overhead = median(overheads) if timed else None
        setup = (marks[0][0] - loop_start[0]) - marks[0][1] - per_iter_overhead if timed else None
        run = {"iterations": res.iterations, "evaluations": res.evaluations, "seconds": res.seconds,
               "setup_seconds": res.setup_seconds, "message": res.message,
               "s_per_iteration_mean": res.seconds / max(1, res.iterations),
               "s_per_iteration_median": median(per_iter[1:] or per_iter),
               "s_per_evaluation": res.seconds / max(1, res.evaluations),
               "objective_seconds": inside["seconds"] if timed else None,
               "minimize_setup_seconds": setup, "lbfgs_overhead_s_per_iteration": per_iter_overhead,
               "lbfgs_overheads_s": overheads,
               "note": "stylize() loop after warm-up. lbfgs overhead per iteration = median over iterations 2.. of "
                       "(wall between callbacks - time inside Objective.__call__): scipy L-BFGS-B plus stylize's "
                       "fun wrapper (float64<->float32 copies, isfinite, best-x copy) and callback. "
                       "minimize_setup_seconds = one-time cost before iteration 1 apart from its evaluations."}
    emit({"kind": "engine", "size": size, "pixels": size * size, "threads": cores(), "provider": model.provider,
          "patches": patches or [], "model_dir": str(model_dir),
          "repeats": repeats, "warmup": warmup, "split_s": split, "split_runs": rows, "images": sources,
          "rss_after_imports_bytes": rss_imports, "rss_after_setup_bytes": rss_setup, "peak_rss_eval_bytes": peak_eval,
          "weights_bytes": (Path(model_dir) / m["graphs"]["weights"]["file"]).stat().st_size,
          "stylize": run, "child_seconds": time.perf_counter() - t_start})


def child_torch(size: int, repeats: int, iters: int, model_dir: str, warmup: int) -> None:
    """The torch autograd reference on the same weights and J, same thread count as the engine's onnxruntime."""
    t_start = time.perf_counter()
    import torch

    sys.path.insert(0, str(TESTS))
    from torch_reference import TorchObjective, reference_stylize

    from nst.engine.model import read_manifest
    from nst.export.arch import truncate
    from nst.export.torch_vgg import VGGFeatures
    from nst.export.weights import load_weights

    torch.set_num_threads(cores())
    m = read_manifest(model_dir)
    rss_imports = current_rss_bytes()
    layers = truncate(m["arch"], m["taps"])
    module = VGGFeatures(layers, load_weights(m["weights"]["source"], m["arch"], layers), m["pooling"], m["taps"])
    content, style, sources = bench_images(size)
    obj = TorchObjective(module, to_nchw(content), [to_nchw(style)], m["default_content_layer"],
                         m["default_style_layers"], m["defaults"]["content_weight"], m["defaults"]["style_weight"])
    rss_setup = current_rss_bytes()
    x = start_image(content)
    import warnings

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    for _ in range(warmup):
        obj(x)
    totals, fwds = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        obj(x)
        totals.append(time.perf_counter() - t)
    for _ in range(repeats):  # forward alone, recording the autograd graph as the real call does (losses included)
        t = time.perf_counter()
        xt = torch.from_numpy(x).requires_grad_(True)
        feats = obj.module(xt)
        del feats, xt
        fwds.append(time.perf_counter() - t)
    peak_eval = max_rss_bytes()

    run = None
    if iters > 0:
        inside = {"seconds": 0.0, "calls": 0}

        def timed(image):
            t = time.perf_counter()
            inside.setdefault("first", t)
            out = obj(image)
            inside["seconds"] += time.perf_counter() - t
            inside["calls"] += 1
            return out

        history, _, seconds, evals = reference_stylize(timed, to_nchw(content), iters, MAXCOR)
        run = {"iterations": len(history), "evaluations": evals, "seconds": seconds,
               "s_per_iteration_mean": seconds / max(1, len(history)), "s_per_evaluation": seconds / max(1, evals),
               "objective_seconds": inside["seconds"],
               "outside_objective_s_per_iteration": (seconds - inside["seconds"]) / max(1, len(history)),
               "note": "reference_stylize (tests/torch_reference.py): the same scipy call as the engine; time outside "
                       "the objective includes minimize()'s one-time setup"}
    emit({"kind": "torch", "size": size, "pixels": size * size, "threads": torch.get_num_threads(),
          "interop_threads": torch.get_num_interop_threads(), "repeats": repeats, "warmup": warmup,
          "total_s": median(totals), "forward_s": median(fwds), "totals": totals, "forwards": fwds,
          "images": sources, "rss_after_imports_bytes": rss_imports, "rss_after_setup_bytes": rss_setup,
          "peak_rss_eval_bytes": peak_eval, "stylize": run, "child_seconds": time.perf_counter() - t_start})


def child_pastiche(size: int, steps: int, content_png: str, style_png: str) -> None:
    """pastiche's CLI entry point with every step timed (PasticheArtist.draw = one closure evaluation + update)."""
    t_start = time.perf_counter()
    import torch

    import pastiche.pastiche as pp

    torch.set_num_threads(cores())
    times: list[float] = []
    draw = pp.PasticheArtist.draw
    first_draw = []

    def timed_draw(self):
        if not first_draw:
            first_draw.append(time.perf_counter())
        t = time.perf_counter()
        draw(self)
        times.append(time.perf_counter() - t)

    pp.PasticheArtist.draw = timed_draw
    out = Path(tempfile.mkdtemp(prefix="nst-bench-")) / "pastiche.png"
    argv = ["pastiche", "--device", "cpu", "--size", str(size), "--num-steps", str(steps), "--info-step",
            str(max(1, steps)), "--seed", "0", "--content", content_png, "--styles", style_png, "--output", str(out)]
    t_main = time.perf_counter()
    rc = pp.main(argv)
    t_end = time.perf_counter()
    emit({"kind": "pastiche", "size": size, "pixels": size * size, "steps": steps, "rc": rc,
          "threads": torch.get_num_threads(), "argv": argv[1:], "version": getattr(pp, "__version__", None),
          "step_times": times, "s_per_step_median": median(times[1:] or times),
          "s_per_step_mean": sum(times) / max(1, len(times)),
          "setup_seconds": (first_draw[0] if first_draw else t_end) - t_main, "main_seconds": t_end - t_main,
          "child_seconds": t_end - t_start,
          "note": "pastiche step = torch.optim.LBFGS(max_iter=1, lr=1, history_size=100).step: one loss+gradient "
                  "evaluation, no line search"})


def lbfgs_overhead(size: int, iters: int, maxcor: int = MAXCOR) -> dict:
    """scipy L-BFGS-B's own cost at 3 S^2 variables, bounds [0, 1], stylize's options, on a cheap ill-conditioned
    quadratic (minimum partly outside the bounds): per iteration = median over iterations past `maxcor` (all
    correction pairs stored, the steady state of a long run) of (wall between callbacks - time inside fun); the
    one-time setup before iteration 1 (Bounds handled element by element in Python) apart."""
    from scipy.optimize import Bounds, minimize

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
        r = float(np.dot(ad, d)) * 0.5, ad
        inside[0] += time.perf_counter() - t
        return r

    t0 = time.perf_counter()
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 1.0),
                   callback=lambda intermediate_result: marks.append((time.perf_counter(), inside[0])),
                   options={"maxiter": iters, "maxcor": maxcor, "ftol": 0.0, "gtol": 0.0,
                            "maxfun": 3 * iters + 20})
    total = time.perf_counter() - t0
    per = [(t1 - ta) - (s1 - sa) for (ta, sa), (t1, s1) in zip(marks, marks[1:])]
    steady = per[maxcor:] if len(per) > maxcor else []
    first = median(per[:3])
    return {"variables": n, "maxcor": maxcor, "iterations": int(res.nit), "evaluations": int(res.nfev),
            "total_s": total, "per_iteration_s": per,
            "steady_state_s_per_iteration": median(steady) if steady else None,
            "early_s_per_iteration": first,
            "one_time_setup_s": (marks[0][0] - t0) - marks[0][1] - (first or 0.0) if marks else None,
            "note": "surrogate objective; the cost grows with the number of stored correction pairs (up to maxcor)"}


def child_lbfgs(size: int, iters: int) -> None:
    t_start = time.perf_counter()
    out = lbfgs_overhead(size, iters)
    out.update({"kind": "lbfgs", "size": size, "child_seconds": time.perf_counter() - t_start})
    emit(out)


def child_peak() -> None:
    """This machine's float32 GEMM rate: NumPy (OpenBLAS) and torch, best of a few, the larger taken as peak."""
    out = {"kind": "peak", "threads": cores()}
    rates = {}
    rng = np.random.default_rng(0)
    for n in (2048, 4096):
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        c = a @ b
        best = math.inf
        for _ in range(3 if n == 4096 else 5):
            t = time.perf_counter()
            np.matmul(a, b, out=c)
            best = min(best, time.perf_counter() - t)
        rates[f"numpy_{n}"] = 2.0 * n ** 3 / best / 1e9
    try:
        import torch

        torch.set_num_threads(cores())
        for n in (2048, 4096):
            a, b = torch.rand(n, n), torch.rand(n, n)
            c = a @ b
            best = math.inf
            for _ in range(3 if n == 4096 else 5):
                t = time.perf_counter()
                torch.mm(a, b, out=c)
                best = min(best, time.perf_counter() - t)
            rates[f"torch_{n}"] = 2.0 * n ** 3 / best / 1e9
    except ImportError:
        pass
    out["gflops"] = rates
    out["peak_gflops"] = max(rates.values())
    out["peak_source"] = max(rates, key=rates.get)
    emit(out)


# ------------------------------------------------------------------------------------------------------------ parent

def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have used (user+nice+system+irq+softirq+steal, /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_child(args: list[str], timeout: float = 1800) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    load_before = os.getloadavg()[0]
    busy0, own0 = busy_cpu_seconds(), children_cpu_seconds()
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    wall = time.perf_counter() - t
    busy1, own1 = busy_cpu_seconds(), children_cpu_seconds()
    # CPU time other processes took while this child ran, as a share of the machine: > ~0.1 means contended timings
    foreign = None if busy0 is None else max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall * cores()))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(JSON_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"error": f"child {' '.join(args)} failed (rc {proc.returncode}): {tail}", "process_seconds": wall}
    result = json.loads(lines[-1][len(JSON_TAG):])
    result["process_seconds"] = wall
    # 1-minute load average around the child: well above the child's own threads means another process competed
    result["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["foreign_cpu_share"] = None if foreign is None else round(foreign, 3)
    return result


def flops_per_eval(manifest: dict, h: int, w: int) -> dict:
    """FLOPs of one loss+gradient evaluation from the architecture: forward 3x3 convs 2*Cin*Cout*9*H_l*W_l, their
    input gradients the same again (conv1_1's included: the image needs it), Grams C^2*N (syrk), style gradients
    2*C^2*N. ReLU/pool/elementwise work and the content loss are not counted."""
    from nst.export.arch import truncate

    layers = truncate(manifest["arch"], manifest["taps"])
    fwd = 0
    for layer in layers:
        if layer.kind == "conv":
            s = layer.scale
            fwd += 2 * layer.in_channels * layer.out_channels * 9 * (h // s) * (w // s)
    gram = style_grad = 0
    shapes = manifest["layer_shapes"]
    for tap in manifest["default_style_layers"]:
        c, s = shapes[tap]
        n = (h // s) * (w // s)
        gram += c * c * n
        style_grad += 2 * c * c * n
    total = 2 * fwd + gram + style_grad
    return {"forward_conv": fwd, "input_grad_conv": fwd, "gram": gram, "style_grad": style_grad, "total": total}


def machine_info() -> dict:
    info = {"cores": cores(), "cpu_model": None, "platform": platform.platform(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(("MemTotal:", "MemAvailable:", "SwapTotal:")):
                    k, v = line.split(":")
                    info[k.strip()] = int(v.split()[0]) * 1024
    except OSError:
        pass
    try:
        flags = open("/proc/cpuinfo").read().split("flags", 2)[1].split("\n")[0]
        info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f" {f}" in flags]
    except (OSError, IndexError):
        pass
    return info


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("nst", "onnxruntime", "torch", "numpy", "scipy", "pastiche"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    a_mat = np.vstack([np.ones(len(xs)), np.asarray(xs, float)]).T
    (a, b), *_ = np.linalg.lstsq(a_mat, np.asarray(ys, float), rcond=None)
    return float(a), float(b)


def memory_analysis(manifest: dict, points: list[dict], weights_bytes: int, available: int | None) -> dict:
    """Fit peak RSS of the evaluation loop against pixels; compare with nst.engine.memory.estimate_bytes; propose
    calibrated ACTIVATION_FACTOR / BASE_BYTES; find the largest square that fits in RAM (no swap)."""
    from nst.engine import memory as mem

    app = mem.activations_per_pixel(manifest)
    xs = [p["pixels"] for p in points]
    ys = [p["peak_rss_eval_bytes"] for p in points]
    out: dict = {"activations_per_pixel": app, "maxcor": MAXCOR, "weights_bytes": weights_bytes,
                 "current": {"ACTIVATION_FACTOR": mem.ACTIVATION_FACTOR, "BASE_BYTES": mem.BASE_BYTES}}
    if len(points) < 2:
        return out
    a, b = fit_line(xs, ys)

    def lbfgs(n):  # scipy's float64 work arrays at steady state (all maxcor pairs written), as estimate_bytes has it
        return (2 * MAXCOR + 6) * 3 * n * 8

    def images(n):
        return 10 * 3 * n * 4

    factor = max(0.0, (b - images(1)) / app)  # bytes per activation, the images term kept separately as in the estimate
    base = a - 2 * weights_bytes
    out["fit"] = {"intercept_bytes": a, "bytes_per_pixel": b,
                  "model": "peak_rss_eval = intercept + bytes_per_pixel * pixels (evaluation loop: features, losses, "
                           "vjp; no L-BFGS state)"}
    out["proposed"] = {"ACTIVATION_FACTOR": round(factor, 2), "ACTIVATION_FACTOR_as_floats": round(factor / 4, 3),
                       "BASE_BYTES": round(base / 1e6) * 1e6,
                       "note": "estimate = BASE + 2*weights + FACTOR*acts + lbfgs + images then equals the fitted "
                               "evaluation-loop peak plus scipy's steady-state L-BFGS arrays"}
    rows = []
    for p in points:
        n = p["pixels"]
        est = mem.estimate_bytes(manifest, p["size"], p["size"], MAXCOR, weights_bytes)
        projected = p["peak_rss_eval_bytes"] + lbfgs(n)
        row = {"size": p["size"], "pixels": n, "peak_rss_eval_bytes": p["peak_rss_eval_bytes"],
               "projected_full_run_bytes": projected, "estimate_bytes": est, "estimate_over_projected": est / projected,
               "fit_bytes": a + b * n, "s_per_eval": p["s_per_eval"]}
        if p.get("peak_rss_bytes") is not None:
            row["peak_rss_child_bytes"] = p["peak_rss_bytes"]
        rows.append(row)
    out["points"] = rows
    if available:
        # largest square n with fit(n) + lbfgs(n) <= 90% of MemAvailable
        budget = 0.9 * available
        n_max = (budget - a) / (b + lbfgs(1))
        side = int(math.isqrt(int(max(0, n_max)))) // 16 * 16
        out["largest_square"] = {"available_bytes": available, "budget_bytes": budget, "side": side,
                                 "pixels": side * side, "projected_bytes": a + (b + lbfgs(1)) * side * side,
                                 "estimate_says_side": mem.largest_fitting_long_side(manifest, 1.0, MAXCOR, available,
                                                                                     weights_bytes),
                                 "note": "from the fit plus steady-state L-BFGS memory, 90% of MemAvailable; "
                                         "swap is " + ("present" if machine_info().get("SwapTotal") else "absent")}
        ts = [(p["pixels"], p["s_per_eval"]) for p in points if p.get("s_per_eval")]
        if len(ts) >= 2:
            ta, tb = fit_line([t[0] for t in ts], [t[1] for t in ts])
            out["largest_square"]["s_per_eval_extrapolated"] = ta + tb * side * side
    return out


def fmt(v, spec=".3f", none="n/a"):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return none
    return format(v, spec)


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def report(res: dict) -> str:
    out = []
    m = res["machine"]
    v = res["versions"]
    out.append(f"nst benchmark {res['date']}  git {v.get('git_commit')}  {m.get('cpu_model')}, {m['cores']} cores, "
               f"{m.get('MemTotal', 0) / 2**30:.1f} GiB RAM")
    out.append(f"onnxruntime {v['onnxruntime']}  torch {v['torch']}  numpy {v['numpy']}  scipy {v['scipy']}  "
               f"pastiche {v['pastiche']}; measured float32 GEMM peak {fmt(res['peak'].get('peak_gflops'), '.0f')} "
               f"GFLOP/s ({res['peak'].get('peak_source')})")
    out.append("")
    rows = []
    for s in res["sizes"]:
        r = res["per_size"][str(s)]
        e, t = r.get("engine", {}), r.get("torch", {})
        sp = e.get("split_s", {})
        st = e.get("stylize") or {}
        lb = r.get("lbfgs", {})
        rows.append([f"{s}²", fmt(ms(sp.get("features")), ".0f"), fmt(ms(sp.get("losses")), ".0f"),
                     fmt(ms(sp.get("vjp")), ".0f"), fmt(ms(st.get("lbfgs_overhead_s_per_iteration")), ".0f"),
                     fmt(ms(lb.get("steady_state_s_per_iteration")), ".0f"),
                     fmt(sp.get("total")), fmt(t.get("total_s")), fmt(r.get("engine_vs_torch"), ".2f"),
                     fmt(r["flops"]["total"] / 1e9, ".1f"), fmt(r.get("engine_gflops"), ".0f"),
                     fmt(pct(r.get("engine_peak_share")), ".0f"), fmt(r.get("torch_gflops"), ".0f")])
    out.append("Per loss+gradient evaluation (median; engine = ORT forward + NumPy losses + ORT gradient graph). "
               "L-BFGS ms/it: scipy L-BFGS-B + stylize's wrapper per iteration in the engine's run (few correction "
               "pairs stored); @20: scipy alone with all 20 pairs stored (a long run's steady state):")
    out.append("")
    out.append(table(["size", "ORT fwd ms", "NumPy loss ms", "ORT grad ms", "L-BFGS ms/it", "L-BFGS ms/it @20",
                      "engine s",
                      "torch s", "engine÷torch", "GFLOP", "engine GFLOP/s", "% peak", "torch GFLOP/s"], rows))
    out.append("")
    rows = []
    for s in res["sizes"]:
        r = res["per_size"][str(s)]
        e, t, p = r.get("engine", {}), r.get("torch", {}), r.get("pastiche", {})
        st = e.get("stylize") or {}
        rows.append([f"{s}²", fmt(mb(e.get("peak_rss_bytes")), ".0f"), fmt(mb(t.get("peak_rss_bytes")), ".0f"),
                     fmt(mb(p.get("peak_rss_bytes")), ".0f"), fmt(r.get("engine_vs_torch_memory"), ".2f"),
                     str(st.get("iterations", "n/a")), str(st.get("evaluations", "n/a")),
                     fmt(st.get("s_per_iteration_median")), fmt(p.get("s_per_step_median")),
                     fmt(r.get("engine_vs_pastiche"), ".2f")])
    out.append("Peak memory (ru_maxrss of separate processes) and pastiche CLI, same size and step count "
               "(engine iteration = 1+ evaluations; pastiche step = exactly 1):")
    out.append("")
    out.append(table(["size", "engine MB", "torch MB", "pastiche MB", "engine÷torch mem", "engine its",
                      "engine evals", "engine s/it", "pastiche s/step", "engine÷pastiche"], rows))
    mem = res.get("memory") or {}
    if mem.get("points"):
        out.append("")
        out.append("Engine scaling (evaluation loop; estimate = nst.engine.memory.estimate_bytes for a full run, "
                   "projected = measured + steady-state L-BFGS arrays):")
        out.append("")
        rows = [[f"{p['size']}²", f"{p['pixels'] / 1e6:.3f}", fmt(p["s_per_eval"]),
                 fmt(mb(p["peak_rss_eval_bytes"]), ".0f"), fmt(mb(p["projected_full_run_bytes"]), ".0f"),
                 fmt(mb(p["estimate_bytes"]), ".0f"), fmt(p["estimate_over_projected"], ".2f")]
                for p in mem["points"]]
        out.append(table(["size", "Mpixel", "s/eval", "peak MB", "projected run MB", "estimate MB",
                          "estimate÷projected"], rows))
        f, pr, cur = mem.get("fit", {}), mem.get("proposed", {}), mem["current"]
        out.append("")
        out.append(f"Fit: peak = {f.get('intercept_bytes', 0) / MB:.0f} MB + {f.get('bytes_per_pixel', 0):.0f} B/pixel "
                   f"({mem['activations_per_pixel']:.1f} activations/pixel). Proposed constants: ACTIVATION_FACTOR = "
                   f"{pr.get('ACTIVATION_FACTOR')} (now {cur['ACTIVATION_FACTOR']}), BASE_BYTES = "
                   f"{fmt(pr.get('BASE_BYTES', 0) / 1e6, '.0f')}e6 (now {cur['BASE_BYTES'] / 1e6:.0f}e6).")
        ls = mem.get("largest_square")
        if ls:
            out.append(f"Largest square fitting in RAM (90% of {ls['available_bytes'] / 2**30:.1f} GiB available, no "
                       f"swap): {ls['side']}² (~{fmt(ls.get('s_per_eval_extrapolated'), '.0f')} s/eval extrapolated); "
                       f"the current estimate says {ls['estimate_says_side']}².")
        if res.get("confirm"):
            c = res["confirm"]
            out.append(f"Confirmation run at {c.get('size')}² (2 evaluations): " + (c["error"][:200] if "error" in c else
                       f"peak {mb(c['peak_rss_bytes']):.0f} MB (fit predicts "
                       f"{fmt(mb(c.get('fit_predicted_bytes')), '.0f')} MB), {c['split_s']['total']:.1f} s/eval"))
    worst = []
    for s_ in res["sizes"]:
        for k in ("engine", "torch", "pastiche"):
            f = res["per_size"][str(s_)].get(k, {}).get("foreign_cpu_share")
            if f is not None:
                worst.append((f, f"{k} {s_}²"))
    if worst:
        f, where = max(worst)
        out.append("")
        out.append(f"Other processes' share of the CPU while measuring: up to {f:.0%} ({where})"
                   + (" -- timings contended, compare ratios only" if f > 0.1 else " (quiet)"))
    out.append("")
    out.append("Targets:")
    for t in res["targets"]:
        out.append(f"  [{'PASS' if t['pass'] else ('FAIL' if t['pass'] is not None else 'N/A ')}] {t['name']}: "
                   f"{t['detail']}")
    return "\n".join(out)


def ms(v):
    return None if v is None else 1e3 * v


def mb(v):
    return None if v is None else v / MB


def pct(v):
    return None if v is None else 100 * v


def evaluate_targets(res: dict) -> list[dict]:
    per = res["per_size"]
    out = []

    def at(size, key):
        return per.get(str(size), {}).get(key)

    for s in (256, 512):
        r = at(s, "engine_vs_torch")
        out.append({"name": f"engine ÷ torch ≤ {TARGETS['engine_vs_torch']:.2f} at {s}²",
                    "pass": None if r is None else r <= TARGETS["engine_vs_torch"],
                    "detail": "not measured" if r is None else f"{r:.2f}"})
    share = at(512, "engine_peak_share")
    out.append({"name": f"≥ {100 * TARGETS['peak_share']:.0f}% of measured peak FLOP rate at 512²",
                "pass": None if share is None else share >= TARGETS["peak_share"],
                "detail": "not measured" if share is None else
                f"{100 * share:.0f}% ({at(512, 'engine_gflops'):.0f} of {res['peak']['peak_gflops']:.0f} GFLOP/s)"})
    mems = [(s, at(s, "engine_vs_torch_memory")) for s in res["sizes"] if at(s, "engine_vs_torch_memory") is not None]
    out.append({"name": "engine peak memory ≤ torch's (every size)",
                "pass": None if not mems else all(r <= 1.0 for _, r in mems),
                "detail": ", ".join(f"{s}²: {r:.2f}" for s, r in mems) or "not measured"})
    ps = [(s, at(s, "engine_vs_pastiche")) for s in res["sizes"] if at(s, "engine_vs_pastiche") is not None]
    out.append({"name": f"engine ÷ pastiche s/step ≤ {TARGETS['engine_vs_pastiche']:.2f} (every size)",
                "pass": None if not ps else all(r <= TARGETS["engine_vs_pastiche"] for _, r in ps),
                "detail": ", ".join(f"{s}²: {r:.2f}" for s, r in ps) or "not measured"})
    return out


def iters_for(size: int, quick: bool) -> int:
    """L-BFGS iterations / pastiche steps per size: enough steps to time, few enough to stay within minutes."""
    if quick:
        return 3
    return 10 if size <= 256 else (5 if size <= 512 else 3)


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", help="square sizes (default 128 256 512; --quick: 128 256)")
    p.add_argument("--large", action="store_true", help="also 1024² in the main comparison")
    p.add_argument("--repeats", type=int, help="timed evaluations per size (default 5; --quick: 2)")
    p.add_argument("--iters", type=int, help="L-BFGS iterations / pastiche steps (default 10 to 256², 5 to 512², 3 above)")
    p.add_argument("--scaling", type=int, nargs="*",
                   help="extra engine-only sizes for the time/memory scaling series (default 384 640 768; "
                        "--quick: 384); the main sizes are included too")
    p.add_argument("--confirm", type=int, metavar="SIZE",
                   help="also run two engine evaluations at SIZE² to check the memory fit there (slow; at the "
                        "largest size it uses most of the RAM; 0 = the computed largest square)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-pastiche", action="store_true")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--quick", action="store_true", help="~1-minute smoke run: 128² and 256², 2 repeats, 3 iterations")
    p.add_argument("--child", choices=("engine", "torch", "pastiche", "peak", "lbfgs"), help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--images", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--patch", action="append", choices=sorted(PATCHES), help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.child == "engine":
        child_engine(a.size, a.repeats, a.iters, a.model, a.warmup, a.patch)
        return 0
    if a.child == "torch":
        child_torch(a.size, a.repeats, a.iters, a.model, a.warmup)
        return 0
    if a.child == "pastiche":
        child_pastiche(a.size, a.iters, *a.images)
        return 0
    if a.child == "peak":
        child_peak()
        return 0
    if a.child == "lbfgs":
        child_lbfgs(a.size, a.iters)
        return 0

    t_all = time.perf_counter()
    sizes = a.sizes or ([128, 256] if a.quick else [128, 256, 512])
    if a.large and 1024 not in sizes:
        sizes.append(1024)
    sizes = sorted(set(sizes))
    repeats = a.repeats or (2 if a.quick else 5)
    scaling = a.scaling if a.scaling is not None else ([384] if a.quick else [384, 640, 768])
    scaling = sorted(set(scaling) - set(sizes))
    model_dir = Path(a.model)
    if not (model_dir / "manifest.json").is_file():
        print(f"no model at {model_dir}; run `.venv/bin/nst-export` first", file=sys.stderr)
        return 2
    from nst.engine.model import read_manifest

    manifest = read_manifest(model_dir)
    res: dict = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_info(),
                 "versions": versions(), "model": {"path": str(model_dir), "id": manifest.get("id"),
                                                   "taps": manifest["taps"]},
                 "settings": {"sizes": sizes, "repeats": repeats, "warmup": 2, "scaling_extra": scaling,
                              "maxcor": MAXCOR, "quick": a.quick, "threads": cores(),
                              "iterations": {str(s): a.iters or iters_for(s, a.quick) for s in sizes}},
                 "semantics": {
                     "evaluation": "one J and dJ/dimage at the same image (engine: Objective.__call__; torch: "
                                   "TorchObjective.__call__)",
                     "engine_iteration": "one scipy L-BFGS-B iteration (maxcor 20, bounds [0, 1]); may take more "
                                         "than one evaluation (line search)",
                     "pastiche_step": "one torch.optim.LBFGS step with max_iter=1, lr=1: exactly one evaluation, "
                                      "no line search, no bounds",
                     "engine_vs_pastiche": "engine median s/iteration ÷ pastiche median s/step, same size, same "
                                           "number of iterations/steps"},
                 "sizes": sizes, "per_size": {}}

    def log(msg):
        print(f"[{time.perf_counter() - t_all:6.1f}s] {msg}", file=sys.stderr, flush=True)

    log("measuring GEMM peak")
    res["peak"] = run_child(["--child", "peak"])
    peak = res["peak"].get("peak_gflops")
    tmp = Path(tempfile.mkdtemp(prefix="nst-bench-"))
    common = ["--model", str(model_dir), "--repeats", str(repeats)]
    for s in sizes:
        iters = a.iters or iters_for(s, a.quick)
        r: dict = {"flops": flops_per_eval(manifest, s, s), "iterations": iters}
        log(f"{s}²: engine")
        r["engine"] = run_child(["--child", "engine", "--size", str(s), "--iters", str(iters), *common])
        if not a.no_torch:
            log(f"{s}²: torch reference")
            r["torch"] = run_child(["--child", "torch", "--size", str(s), "--iters", str(iters), *common])
        lb_iters = MAXCOR + (5 if not a.quick else 3)
        log(f"{s}²: scipy L-BFGS-B overhead ({lb_iters} iterations, surrogate objective)")
        r["lbfgs"] = run_child(["--child", "lbfgs", "--size", str(s), "--iters", str(lb_iters)])
        if not a.no_pastiche:
            log(f"{s}²: pastiche CLI")
            content, style, _ = bench_images(s)
            c_png, s_png = tmp / f"content{s}.png", tmp / f"style{s}.png"
            save_png(content, c_png)
            save_png(style, s_png)
            r["pastiche"] = run_child(["--child", "pastiche", "--size", str(s), "--iters", str(iters),
                                       "--images", str(c_png), str(s_png)])
        e, t, pa = r["engine"], r.get("torch", {}), r.get("pastiche", {})
        e_total = (e.get("split_s") or {}).get("total")
        if e_total:
            r["engine_gflops"] = r["flops"]["total"] / e_total / 1e9
            r["engine_peak_share"] = r["engine_gflops"] / peak if peak else None
        if t.get("total_s"):
            r["torch_gflops"] = r["flops"]["total"] / t["total_s"] / 1e9
            r["torch_peak_share"] = r["torch_gflops"] / peak if peak else None
            if e_total:
                r["engine_vs_torch"] = e_total / t["total_s"]
        if e.get("peak_rss_bytes") and t.get("peak_rss_bytes"):
            r["engine_vs_torch_memory"] = e["peak_rss_bytes"] / t["peak_rss_bytes"]
        est = (e.get("stylize") or {}).get("s_per_iteration_median")
        if est and pa.get("s_per_step_median"):
            r["engine_vs_pastiche"] = est / pa["s_per_step_median"]
            r["engine_vs_pastiche_per_evaluation"] = (e["stylize"]["s_per_evaluation"] / pa["s_per_step_median"])
        for k in ("engine", "torch", "pastiche"):
            if "error" in r.get(k, {}):
                log(r[k]["error"])
        res["per_size"][str(s)] = r

    points = []
    weights_bytes = 0
    for s in sizes:
        e = res["per_size"][str(s)]["engine"]
        if "error" not in e:
            points.append({"size": s, "pixels": s * s, "peak_rss_eval_bytes": e["peak_rss_eval_bytes"],
                           "peak_rss_bytes": e["peak_rss_bytes"], "s_per_eval": e["split_s"]["total"]})
            weights_bytes = e["weights_bytes"]
    res["scaling"] = {}
    for s in scaling:
        log(f"{s}²: engine (scaling series)")
        e = run_child(["--child", "engine", "--size", str(s), "--iters", "0", "--repeats", "2", "--warmup", "1",
                       "--model", str(model_dir)])
        res["scaling"][str(s)] = e
        if "error" in e:
            log(e["error"])
            continue
        points.append({"size": s, "pixels": s * s, "peak_rss_eval_bytes": e["peak_rss_eval_bytes"],
                       "s_per_eval": e["split_s"]["total"], "flops": flops_per_eval(manifest, s, s)["total"]})
        weights_bytes = e["weights_bytes"]
    points.sort(key=lambda q: q["pixels"])
    from nst.engine.memory import available_bytes

    res["memory"] = memory_analysis(manifest, points, weights_bytes, available_bytes())
    if a.confirm is not None:
        side = a.confirm or (res["memory"].get("largest_square") or {}).get("side")
        if side:
            log(f"{side}²: confirmation run (two evaluations)")
            # two evaluations: the peak settles on the second (the first call's state is still held during it)
            res["confirm"] = run_child(["--child", "engine", "--size", str(side), "--iters", "0", "--repeats", "1",
                                        "--warmup", "1", "--model", str(model_dir)], timeout=3600)
            res["confirm"]["size"] = side
            fit = (res["memory"] or {}).get("fit")
            if fit:
                res["confirm"]["fit_predicted_bytes"] = fit["intercept_bytes"] + fit["bytes_per_pixel"] * side * side
    res["targets"] = evaluate_targets(res)
    res["seconds"] = time.perf_counter() - t_all
    text = report(res)
    res["report"] = text
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(text)
    print(f"\nwrote {out} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
