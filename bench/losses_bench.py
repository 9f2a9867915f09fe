"""The losses before and after a change, on NumPy, at the default VGG19 taps of a 512x512 image (issue 13).

    flock /tmp/nst-cpu.lock .venv/bin/python bench/losses_bench.py --before /tmp/old/losses.py

--before is a copy of an earlier engine/losses.py (e.g. `git show 38cba46:engine/losses.py > /tmp/old/losses.py`),
imported from that file; "after" is nst.engine.losses. Rounds are interleaved (every piece of every variant once per
round), OpenBLAS on one thread as stylize() runs it, the median of --rounds per piece. A third column passes style_loss
a Gram computed by a full GEMM (A @ a copy of A.T, which NumPy cannot recognise as syrk's case): what syrk saves, and
what a namespace without that recognition (CuPy's matmul is cuBLAS GEMM) would pay.
Activations are random, non-negative float32 (ReLU-like): the timings do not depend on the values.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
from threadpoolctl import threadpool_limits

from nst.engine import losses as after

# tap -> (C, H, W) of VGG19 at a 512x512 image
TAPS = {
    "relu1_1": (64, 512, 512),
    "relu2_1": (128, 256, 256),
    "relu3_1": (256, 128, 128),
    "relu4_1": (512, 64, 64),
    "relu4_2": (512, 64, 64),
    "relu5_1": (512, 32, 32),
}
STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT = "relu4_2"


def load_before(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("losses_before", path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def gemm_gram(a: np.ndarray) -> np.ndarray:
    A = a.reshape(a.shape[-3], -1)
    g = A @ np.ascontiguousarray(A.T)  # two buffers: a GEMM
    return (g + g.T) * (0.5 / A.shape[1])


def style_piece(mod: ModuleType, a: np.ndarray, g_s: np.ndarray, gemm: bool) -> Callable[[], object]:
    if gemm:  # the copy of A.T is timed too (at most 64 MB, relu1_1): small beside the GEMM
        return lambda: mod.style_loss(a, g_s, gemm_gram(a))
    return lambda: mod.style_loss(a, g_s)


def pieces(mod: ModuleType, acts: dict, targets: dict, image: np.ndarray, gemm: bool = False) -> dict:
    """name -> thunk, as Objective calls them: content_loss, style_loss (its Gram included) per layer, tv_loss."""
    out: dict[str, Callable[[], object]] = {}
    if not gemm:
        out[f"content_loss {CONTENT}"] = lambda: mod.content_loss(acts[CONTENT], targets[CONTENT])
    for layer in STYLE:
        out[f"gram+style_loss {layer}"] = style_piece(mod, acts[layer], targets[layer], gemm)
    if not gemm:
        out["tv_loss image"] = lambda: mod.tv_loss(image)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="a copy of the earlier engine/losses.py")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the medians (ms) here")
    a = ap.parse_args()
    before = load_before(a.before)

    rng = np.random.default_rng(0)
    acts = {t: rng.random((1, *s), dtype=np.float32) for t, s in TAPS.items()}
    targets = {t: after.gram(rng.random((1, *s), dtype=np.float32)) for t, s in TAPS.items() if t in STYLE}
    targets[CONTENT] = rng.random((1, *TAPS[CONTENT]), dtype=np.float32)
    image = rng.random((1, 3, 512, 512), dtype=np.float32)

    variants = {
        "before": pieces(before, acts, targets, image),
        "after": pieces(after, acts, targets, image),
        "after, Gram by GEMM": pieces(after, acts, targets, image, gemm=True),
    }
    times: dict[str, dict[str, list[float]]] = {v: {p: [] for p in ps} for v, ps in variants.items()}
    with threadpool_limits(1, user_api="blas"):
        for r in range(a.rounds + 1):  # round 0 warms up
            for v, ps in variants.items():
                for p, f in ps.items():
                    t0 = time.perf_counter()
                    f()
                    if r:
                        times[v][p].append(1e3 * (time.perf_counter() - t0))
    med = {v: {p: statistics.median(ts) for p, ts in d.items()} for v, d in times.items()}

    names = list(variants["before"])
    g = "after, Gram by GEMM"
    print(f"median of {a.rounds} interleaved rounds, ms (OpenBLAS 1 thread; numpy {np.__version__})\n")
    print("| piece | shape | before | after | after÷before | after, Gram by GEMM |")
    print("|---|---|---:|---:|---:|---:|")
    for p in names:
        shape = "1×3×512×512" if p.startswith("tv") else "×".join(map(str, TAPS[p.split()[-1]]))
        gen = f"{med[g][p]:.1f}" if p in med[g] else ""
        b, n = med["before"][p], med["after"][p]
        print(f"| {p} | {shape} | {b:.1f} | {n:.1f} | {n / b:.3f} | {gen} |")
    tb, ta = sum(med["before"].values()), sum(med["after"].values())
    print(f"| **total** | | **{tb:.1f}** | **{ta:.1f}** | **{ta / tb:.3f}** | |")
    if a.json:
        a.json.write_text(json.dumps({"rounds": a.rounds, "median_ms": med}, indent=1))


if __name__ == "__main__":
    main()
