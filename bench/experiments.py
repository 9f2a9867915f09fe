"""A/B experiments behind the performance suggestions in bench/README.md (issue 5). Each experiment interleaves its
variants round by round in one process (this machine is shared and noisy: only ratios measured side by side count)
and prints medians and the per-round ratio. Nothing here changes the engine: variants are built under a temporary
directory or patched onto one Model instance.

    .venv/bin/python bench/experiments.py blas     [--size 512] [--rounds 5]   NumPy/scipy OpenBLAS threads: 1 vs all
    .venv/bin/python bench/experiments.py state    [--size 512]                drop the saved state before features()
    .venv/bin/python bench/experiments.py session  [--size 512]                ORT session options
    .venv/bin/python bench/experiments.py graphs   [--size 512]                gradient-graph variants (ReLU mask,
                                                                               max-pool backward), checked for equality
    .venv/bin/python bench/experiments.py lbfgs    [--size 512]                scipy L-BFGS-B setup and per-iteration cost
    .venv/bin/python bench/experiments.py ops      [--size 512]                ReLU-mask formulations, one op pair each
    .venv/bin/python bench/experiments.py memory   [--size 512]                peak RSS per arena/state variant (subprocesses)
    .venv/bin/python bench/experiments.py export-variant --relu castmul --pool indices --out DIR
                                                   a complete model directory for a graph variant, for
                                                   `bench.py --child engine --model DIR`
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
MODEL = ROOT / "models" / "vgg19"


def now() -> float:
    return time.perf_counter()


def own_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def interleave(variants: dict, rounds: int, warm: int = 1) -> dict:
    """variants: name -> callable returning None or a dict of sub-timings. Runs A B C A B C ...; medians per name.
    Each call also records the share of the machine other processes used meanwhile (foreign CPU, /proc/stat); the
    'clean' medians keep only calls with foreign < 0.1 (this machine is shared)."""
    from bench import busy_cpu_seconds, cores

    for _ in range(warm):
        for f in variants.values():
            f()
    times = {k: [] for k in variants}
    foreign = {k: [] for k in variants}
    subs: dict = {k: {} for k in variants}
    for _ in range(rounds):
        for k, f in variants.items():
            b0, o0 = busy_cpu_seconds(), own_cpu()
            t = now()
            r = f()
            dt = now() - t
            b1, o1 = busy_cpu_seconds(), own_cpu()
            times[k].append(dt)
            foreign[k].append(max(0.0, ((b1 - b0) - (o1 - o0)) / (dt * cores())))
            for sk, sv in (r if isinstance(r, dict) else {}).items():
                subs[k].setdefault(sk, []).append(sv)
    out = {}
    base = next(iter(variants))
    clean_rounds = [i for i in range(rounds) if all(foreign[k][i] < 0.1 for k in variants)]
    for k in variants:
        out[k] = {"median_s": statistics.median(times[k]), "min_s": min(times[k]),
                  "foreign_cpu_share": [round(v, 2) for v in foreign[k]],
                  **{f"{sk}_median_s": statistics.median(v) for sk, v in subs[k].items()}}
        if clean_rounds:
            out[k]["clean_median_s"] = statistics.median([times[k][i] for i in clean_rounds])
            for sk, v in subs[k].items():
                out[k][f"{sk}_clean_median_s"] = statistics.median([v[i] for i in clean_rounds])
        if k != base:
            out[k]["ratio_to_" + base] = statistics.median([a / b for a, b in zip(times[k], times[base])])
            if clean_rounds:
                out[k]["clean_ratio_to_" + base] = statistics.median(
                    [times[k][i] / times[base][i] for i in clean_rounds])
    out["clean_rounds"] = len(clean_rounds)
    return out


def blas_libs():
    """ctypes handles to set the thread count of NumPy's and scipy's (separate) OpenBLAS builds."""
    import numpy
    import scipy

    found = []
    for pkg, pattern, fn in ((numpy, "numpy.libs/libscipy_openblas64_*.so", "scipy_openblas_set_num_threads64_"),
                             (scipy, "scipy.libs/libscipy_openblas-*.so", "scipy_openblas_set_num_threads")):
        site = Path(pkg.__file__).resolve().parents[1]
        for path in glob.glob(str(site / pattern)):
            lib = ctypes.CDLL(path)
            if hasattr(lib, fn):
                found.append((path, getattr(lib, fn)))
    return found


def set_blas_threads(n: int) -> None:
    for _, fn in blas_libs():
        fn(ctypes.c_int(n))


def setup(size: int):
    from bench import engine_objective

    model, objective, x, _ = engine_objective(MODEL, size)
    return model, objective, x


def timed_objective(model, objective, x):
    """Objective call split into ORT forward / losses / ORT gradient (wrapping this Model instance only)."""
    acc = {}
    f0, v0 = type(model).features, type(model).vjp

    def features(image, keep_state=True):
        t = now()
        r = f0(model, image, keep_state)
        acc["features"] = now() - t
        return r

    def vjp(image, grads):
        t = now()
        r = v0(model, image, grads)
        acc["vjp"] = now() - t
        return r

    model.features, model.vjp = features, vjp

    def run():
        t = now()
        objective(x)
        total = now() - t
        return {"features": acc["features"], "vjp": acc["vjp"], "losses": total - acc["features"] - acc["vjp"]}

    return run


# -------------------------------------------------------------------------------------------------------- experiments

def exp_blas(size: int, rounds: int) -> dict:
    model, objective, x = setup(size)
    run = timed_objective(model, objective, x)
    n = len(os.sched_getaffinity(0))

    def with_threads(k):
        def f():
            set_blas_threads(k)
            return run()
        return f

    out = {"libs": [p for p, _ in blas_libs()], "threads_default": n,
           "result": interleave({f"blas_threads_{n}": with_threads(n), "blas_threads_1": with_threads(1)}, rounds)}
    set_blas_threads(n)
    return out


def exp_state(size: int, rounds: int) -> dict:
    """Model.features keeps the previous call's outputs (self._saved) alive while onnxruntime allocates the new ones:
    two full sets of saved activations at the peak. Variant: drop them first. Memory is measured in subprocesses."""
    import subprocess

    res = {}
    for variant in ("keep", "drop"):
        code = f"""
import sys, resource, json, time
sys.path.insert(0, {str(ROOT / 'bench')!r})
from experiments import setup
model, objective, x = setup({size})
if {variant == 'drop'!r}:
    f0 = type(model).features
    def features(image, keep_state=True):
        if keep_state:
            model._saved, model._saved_image = {{}}, None
        return f0(model, image, keep_state)
    model.features = features
ts = []
for i in range({rounds} + 1):
    t = time.perf_counter(); objective(x); ts.append(time.perf_counter() - t)
print(json.dumps({{"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "median_s": sorted(ts[1:])[len(ts[1:]) // 2]}}))
"""
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
        res[variant] = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else p.stderr[-500:]
    return res


def _session_pair(opts_fn):
    import onnxruntime as ort

    from nst.engine.model import cpu_count, read_manifest

    m = read_manifest(MODEL)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.intra_op_num_threads = cpu_count()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts_fn(opts)
    return [ort.InferenceSession(str(MODEL / m["graphs"][k]["file"]), opts, providers=["CPUExecutionProvider"])
            for k in ("features", "gradient")]


def exp_session(size: int, rounds: int) -> dict:
    """Swap the engine's two sessions for differently configured ones (same graphs) and time an Objective call."""
    import onnxruntime as ort

    model, objective, x = setup(size)
    run = timed_objective(model, objective, x)

    def spin(o):
        o.add_session_config_entry("session.intra_op.allow_spinning", "1")

    def daz(o):
        o.add_session_config_entry("session.set_denormal_as_zero", "1")

    def no_arena(o):
        o.enable_cpu_mem_arena = False

    def seq(o):
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        o.inter_op_num_threads = 1

    configs = {"engine": lambda o: None, "spinning": spin, "denormal_as_zero": daz, "no_cpu_arena": no_arena}
    sessions = {k: _session_pair(fn) for k, fn in configs.items()}
    # the arena off in one session only
    sessions["no_cpu_arena_features_only"] = [sessions["no_cpu_arena"][0], sessions["engine"][1]]
    sessions["no_cpu_arena_gradient_only"] = [sessions["engine"][0], sessions["no_cpu_arena"][1]]
    configs = {k: None for k in sessions}

    def use(k):
        def f():
            model._features, model._gradient = sessions[k]
            model._saved, model._saved_image = {}, None
            return run()
        return f

    return interleave({k: use(k) for k in configs}, rounds)


# ---- gradient-graph variants

def build_variant_graphs(out_dir: Path, relu_mask: str, pool: str) -> dict:
    """Rebuild the features/gradient graphs as export/onnx_graphs.py does, with another ReLU-mask or max-pool-backward
    formulation; returns a manifest-like dict {features_outputs, gradient_saved_inputs}.
    relu_mask: 'sign' = Mul(g, Sign(r)) (the exporter's) | 'where' = Where(Greater(r, 0), g, 0).
    pool: 'mask' = the exporter's first-max mask from SpaceToDepth/Equal/... | 'indices' = the features graph also
    returns MaxPool's int64 indices (first maximum, as torch) and the pool outputs; the gradient scatters into zeros
    with ScatterElements, and the pre-pool ReLU's mask becomes the pool output's (the routed value *is* the max), so
    the pre-pool ReLU outputs (relu1_2, relu2_2, relu3_4, relu4_4) are no longer saved."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    import nst.export.onnx_graphs as og
    from nst.engine.model import read_manifest
    from nst.export.arch import truncate
    from nst.export.weights import load_weights, preprocess_affine

    m = read_manifest(MODEL)
    layers = truncate(m["arch"], m["taps"])
    taps = m["taps"]
    w = load_weights(m["weights"]["source"], m["arch"], layers)
    pre_a, pre_c = preprocess_affine(w.preprocess)
    arrays = og._initializers(layers, w.convs, pre_a, pre_c)
    table = og.write_weights(arrays, out_dir / og.WEIGHTS_FILE)
    by_name = {layer.name: layer for layer in layers}
    pools = [i for i, layer in enumerate(layers) if layer.kind == "pool"]
    pre_pool = {layers[i - 1].name for i in pools}

    # ---- features
    b = og._Builder("features")
    x = b.op("Conv", [og.IMAGE, "preprocess.weight", "preprocess.bias"])
    saved = og.saved_outputs(layers, taps)
    extra = []
    if pool == "indices":
        saved = [s for s in saved if s not in pre_pool]
    for layer in layers:
        out = layer.name
        if layer.kind == "conv":
            x = b.op("Conv", [x, f"{out}.weight", f"{out}.bias"], out, pads=[1, 1, 1, 1], kernel_shape=[3, 3])
        elif layer.kind == "relu":
            x = b.op("Relu", [x], out)
        elif pool == "indices":
            b.n += 1
            b.nodes.append(helper.make_node("MaxPool", [x], [out, f"{out}_idx"], name=f"features/MaxPool_{b.n}",
                                            kernel_shape=[2, 2], strides=[2, 2]))
            x = out
            extra += [og._value_info(out, layer.out_channels, layer.scale),
                      helper.make_tensor_value_info(f"{out}_idx", TensorProto.INT64,
                                                    [1, layer.out_channels, *og._dims(layer.scale)])]
        else:
            x = b.op("MaxPool", [x], out, kernel_shape=[2, 2], strides=[2, 2])
    outputs = [og._value_info(n, by_name[n].out_channels, by_name[n].scale) for n in list(taps) + saved] + extra
    used = {n for n in arrays if n.startswith("preprocess") or n.endswith((".weight", ".bias"))}
    graph = helper.make_graph(b.nodes, "nst_features",
                              [helper.make_tensor_value_info(og.IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
                              outputs, initializer=[og._external(n, arrays[n], table) for n in arrays if n in used])
    onnx.save_model(og._model(graph), str(out_dir / "features.onnx"))
    features_outputs = [o.name for o in outputs]

    # ---- gradient
    b = og._Builder("gradient")
    consts = dict(og._CONSTS)
    consts["const.zero"] = np.array(0.0, np.float32)
    consts["const.flat"] = np.array([1, -1], np.int64)

    def relu_grad(g, r):
        if relu_mask == "sign":
            return b.op("Mul", [g, b.op("Sign", [r])])
        if relu_mask == "castmul":  # r >= 0: Cast to BOOL is r != 0 == r > 0; back to FLOAT gives the 0/1 mask
            return b.op("Mul", [g, b.op("Cast", [b.op("Cast", [r], to=TensorProto.BOOL)], to=TensorProto.FLOAT)])
        return b.op("Where", [b.op("Greater", [r, "const.zero"]), g, "const.zero"])

    g = None
    saved_inputs: list[str] = []
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if layer.name in taps:
            g = og.grad_name(layer.name) if g is None else b.op("Add", [g, og.grad_name(layer.name)])
        if layer.kind == "relu":
            if pool == "indices" and layer.name in pre_pool:
                continue  # done at the pool, on the pool output
            saved_inputs.append(layer.name)
            g = relu_grad(g, layer.name)
        elif layer.kind == "conv":
            wt = b.op("Transpose", [f"{layer.name}.weight"], perm=[1, 0, 2, 3])
            wf = b.op("Slice", [wt, "const.flip_starts", "const.flip_ends", "const.hw_axes", "const.flip_steps"])
            g = b.op("Conv", [g, wf], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
        elif pool == "indices":
            saved_inputs += [layer.name, f"{layer.name}_idx"]
            g = relu_grad(g, layer.name)  # the pre-pool ReLU's mask at the routed (maximum) positions
            # zeros shaped like the pool input: the block's first ReLU (always saved) has that shape
            block_first = next(lay.name for lay in layers[:i] if lay.kind == "relu" and
                               lay.scale == layers[i - 1].scale)
            zeros = b.op("ConstantOfShape", [b.op("Shape", [block_first])])
            flat = b.op("Reshape", [zeros, "const.flat"])
            up = b.op("ScatterElements", [flat, b.op("Reshape", [f"{layer.name}_idx", "const.flat"]),
                                          b.op("Reshape", [g, "const.flat"])], axis=1)
            g = b.op("Reshape", [up, b.op("Shape", [block_first])])
        else:
            g = og._maxpool_backward(b, g, layers[i - 1].name)
    at = b.op("Transpose", ["preprocess.weight"], perm=[1, 0, 2, 3])
    b.op("Conv", [g, at], og.GRAD_IMAGE)
    inputs = [og._value_info(og.grad_name(t), by_name[t].out_channels, by_name[t].scale) for t in taps]
    for n in dict.fromkeys(saved_inputs):
        if n.endswith("_idx"):
            lay = by_name[n[:-4]]
            inputs.append(helper.make_tensor_value_info(n, TensorProto.INT64, [1, lay.out_channels,
                                                                               *og._dims(lay.scale)]))
        else:
            inputs.append(og._value_info(n, by_name[n].out_channels, by_name[n].scale))
    used = {n for n in arrays if n.endswith(".weight") or n == "preprocess.weight"}
    graph = helper.make_graph(
        b.nodes, "nst_gradient", inputs,
        [helper.make_tensor_value_info(og.GRAD_IMAGE, TensorProto.FLOAT, [1, 3, "height", "width"])],
        initializer=[og._external(n, arrays[n], table) for n in arrays if n in used]
        + [numpy_helper.from_array(v, k) for k, v in consts.items()])
    onnx.save_model(og._model(graph), str(out_dir / "gradient.onnx"))
    return {"features_outputs": features_outputs, "gradient_saved_inputs": list(dict.fromkeys(saved_inputs)),
            "taps": taps}


def export_variant(out_dir: Path, relu_mask: str, pool: str) -> Path:
    """A complete model directory (graphs, weights, manifest with sha256s) for a graph variant, loadable by the
    unmodified engine (nst.engine.load_model), so `bench.py --child engine --model DIR` measures it end to end."""
    import hashlib

    from nst.engine.model import read_manifest

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = build_variant_graphs(out_dir, relu_mask, pool)
    m = read_manifest(MODEL)
    taps = m["taps"]
    m["graphs"]["features"]["outputs"]["saved"] = [n for n in spec["features_outputs"] if n not in taps]
    m["graphs"]["gradient"]["inputs"]["saved"] = spec["gradient_saved_inputs"]
    for key in ("features", "gradient", "weights"):
        f = out_dir / m["graphs"][key]["file"]
        m["graphs"][key]["sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    m["id"] = f"{m['id']}-variant-{relu_mask}-{pool}"
    (out_dir / "manifest.json").write_text(json.dumps(m, indent=2) + "\n")
    return out_dir


class VariantRunner:
    """features + vjp on a variant's two sessions, with the engine's session options and IO binding pattern."""

    def __init__(self, out_dir: Path, spec: dict):
        import onnxruntime as ort

        from nst.engine.model import cpu_count

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.intra_op_num_threads = cpu_count()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.feat = ort.InferenceSession(str(out_dir / "features.onnx"), opts, providers=["CPUExecutionProvider"])
        self.grad = ort.InferenceSession(str(out_dir / "gradient.onnx"), opts, providers=["CPUExecutionProvider"])
        self.spec = spec
        self.saved = {}

    def features(self, image):
        binding = self.feat.io_binding()
        binding.bind_cpu_input("image", image)
        for n in self.spec["features_outputs"]:
            binding.bind_output(n, "cpu")
        self.saved = {}
        self.feat.run_with_iobinding(binding)
        self.saved = dict(zip(self.spec["features_outputs"], binding.get_outputs()))
        return {t: self.saved[t].numpy() for t in self.spec["taps"]}

    def vjp(self, grads):
        binding = self.grad.io_binding()
        for t in self.spec["taps"]:
            binding.bind_cpu_input(og_grad_name(t), grads[t])
        for n in self.spec["gradient_saved_inputs"]:
            binding.bind_ortvalue_input(n, self.saved[n])
        binding.bind_output("grad_image", "cpu")
        self.grad.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()


def og_grad_name(t: str) -> str:
    return f"grad_{t}"


GRAPH_VARIANTS = [("sign", "mask"), ("castmul", "mask"), ("where", "mask"), ("sign", "indices"),
                  ("castmul", "indices")]


def exp_graphs(size: int, rounds: int) -> dict:
    """Time features+vjp for each variant (interleaved), check every variant's gradient equals the exported one's."""
    from bench import bench_images, start_image

    content, _, _ = bench_images(size)
    x = start_image(content)
    tmp = Path(tempfile.mkdtemp(prefix="nst-variants-"))
    variants = {}
    for relu_mask, pool in GRAPH_VARIANTS:
        d = tmp / f"{relu_mask}-{pool}"
        d.mkdir()
        variants[f"relu={relu_mask},pool={pool}"] = VariantRunner(d, build_variant_graphs(d, relu_mask, pool))
    base = next(iter(variants.values()))
    feats = base.features(x)
    rng = np.random.default_rng(0)
    grads = {t: (rng.standard_normal(v.shape) * 1e-3).astype(np.float32) for t, v in feats.items()}
    check = {}
    from bench import synthetic_image, to_nchw

    flat = to_nchw(synthetic_image(size, size, 0))  # flat and saturated patches: ties in the max-pool windows
    for name, img in (("bench_image", x), ("flat_patches", flat)):
        base.features(img)
        ref = base.vjp(grads)
        for k, v in variants.items():
            v.features(img)
            g = v.vjp(grads)
            check[f"{k} @ {name}"] = float(np.abs(g - ref).max() / np.abs(ref).max())

    def fn(v):
        def f():
            t = now()
            v.features(x)
            t1 = now()
            v.vjp(grads)
            return {"features": t1 - t, "vjp": now() - t1}
        return f

    return {"max_rel_diff_vs_exported_formulation": check,
            "timings": interleave({k: fn(v) for k, v in variants.items()}, rounds)}


def exp_ops(size: int, rounds: int) -> dict:
    """ReLU-backward formulations as one-node-pair ONNX graphs on a (1, 64, S, S) tensor (relu1_2's shape), with the
    engine's session options: g * mask(r) for r >= 0."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from nst.engine.model import cpu_count

    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    big = numpy_helper.from_array(np.array(3.0e38, np.float32), "big")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    forms = {
        "mul_sign": [helper.make_node("Sign", ["r"], ["s"]), helper.make_node("Mul", ["g", "s"], ["out"])],
        "where_greater": [helper.make_node("Greater", ["r", "zero"], ["m"]),
                          helper.make_node("Where", ["m", "g", "zero"], ["out"])],
        "where_cast_bool": [helper.make_node("Cast", ["r"], ["m"], to=TensorProto.BOOL),
                            helper.make_node("Where", ["m", "g", "zero"], ["out"])],
        "mul_cast_cast": [helper.make_node("Cast", ["r"], ["m"], to=TensorProto.BOOL),
                          helper.make_node("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
                          helper.make_node("Mul", ["g", "mf"], ["out"])],
        "mul_min_scaled": [helper.make_node("Mul", ["r", "big"], ["rb"]), helper.make_node("Min", ["rb", "one"], ["mf"]),
                           helper.make_node("Mul", ["g", "mf"], ["out"])],
        "mul_only (lower bound)": [helper.make_node("Mul", ["g", "r"], ["out"])],
    }
    shape = [1, 64, size, size]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = cpu_count()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    rng = np.random.default_rng(0)
    r = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)
    g = rng.standard_normal(shape).astype(np.float32)
    sessions, results = {}, {}
    for k, nodes in forms.items():
        graph = helper.make_graph(nodes, k, [helper.make_tensor_value_info("g", TensorProto.FLOAT, shape),
                                             helper.make_tensor_value_info("r", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
                                  initializer=[zero, big, one])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        sessions[k] = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        results[k] = sessions[k].run(None, {"g": g, "r": r})[0]
    ref = g * (r > 0)
    exact = {k: bool(np.array_equal(v, ref)) for k, v in results.items()}
    timings = interleave({k: (lambda s=s: s.run(None, {"g": g, "r": r})) for k, s in sessions.items()}, rounds)
    return {"shape": shape, "exact": exact, "timings": timings}


MEMORY_VARIANTS = {
    "engine": "the engine as it is",
    "drop_state": "Model.features drops the previous saved state (self._saved) before running",
    "no_arena": "SessionOptions.enable_cpu_mem_arena = False (both sessions)",
    "arena_same_as_requested": "a shared CPU arena registered with OrtArenaCfg(arena_extend_strategy=1 "
                               "kSameAsRequested) and session.use_env_allocators=1",
    "no_mem_pattern": "SessionOptions.enable_mem_pattern = False",
    "drop_state+no_arena": "both",
    "persistent_outputs": "the features graph writes into OrtValues allocated once per image shape "
                          "(bind_ortvalue_output), reused every call: one set of saved state, no per-call allocation",
    "persistent_outputs+no_arena": "both",
}


def memory_child(size: int, variant: str, evals: int) -> dict:
    import resource

    import onnxruntime as ort

    from bench import current_rss_bytes

    model, objective, x = setup(size)
    rss_setup = current_rss_bytes()
    if variant not in ("engine", "drop_state", "persistent_outputs"):
        from nst.engine.model import cpu_count

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.intra_op_num_threads = cpu_count()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if "no_arena" in variant:
            opts.enable_cpu_mem_arena = False
        if variant == "no_mem_pattern":
            opts.enable_mem_pattern = False
        if variant == "arena_same_as_requested":
            info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))
            opts.add_session_config_entry("session.use_env_allocators", "1")
        m = model.manifest
        model._features, model._gradient = (
            ort.InferenceSession(str(MODEL / m["graphs"][k]["file"]), opts, providers=["CPUExecutionProvider"])
            for k in ("features", "gradient"))
        # the targets were computed with the engine's sessions; rebuild so setup memory is comparable
        model, objective = model, type(objective)(model, x, objective.grams, objective.w)
    if "persistent_outputs" in variant:
        persistent = {}

        def features(image, keep_state=True):
            image = model._check_image(image)
            graph = model.manifest["graphs"]["features"]
            taps = graph["outputs"]["taps"]
            names = taps + (graph["outputs"]["saved"] if keep_state else [])
            binding = model._features.io_binding()
            binding.bind_cpu_input("image", image)
            if keep_state:
                key = image.shape
                if persistent.get("shape") != key:
                    persistent.clear()
                    model._saved = {}
                    h, w = image.shape[2:]
                    shapes = model.manifest["layer_shapes"]
                    for n in names:
                        c, sc = shapes[n]
                        persistent[n] = ort.OrtValue.ortvalue_from_shape_and_type([1, c, h // sc, w // sc], np.float32,
                                                                                "cpu", 0)
                    persistent["shape"] = key
                for n in names:
                    binding.bind_ortvalue_output(n, persistent[n])
            else:
                for n in names:
                    binding.bind_output(n, "cpu")
            model._features.run_with_iobinding(binding)
            values = dict(zip(names, binding.get_outputs()))
            if keep_state:
                model._saved, model._saved_image = values, image.copy()
            return {t: values[t].numpy() for t in taps}

        model.features = features
    if "drop_state" in variant:
        f0 = type(model).features

        def features(image, keep_state=True):
            if keep_state:
                model._saved, model._saved_image = {}, None
            return f0(model, image, keep_state)

        model.features = features
    ts = []
    for _ in range(evals):
        t = now()
        objective(x)
        ts.append(now() - t)
    return {"variant": variant, "rss_after_setup_mb": rss_setup / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "eval_s": statistics.median(ts[1:] or ts), "eval_all_s": ts}


def exp_memory(size: int, rounds: int) -> dict:
    """Peak RSS per variant, each in its own process (RSS is not disturbed by other processes' CPU use)."""
    import subprocess

    out = {"size": size, "variants": MEMORY_VARIANTS}
    for v in MEMORY_VARIANTS:
        p = subprocess.run([sys.executable, __file__, "memory-child", "--size", str(size), "--variant", v,
                            "--rounds", str(rounds)], capture_output=True, text=True, cwd=str(ROOT))
        out[v] = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else p.stderr[-800:]
    return out


def exp_lbfgs(size: int, rounds: int) -> dict:
    """scipy L-BFGS-B cost apart from the objective (bench.lbfgs_overhead), plus the pieces of its one-time setup and
    what stylize's fun wrapper adds per evaluation."""
    from bench import lbfgs_overhead

    n = 3 * size * size
    out = lbfgs_overhead(size, 25)
    from scipy.optimize._constraints import new_bounds_to_old, old_bound_to_new

    t = now()
    old = new_bounds_to_old(0.0, 1.0, n)
    t1 = now()
    old_bound_to_new(old)
    out["bounds_round_trip_s"] = [t1 - t, now() - t1]
    rng = np.random.default_rng(0)
    x = rng.random(n)
    g32 = rng.random(n).astype(np.float32)
    out["fun_wrapper_s_per_eval"] = statistics.median(
        [_t(lambda: (x.astype(np.float32), np.isfinite(g32).all(), x.copy(), g32.astype(np.float64).ravel()))
         for _ in range(7)])
    return out


def _t(f) -> float:
    t = now()
    f()
    return now() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", choices=("blas", "state", "session", "graphs", "ops", "lbfgs", "memory",
                                          "memory-child", "export-variant"))
    p.add_argument("--relu", default="sign", choices=("sign", "castmul", "where"), help="export-variant")
    p.add_argument("--pool", default="indices", choices=("mask", "indices"), help="export-variant")
    p.add_argument("--out", help="export-variant: the model directory to write")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    if a.experiment == "export-variant":
        print(export_variant(Path(a.out), a.relu, a.pool))
        return 0
    if a.experiment == "memory-child":
        print(json.dumps(memory_child(a.size, a.variant, a.rounds + 1)))
        return 0
    fn = {"memory": exp_memory, "blas": exp_blas, "state": exp_state, "session": exp_session, "graphs": exp_graphs,
          "ops": exp_ops, "lbfgs": exp_lbfgs}[a.experiment]
    print(json.dumps(fn(a.size, a.rounds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
