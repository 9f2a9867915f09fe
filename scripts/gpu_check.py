"""Time the engine on CUDA (onnxruntime CUDA EP) against the CPU provider and a torch-on-CUDA autograd reference, and
split an evaluation into ORT forward, NumPy losses, ORT gradient graph and host<->device copies.
Usage: python scripts/gpu_check.py MODEL_DIR [sizes...]   (prints JSON lines)"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from nst.engine import load_model
from nst.engine.losses import content_loss, gram, style_loss


def med(f, n=5):
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def engine_split(model, size):
    rng = np.random.default_rng(0)
    img = rng.random((1, 3, size, size), dtype=np.float32)
    m = model.manifest
    feats = model.features(img)
    grams = {name: gram(feats[name]) for name in m.default_style_layers}
    target = feats[m.default_content_layer] * 0.9

    def losses():
        g = {}
        _, g[m.default_content_layer] = content_loss(feats[m.default_content_layer], target)
        for name in m.default_style_layers:
            _, gs = style_loss(feats[name], grams[name] * 1.1)
            g[name] = gs if name not in g else g[name] + gs
        return g

    grads = losses()
    t_fwd = med(lambda: model.features(img))
    t_loss = med(losses)
    model.features(img)
    t_vjp = med(lambda: model.vjp(img, grads))

    def full():
        model.features(img)
        model.vjp(img, losses())

    t_full = med(full)
    # bytes crossing host<->device per evaluation: image in, taps out, upstream grads in, dL/dimage out
    nbytes = 2 * img.nbytes + 2 * sum(f.nbytes for f in feats.values())
    return {"fwd": t_fwd, "numpy_losses": t_loss, "vjp": t_vjp, "eval": t_full, "hd_bytes": nbytes}


def torch_cuda(model_dir, size):
    import torch

    from nst.engine import read_manifest
    from nst.export.arch import truncate
    from nst.export.reference import content_t, gram_t, style_t
    from nst.export.torch_vgg import VGGFeatures
    from nst.export.weights import load_weights

    m = read_manifest(model_dir)
    layers = truncate("vgg19", list(m.taps))
    mod = VGGFeatures(layers, load_weights("original", "vgg19", layers), "max", list(m.taps)).cuda()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x0 = torch.rand(1, 3, size, size, device="cuda")
    with torch.no_grad():
        f = mod(x0)
        tc = f[m.default_content_layer] * 0.9
        ts = {name: gram_t(f[name]) * 1.1 for name in m.default_style_layers}

    def ev():
        x = x0.clone().requires_grad_(True)
        feats = mod(x)
        j = content_t(feats[m.default_content_layer], tc) + sum(style_t(feats[n], ts[n]) for n in ts)
        (g,) = torch.autograd.grad(j, x)
        g.cpu()
        torch.cuda.synchronize()

    return med(ev)


def main():
    model_dir = sys.argv[1]
    sizes = [int(s) for s in sys.argv[2:]] or [256, 512, 1024]
    gpu = load_model(model_dir, "cuda")
    gpu_tf32 = load_model(model_dir, "cuda", tf32=True)
    cpu = load_model(model_dir, "cpu")
    for size in sizes:
        row = {
            "size": size,
            "provider": gpu.provider,
            "cuda": engine_split(gpu, size),
            "cuda_tf32": engine_split(gpu_tf32, size),
        }
        if size <= 512:
            row["cpu_eval"] = engine_split(cpu, size)["eval"]
        try:
            row["torch_cuda_eval"] = torch_cuda(model_dir, size)
        except Exception as e:  # torch without CUDA
            row["torch_cuda_eval"] = repr(e)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
