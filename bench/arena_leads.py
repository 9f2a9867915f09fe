"""Where onnxruntime's CPU tensors live, lead by lead: seconds per evaluation, peak RSS and page faults.

    flock /tmp/nst-cpu.lock .venv/bin/python bench/arena_leads.py                  # 256² and 512², every variant
    .venv/bin/python bench/arena_leads.py --sizes 512 --variants off shared

One evaluation here is Model.features + Model.vjp with fixed random tap gradients (no losses, so the network's own
allocations are what is measured), medians of --repeats after 2 warm-ups, each variant in its own process (peak RSS
is ru_maxrss; faults are ru_minflt per evaluation). Variants:
  off             no arena: malloc and free per tensor (load_model(arena="off"))
  session         one arena per session (onnxruntime's enable_cpu_mem_arena), no memory pattern
  shared          one arena for both sessions, no memory pattern (load_model's default)
  shared-pattern  the same with onnxruntime's memory pattern on (its default)
  shrink-grad     shared, its unused regions handed back after every gradient run
  shrink-all      shared, handed back after every run
  prealloc        no arena; the features graph's outputs (taps and saved state) allocated once and bound by pointer
  prealloc-shared the same over the shared arena, the gradient output bound too
  mallopt         no arena; glibc M_MMAP_THRESHOLD 32 MB and M_TRIM_THRESHOLD 2 GB set before loading
  nommap          no arena; glibc M_MMAP_MAX 0 (every block from the heap) and M_TRIM_THRESHOLD 2 GB
bench/README.md ("Speed without the memory") has the figures and what became of each lead."""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = (
    "off",
    "session",
    "shared",
    "shared-pattern",
    "shrink-grad",
    "shrink-all",
    "prealloc",
    "prealloc-shared",
    "mallopt",
    "nommap",
)


def child(variant: str, size: int, repeats: int, model_dir: Path) -> dict[str, Any]:
    if variant == "mallopt":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (glibc's ceiling)
        libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD
    if variant == "nommap":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX: every block from the heap, whatever its size
        libc.mallopt(-1, (1 << 31) - 1)  # M_TRIM_THRESHOLD
    import nst.engine.model as engine_model
    from nst.engine.model import load_model

    if variant == "shared-pattern":  # the engine's own options with onnxruntime's default memory pattern back on
        options = engine_model.session_options

        def with_pattern(*args: Any, **kwargs: Any) -> Any:
            opts = options(*args, **kwargs)
            opts.enable_mem_pattern = True
            return opts

        engine_model.session_options = with_pattern
    shared = ("shared", "shared-pattern", "shrink-grad", "shrink-all", "prealloc-shared")
    arena = "shared" if variant in shared else "session" if variant == "session" else "off"
    model = load_model(model_dir, "cpu", arena=arena)
    fs, gs, man = model._features, model._gradient, model.manifest
    shrink = model._run_options
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, size, size), dtype=np.float32)
    taps, saved = list(man.taps), list(man.saved)
    names = taps + saved
    first = model.features(image)  # shapes and dtypes of every output
    outs = {n: np.asarray(model._saved[n].numpy()) for n in names}
    grads = {t: rng.standard_normal(first[t].shape, dtype=np.float32) * 1e-3 for t in taps}
    del first
    model._saved = {}
    bufs = {n: np.empty_like(outs[n]) for n in names} if variant.startswith("prealloc") else None
    del outs
    grad_out = np.empty(image.shape, np.float32)

    def evaluate() -> None:
        b = fs.io_binding()
        b.bind_cpu_input("image", image)
        for n in names:
            if bufs is None:
                b.bind_output(n, "cpu")
            else:
                b.bind_output(n, "cpu", 0, bufs[n].dtype.type, list(bufs[n].shape), bufs[n].ctypes.data)
        fs.run_with_iobinding(b, shrink if variant == "shrink-all" else None)
        values = dict(zip(names, b.get_outputs()))
        g = gs.io_binding()
        for tap, name in man.grad_inputs.items():
            g.bind_cpu_input(name, grads[tap])
        for n in saved:
            if bufs is None:
                g.bind_ortvalue_input(n, values[n])
            else:
                g.bind_input(n, "cpu", 0, bufs[n].dtype.type, list(bufs[n].shape), bufs[n].ctypes.data)
        if variant == "prealloc-shared":
            g.bind_output("grad_image", "cpu", 0, np.float32, list(image.shape), grad_out.ctypes.data)
        else:
            g.bind_output("grad_image", "cpu")
        gs.run_with_iobinding(g, shrink if variant in ("shrink-grad", "shrink-all") else None)
        g.get_outputs()

    for _ in range(2):
        evaluate()
    f0, times = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate()
        times.append(time.perf_counter() - t0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) // repeats
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"variant": variant, "size": size, "s_eval": float(np.median(times)), "peak_bytes": peak, "faults": faults}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "vgg19")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.size, a.repeats, a.model)))
        return 0
    print("| size | variant | s/eval | peak MB | page faults/eval |\n|---:|---|---:|---:|---:|")
    for size in a.sizes:
        for variant in a.variants:
            cmd = [sys.executable, __file__, "--child", variant, "--size", str(size), "--repeats", str(a.repeats)]
            p = subprocess.run([*cmd, "--model", str(a.model)], capture_output=True, text=True)
            if p.returncode != 0:
                print(f"| {size}² | {variant} | failed: {p.stderr.strip().splitlines()[-1:]} | | |")
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"| {size}² | {variant} | {r['s_eval']:.3f} | {r['peak_bytes'] / 2**20:.0f} | {r['faults']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
