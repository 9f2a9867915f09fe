"""Where engine time goes (issue 5): onnxruntime per-operator profiles of the features and gradient graphs, the cost of
the host copies around them, and the NumPy loss pieces, at one size.

    .venv/bin/python bench/profile_engine.py [--size 256] [--runs 5] [--model models/vgg19] [--json out.json]

Runs the engine's own sessions (nst.engine.model.load_model) with SessionOptions.enable_profiling set on a second,
identically configured pair of sessions, so the numbers are the engine's graphs after ORT's optimisations (NCHWc
layout transforms included). Also times, on the engine's normal sessions:
  features: run_with_iobinding alone vs get_outputs + OrtValue.numpy() of the taps + the saved-image copy
  vjp: the np.array_equal check, binding the gradient inputs, the run, the result copy
  losses: content_loss, gram + style gradient per layer, with the BLAS thread count in force
No torch here.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def med(f, runs: int, warm: int = 1) -> float:
    for _ in range(warm):
        f()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def ort_profile(model_dir: Path, manifest: dict, image: np.ndarray, grads: dict, runs: int, threads: int) -> dict:
    """Per-op-type and per-node kernel times (median over runs) for both graphs, from ORT's own profiler."""
    import onnxruntime as ort

    out = {}
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_profiling = True
    prefix = Path("/tmp") / f"nst-ortprof-{os.getpid()}"
    opts.profile_file_prefix = str(prefix)
    g = manifest["graphs"]
    feat = ort.InferenceSession(str(model_dir / g["features"]["file"]), opts, providers=["CPUExecutionProvider"])
    grad = ort.InferenceSession(str(model_dir / g["gradient"]["file"]), opts, providers=["CPUExecutionProvider"])
    names = g["features"]["outputs"]["taps"] + g["features"]["outputs"]["saved"]
    saved = {}
    for i in range(runs + 1):
        vals = feat.run(names, {"image": image})
        saved = dict(zip(names, vals))
    feeds = {g["gradient"]["inputs"]["grads"][t]: grads[t] for t in g["gradient"]["inputs"]["grads"]}
    feeds.update({n: saved[n] for n in g["gradient"]["inputs"]["saved"]})
    for i in range(runs + 1):
        grad.run(None, feeds)
    for key, sess in (("features", feat), ("gradient", grad)):
        path = sess.end_profiling()
        events = json.load(open(path))
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
        by_op = collections.Counter()
        count_op = collections.Counter()
        for n, t in node_med.items():
            by_op[node_op[n]] += t
            count_op[node_op[n]] += 1
        run_ms = statistics.median([e["dur"] for e in runs_ev[1:]]) / 1e3 if len(runs_ev) > 1 else None
        out[key] = {"run_ms": run_ms, "kernel_ms": sum(node_med.values()),
                    "by_op_ms": {k: round(v, 2) for k, v in by_op.most_common()},
                    "op_counts": dict(count_op),
                    "top_nodes_ms": [(n, node_op[n], round(t, 2)) for n, t in
                                     sorted(node_med.items(), key=lambda kv: -kv[1])[:25]]}
    return out


def host_copies(model, image: np.ndarray, grads: dict, runs: int) -> dict:
    """The engine's Model.features / Model.vjp split into the ORT run and the host-side work around it."""
    m = model.manifest
    graph = m["graphs"]["features"]
    taps = graph["outputs"]["taps"]
    names = taps + graph["outputs"]["saved"]
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
    gin = m["graphs"]["gradient"]["inputs"]
    gb = model._gradient.io_binding()
    for tap, input_name in gin["grads"].items():
        gb.bind_cpu_input(input_name, grads[tap])
    for name in gin["saved"]:
        gb.bind_ortvalue_input(name, model._saved[name])
    gb.bind_output("grad_image", "cpu")
    res["vjp_run_ms"] = 1e3 * med(lambda: model._gradient.run_with_iobinding(gb), runs)
    return res


def loss_pieces(model, feats: dict, grams: dict, content_target: np.ndarray, runs: int) -> dict:
    from nst.engine.losses import content_loss, gram, style_loss

    m = model.manifest
    res = {"content_loss_ms": 1e3 * med(lambda: content_loss(feats[m["default_content_layer"]], content_target), runs)}
    for layer in m["default_style_layers"]:
        a = feats[layer]
        res[f"gram_{layer}_ms"] = 1e3 * med(lambda: gram(a), runs)
        res[f"style_loss_{layer}_ms"] = 1e3 * med(lambda: style_loss(a, grams[layer]), runs)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--model", default=str(ROOT / "models" / "vgg19"))
    p.add_argument("--json")
    p.add_argument("--skip-ort-profile", action="store_true")
    a = p.parse_args(argv)
    from bench import bench_images, start_image, to_nchw

    from nst.engine import load_model
    from nst.engine.model import cpu_count
    from nst.engine.objective import style_targets

    model = load_model(a.model, "cpu")
    m = model.manifest
    content, style, _ = bench_images(a.size)
    x = start_image(content)
    layers = tuple(m["default_style_layers"])
    grams = style_targets(model, [to_nchw(style)], [1.0], layers)
    content_target = model.features(to_nchw(content), keep_state=False)[m["default_content_layer"]]
    feats = model.features(x)
    rng = np.random.default_rng(0)
    grads = {t: (rng.standard_normal(v.shape) * 1e-3).astype(np.float32) for t, v in feats.items()}
    out = {"size": a.size, "threads": cpu_count(), "env": {k: v for k, v in os.environ.items()
                                                             if k.startswith(("OPENBLAS", "OMP", "MKL"))}}
    out["host"] = host_copies(model, x, grads, a.runs)
    out["losses"] = loss_pieces(model, feats, grams, content_target, a.runs)
    if not a.skip_ort_profile:
        out["ort"] = ort_profile(Path(a.model), m, x, grads, a.runs, cpu_count())
    text = json.dumps(out, indent=1)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
