"""The CUDA path: onnxruntime's CUDA execution provider gives the same features, gradients and runs as the CPU
provider and the torch reference. Skips where onnxruntime offers no CUDA (no GPU, or the CPU-only onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        "CUDAExecutionProvider" not in ort.get_available_providers(),
        reason="no GPU: onnxruntime offers no CUDAExecutionProvider here",
    ),
]

from nst.engine import load_model, stylize  # noqa: E402


def rel(a, b):
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


@pytest.fixture(scope="module")
def models(model_dir):
    return load_model(model_dir, "cpu"), load_model(model_dir, "cuda")


def test_provider_is_cuda(models):
    assert models[1].provider == "CUDAExecutionProvider"


@pytest.mark.torch
@pytest.mark.parametrize("size", [(67, 93), (256, 256)])
def test_cuda_features_and_vjp_match_cpu_and_torch(models, size):
    pytest.importorskip("torch")
    from nst.export.arch import truncate
    from nst.export.torch_vgg import VGGFeatures, vjp_np
    from nst.export.weights import load_weights

    cpu, cuda = models
    rng = np.random.default_rng(size[0])
    image = rng.random((1, 3, *size), dtype=np.float32)
    f_cpu, f_gpu = cpu.features(image), cuda.features(image)
    for tap in cpu.layers:
        assert rel(f_gpu[tap], f_cpu[tap]) <= 1e-5, tap
    grads = {t: rng.standard_normal(f.shape).astype(np.float32) for t, f in f_cpu.items()}
    g_gpu = cuda.vjp(image, grads)
    taps = cpu.layers
    layers = truncate("vgg19", taps)
    module = VGGFeatures(layers, load_weights("original", "vgg19", layers), "max", taps)
    from nst.export.validate import relu_ties

    state = {k: v.numpy() for k, v in cuda._saved.items()}  # CUDA's own taps and masks: its ReLU decisions
    ref = vjp_np(module, image, grads, relu_ties=relu_ties(state, layers))
    assert rel(g_gpu, ref) <= 1e-4


def test_cuda_run_matches_cpu_run(models, synthetic_image):
    cpu, cuda = models
    content, style = synthetic_image(64, 80, 0), synthetic_image(70, 56, 9)
    h_cpu, h_gpu = [], []
    r_cpu = stylize(cpu, content, [style], size=80, scales=1, iterations=30, callback=lambda p: h_cpu.append(p.loss))
    r_gpu = stylize(cuda, content, [style], size=80, scales=1, iterations=30, callback=lambda p: h_gpu.append(p.loss))
    np.testing.assert_allclose(h_gpu[:5], h_cpu[:5], rtol=1e-3)
    assert abs(r_gpu.loss - r_cpu.loss) <= 0.02 * r_cpu.loss
    assert r_gpu.provider == "CUDAExecutionProvider"
