"""Where engine time goes (issue 5): onnxruntime per-operator profiles of the features and gradient graphs, the cost of
the host copies around them, and the NumPy loss pieces, at one size.

    .venv/bin/python bench/profile_engine.py [--size 256] [--runs 5] [--model models/vgg19] [--json out.json]

The profile runs on a second pair of sessions with the engine's own SessionOptions plus enable_profiling, so the
numbers are the engine's graphs after ORT's optimisations (NCHWc layout transforms included). Also times, on the
engine's sessions (nst.engine.load_model):
  features: run_with_iobinding alone vs get_outputs + OrtValue.numpy() of the taps + the saved-image copy
  vjp: the np.array_equal check, binding the gradient inputs, the run, the result copy
  losses: content_loss, gram + style gradient per layer
all with OpenBLAS on one thread, as stylize() runs on the CPU provider. No torch here.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from workload import DEFAULT_MODEL, bench_images, start_image, to_nchw

from nst.engine.manifest import Manifest


def med(f, runs: int, warm: int = 1) -> float:
    for _ in range(warm):
        f()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def ort_profile(model_dir: Path, m: Manifest, image: np.ndarray, grads: dict, runs: int) -> dict:
    """Per-op-type and per-node kernel times (median over runs) for both graphs, from ORT's own profiler."""
    from nst.engine.model import import_ort, session_options

    ort = import_ort()
    out = {}
    opts = session_options(ort, on_cpu=True)  # the engine's own options, plus profiling
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path("/tmp") / f"nst-ortprof-{os.getpid()}")
    feat, grad = (
        ort.InferenceSession(str(model_dir / g.file), opts, providers=["CPUExecutionProvider"])
        for g in (m.features, m.gradient)
    )
    names = list(m.taps) + list(m.saved)
    saved = {}
    for _ in range(runs + 1):
        saved = dict(zip(names, feat.run(names, {"image": image})))
    feeds = {name: grads[tap] for tap, name in m.grad_inputs.items()}
    feeds.update({n: saved[n] for n in m.saved})
    for _ in range(runs + 1):
        grad.run(None, feeds)
    for key, sess in (("features", feat), ("gradient", grad)):
        path = sess.end_profiling()
        with open(path) as f:
            events = json.load(f)
        os.unlink(path)
        runs_ev = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
        per_node = collections.defaultdict(list)
        node_op = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                n = e["name"][: -len("_kernel_time")]
                per_node[n].append(e["dur"])
                node_op[n] = e.get("args", {}).get("op_name", "?")
        # drop the first (warm-up) run of every node
        node_med = {n: statistics.median(d[1:] if len(d) > 1 else d) / 1e3 for n, d in per_node.items()}
        by_op: collections.Counter[str] = collections.Counter()
        count_op: collections.Counter[str] = collections.Counter()
        for n, t in node_med.items():
            by_op[node_op[n]] += t
            count_op[node_op[n]] += 1
        run_ms = statistics.median([e["dur"] for e in runs_ev[1:]]) / 1e3 if len(runs_ev) > 1 else None
        out[key] = {
            "run_ms": run_ms,
            "kernel_ms": sum(node_med.values()),
            "by_op_ms": {k: round(v, 2) for k, v in by_op.most_common()},
            "op_counts": dict(count_op),
            "top_nodes_ms": [
                (n, node_op[n], round(t, 2)) for n, t in sorted(node_med.items(), key=lambda kv: -kv[1])[:25]
            ],
        }
    return out


def host_copies(model, image: np.ndarray, grads: dict, runs: int) -> dict:
    """The engine's Model.features / Model.vjp split into the ORT run and the host-side work around it."""
    m = model.manifest
    taps = list(m.taps)
    names = taps + list(m.saved)
    res = {}
    binding = model._features.io_binding()
    binding.bind_cpu_input("image", image)
    for name in names:
        binding.bind_output(name, "cpu")
    res["features_run_ms"] = 1e3 * med(lambda: model._features.run_with_iobinding(binding), runs)
    model._features.run_with_iobinding(binding)
    values = dict(zip(names, binding.get_outputs()))
    res["features_numpy_taps_ms"] = 1e3 * med(lambda: [values[t].numpy() for t in taps], runs)
    res["features_total_ms"] = 1e3 * med(lambda: model.features(image), runs)
    a = values[taps[0]].numpy()
    b = values[taps[0]].numpy()
    res["ortvalue_numpy_is_copy"] = bool(not np.shares_memory(a, b))
    model.features(image)
    res["vjp_total_ms"] = 1e3 * med(lambda: model.vjp(image, grads), runs)
    res["array_equal_ms"] = 1e3 * med(lambda: np.array_equal(image, model._saved_image), runs)
    gb = model._gradient.io_binding()
    for tap, input_name in m.grad_inputs.items():
        gb.bind_cpu_input(input_name, grads[tap])
    for name in m.saved:
        gb.bind_ortvalue_input(name, model._saved[name])
    gb.bind_output("grad_image", "cpu")
    res["vjp_run_ms"] = 1e3 * med(lambda: model._gradient.run_with_iobinding(gb), runs)
    return res


def loss_pieces(model, feats: dict, grams: dict, content_target: np.ndarray, runs: int) -> dict:
    from nst.engine.losses import content_loss, gram, style_loss

    m = model.manifest
    res = {"content_loss_ms": 1e3 * med(lambda: content_loss(feats[m.default_content_layer], content_target), runs)}
    for layer in m.default_style_layers:
        a = feats[layer]
        res[f"gram_{layer}_ms"] = 1e3 * med(lambda a=a: gram(a), runs)
        res[f"style_loss_{layer}_ms"] = 1e3 * med(lambda a=a, g=grams[layer]: style_loss(a, g), runs)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--json")
    p.add_argument("--skip-ort-profile", action="store_true")
    a = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from nst.engine import load_model
    from nst.engine.model import cpu_count
    from nst.engine.terms import style_targets

    model = load_model(a.model, "cpu")
    m = model.manifest
    content, style, _ = bench_images(a.size)
    x = start_image(content)
    grams = style_targets(model, [to_nchw(style)], [1.0], m.default_style_layers)
    content_target = model.features(to_nchw(content), keep_state=False)[m.default_content_layer]
    feats = model.features(x)
    rng = np.random.default_rng(0)
    grads = {t: (rng.standard_normal(v.shape) * 1e-3).astype(np.float32) for t, v in feats.items()}
    out = {
        "size": a.size,
        "threads": cpu_count(),
        "blas_threads": 1,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))},
    }
    with threadpool_limits(1, user_api="blas"):  # as stylize() runs beside onnxruntime on the CPU provider
        out["host"] = host_copies(model, x, grads, a.runs)
        out["losses"] = loss_pieces(model, feats, grams, content_target, a.runs)
        if not a.skip_ort_profile:
            out["ort"] = ort_profile(Path(a.model), m, x, grads, a.runs)
    text = json.dumps(out, indent=1)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
