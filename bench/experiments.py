"""A/B experiments behind the measured fixes and options in bench/README.md. The timing experiments interleave their
variants round by round in one process (this machine is shared: only ratios measured side by side count) and print
medians, per-round ratios and the CPU share other processes took; `memory` runs each variant in its own process.
Nothing here changes the engine: variants are other onnxruntime session options or BLAS thread limits.

    .venv/bin/python bench/experiments.py blas    [--size 512] [--rounds 5]  OpenBLAS threads (NumPy, scipy): all vs 1
    .venv/bin/python bench/experiments.py session [--size 512] [--rounds 5]  onnxruntime session options, timed
    .venv/bin/python bench/experiments.py ops     [--size 512] [--rounds 5]  ReLU-mask formulations, one op group each
    .venv/bin/python bench/experiments.py memory  [--size 512] [--rounds 5]  peak RSS per arena variant
    .venv/bin/python bench/experiments.py lbfgs   [--size 512]               scipy L-BFGS-B setup, cost per iteration

Every experiment takes --model DIR (default models/vgg19).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from measure import ROOT, busy_cpu_seconds, cores, current_rss_bytes, foreign_share, max_rss_bytes, own_cpu_seconds
from workload import DEFAULT_MODEL, engine_objective, split_timer


def interleave(variants: dict[str, Callable], rounds: int, warm: int = 1) -> dict:
    """variants: name -> a callable returning None or a dict of sub-timings. Runs A B C A B C ...; medians per name
    and the median per-round ratio to the first. 'clean' figures keep only the rounds in which other processes used
    < 10% of the machine during every variant."""
    for _ in range(warm):
        for f in variants.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in variants}
    foreign: dict[str, list[float]] = {k: [] for k in variants}
    subs: dict[str, dict[str, list[float]]] = {k: {} for k in variants}
    for _ in range(rounds):
        for k, f in variants.items():
            b0, o0 = busy_cpu_seconds(), own_cpu_seconds()
            t = time.perf_counter()
            r = f()
            dt = time.perf_counter() - t
            times[k].append(dt)
            foreign[k].append(foreign_share(b0, busy_cpu_seconds(), own_cpu_seconds() - o0, dt) or 0.0)
            for sk, sv in (r if isinstance(r, dict) else {}).items():
                subs[k].setdefault(sk, []).append(sv)
    base = next(iter(variants))
    clean = [i for i in range(rounds) if all(foreign[k][i] < 0.1 for k in variants)]
    out: dict = {"clean_rounds": len(clean)}
    for k in variants:
        out[k] = {
            "median_s": statistics.median(times[k]),
            "min_s": min(times[k]),
            "foreign_cpu_share": [round(v, 2) for v in foreign[k]],
            **{f"{sk}_median_s": statistics.median(v) for sk, v in subs[k].items()},
        }
        if clean:
            out[k]["clean_median_s"] = statistics.median([times[k][i] for i in clean])
        if k != base:
            out[k][f"ratio_to_{base}"] = statistics.median([a / b for a, b in zip(times[k], times[base])])
            if clean:
                out[k][f"clean_ratio_to_{base}"] = statistics.median([times[k][i] / times[base][i] for i in clean])
    return out


# What each session variant changes on the engine's own SessionOptions (nst.engine.model._session_options).
def _spinning(ort, o) -> None:
    o.add_session_config_entry("session.intra_op.allow_spinning", "1")  # replaces the engine's "0"


def _denormal_as_zero(ort, o) -> None:
    o.add_session_config_entry("session.set_denormal_as_zero", "1")


def _no_cpu_arena(ort, o) -> None:
    o.enable_cpu_mem_arena = False


def _no_mem_pattern(ort, o) -> None:
    o.enable_mem_pattern = False


def _arena_same_as_requested(ort, o) -> None:
    """One process-wide CPU arena that grows by exactly what is asked (arena_extend_strategy 1 = kSameAsRequested)."""
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))
    o.add_session_config_entry("session.use_env_allocators", "1")


def session_pair(model, configure: Callable | None) -> list:
    """The model's features and gradient sessions again, with the engine's options changed by configure(ort, opts)."""
    from nst.engine.model import _session_options, import_ort

    ort = import_ort()
    opts = _session_options(ort, True, None, False)
    if configure is not None:
        configure(ort, opts)
    return [
        ort.InferenceSession(str(model.path / g.file), opts, providers=["CPUExecutionProvider"])
        for g in (model.manifest.features, model.manifest.gradient)
    ]


def exp_session(model_dir, size: int, rounds: int) -> dict:
    """An Objective evaluation on differently configured sessions over the same graphs."""
    model, objective, x, _ = engine_objective(model_dir, size)
    configs = {
        "engine": None,
        "spinning": _spinning,
        "denormal_as_zero": _denormal_as_zero,
        "no_cpu_arena": _no_cpu_arena,
    }
    sessions = {k: session_pair(model, fn) for k, fn in configs.items()}
    sessions["no_cpu_arena_features_only"] = [sessions["no_cpu_arena"][0], sessions["engine"][1]]
    sessions["no_cpu_arena_gradient_only"] = [sessions["engine"][0], sessions["no_cpu_arena"][1]]

    with split_timer(model, objective, x) as run:

        def on(k: str) -> Callable:
            def f():
                model._features, model._gradient = sessions[k]
                model._saved, model._saved_image = {}, None  # state from another session's allocator
                return run()

            return f

        return interleave({k: on(k) for k in sessions}, rounds)


def exp_blas(model_dir, size: int, rounds: int) -> dict:
    """An Objective evaluation with NumPy's and scipy's OpenBLAS on every core vs on one (what stylize() now does):
    their idle threads spin and take the cores onnxruntime needs next."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    model, objective, x, _ = engine_objective(model_dir, size)
    n = cores()
    with split_timer(model, objective, x) as run:

        def threads(k: int) -> Callable:
            def f():
                controller.limit(limits=k, user_api="blas")
                return run()

            return f

        result = interleave({f"blas_threads_{n}": threads(n), "blas_threads_1": threads(1)}, rounds)
    controller.limit(limits=n, user_api="blas")
    return {
        "libs": [lib.filepath for lib in controller.select(user_api="blas").lib_controllers],
        "threads_default": n,
        "result": result,
    }


def exp_ops(model_dir, size: int, rounds: int) -> dict:
    """ReLU-backward formulations g * [r > 0] for r >= 0 as tiny ONNX graphs on a (1, 64, S, S) tensor (relu1_2's
    shape), with the engine's session options. The exporter's is mul_cast_cast."""
    from onnx import TensorProto, helper, numpy_helper

    from nst.engine.model import _session_options, import_ort

    ort = import_ort()
    node = helper.make_node
    forms = {
        "mul_sign": [node("Sign", ["r"], ["s"]), node("Mul", ["g", "s"], ["out"])],
        "mul_cast_cast": [
            node("Cast", ["r"], ["m"], to=TensorProto.BOOL),
            node("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
            node("Mul", ["g", "mf"], ["out"]),
        ],
        "where_greater": [node("Greater", ["r", "zero"], ["m"]), node("Where", ["m", "g", "zero"], ["out"])],
    }
    shape = [1, 64, size, size]
    rng = np.random.default_rng(0)
    r = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)
    g = rng.standard_normal(shape).astype(np.float32)
    opts = _session_options(ort, True, None, False)
    sessions, exact = {}, {}
    for k, nodes in forms.items():
        graph = helper.make_graph(
            nodes,
            k,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "gr"],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
            initializer=[numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        sessions[k] = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        exact[k] = bool(np.array_equal(sessions[k].run(None, {"g": g, "r": r})[0], g * (r > 0)))
    timings = interleave({k: (lambda s=s: s.run(None, {"g": g, "r": r})) for k, s in sessions.items()}, rounds)
    return {"shape": shape, "exact": exact, "timings": timings}


MEMORY_VARIANTS = {
    "engine": "the engine as it is (onnxruntime's CPU arena off)",
    "arena": "load_model(arena=True): onnxruntime's CPU arena on in both sessions (round 1's default)",
    "arena_same_as_requested": "a shared CPU arena growing by what is requested (kSameAsRequested), "
    "session.use_env_allocators=1",
    "no_mem_pattern": "SessionOptions.enable_mem_pattern = False",
}


def memory_child(model_dir, size: int, variant: str, evals: int) -> dict:
    """One variant's setup and evaluation loop; the process's peak RSS is the variant's."""
    configure = {"arena_same_as_requested": _arena_same_as_requested, "no_mem_pattern": _no_mem_pattern}.get(variant)
    if configure is not None:  # before load_model, so every allocation, targets included, goes the variant's way
        import nst.engine.model as engine_model

        base = engine_model._session_options

        def session_options(ort, *args):
            opts = base(ort, *args)
            configure(ort, opts)
            return opts

        engine_model._session_options = session_options
    _, objective, x, _ = engine_objective(model_dir, size, arena=variant == "arena")
    rss_setup = current_rss_bytes()
    ts = []
    for _ in range(evals):
        t = time.perf_counter()
        objective(x)
        ts.append(time.perf_counter() - t)
    return {
        "variant": variant,
        "rss_after_setup_mb": rss_setup / 2**20,
        "peak_rss_mb": max_rss_bytes() / 2**20,
        "eval_s": statistics.median(ts[1:] or ts),
        "eval_all_s": ts,
    }


def exp_memory(model_dir, size: int, rounds: int) -> dict:
    """Peak RSS per variant, each in its own process."""
    out: dict = {"size": size, "variants": MEMORY_VARIANTS}
    for v in MEMORY_VARIANTS:
        p = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "memory-child",
                "--model",
                str(model_dir),
                "--size",
                str(size),
                "--variant",
                v,
                "--rounds",
                str(rounds),
            ],
            capture_output=True,
            text=True,
            cwd=str(ROOT),
        )
        out[v] = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else p.stderr[-800:]
    return out


def exp_lbfgs(model_dir, size: int, rounds: int) -> dict:
    """scipy L-BFGS-B apart from the objective (children.lbfgs_overhead), the Bounds round trip inside minimize()'s
    one-time setup, and what stylize's fun wrapper (nst.engine.optimize) adds per evaluation."""
    from children import lbfgs_overhead
    from scipy.optimize._constraints import new_bounds_to_old, old_bound_to_new
    from workload import MAXCOR

    n = 3 * size * size
    out = lbfgs_overhead(size, MAXCOR + 5, MAXCOR)
    t = time.perf_counter()
    old = new_bounds_to_old(0.0, 1.0, n)
    t1 = time.perf_counter()
    old_bound_to_new(old)
    out["bounds_round_trip_s"] = [t1 - t, time.perf_counter() - t1]
    rng = np.random.default_rng(0)
    x = rng.random(n)
    g32 = rng.random(n).astype(np.float32)
    wrapper = []
    for _ in range(7):
        t = time.perf_counter()
        _ = x.astype(np.float32), np.isfinite(g32).all(), x.copy(), g32.astype(np.float64).ravel()
        wrapper.append(time.perf_counter() - t)
    out["fun_wrapper_s_per_eval"] = statistics.median(wrapper)
    return out


EXPERIMENTS = {"blas": exp_blas, "session": exp_session, "ops": exp_ops, "memory": exp_memory, "lbfgs": exp_lbfgs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", choices=[*EXPERIMENTS, "memory-child"])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--variant", choices=MEMORY_VARIANTS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.experiment == "memory-child":
        print(json.dumps(memory_child(a.model, a.size, a.variant, a.rounds + 1)))
    else:
        print(json.dumps(EXPERIMENTS[a.experiment](a.model, a.size, a.rounds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
