"""End to end: the engine (onnxruntime + NumPy) against the torch reference (autograd), same weights, same J, same
scipy L-BFGS-B, same init. Loss histories agree within 1e-3 over 5 iterations; final J within 2% after 30."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.torch
pytest.importorskip("torch", reason="parity needs the torch reference (the export extra)")
from nst.engine import load_model, stylize  # noqa: E402
from nst.engine.images import resize  # noqa: E402
from nst.export.arch import truncate  # noqa: E402
from nst.export.reference import TorchObjective, reference_stylize, to_nchw  # noqa: E402
from nst.export.torch_vgg import VGGFeatures  # noqa: E402
from nst.export.weights import load_weights  # noqa: E402


@pytest.mark.parametrize("init", ["content", "noise"])
def test_engine_matches_torch_reference(model_dir, init, synthetic_image):
    model = load_model(model_dir, "cpu")
    m = model.manifest
    content = synthetic_image(64, 80, 0)
    style = synthetic_image(70, 56, 9)[:, ::-1] ** 2
    alpha, beta = m.content_weight, m.style_weight_equal  # the seeds' J: equal layer weights, one scale
    histories = []
    result = stylize(
        model,
        content,
        [style],
        size=80,
        scales=1,
        style_layer_weights="equal",
        iterations=30,
        init=init,
        seed=4,
        callback=lambda p: histories.append(p.loss),
    )
    assert result.iterations == 30 and len(histories) == 30

    layers = truncate("vgg19", list(m.taps))
    module = VGGFeatures(layers, load_weights("original", "vgg19", layers), "max", list(m.taps))
    style_resized = resize(style.astype(np.float32), (80, 64))  # long side = content's, as stylize does
    obj = TorchObjective(
        module,
        to_nchw(content),
        [to_nchw(style_resized)],
        m.default_content_layer,
        list(m.default_style_layers),
        alpha,
        beta,
    )
    from nst.engine.stylize import make_init

    x0 = to_nchw(make_init(init, content, 4))
    ref_hist, _, _, _ = reference_stylize(obj, x0, 30)
    np.testing.assert_allclose(histories[:5], ref_hist[:5], rtol=1e-3)
    assert abs(result.loss - ref_hist[-1]) <= 0.02 * ref_hist[-1]
    assert histories[-1] < 0.5 * histories[0]  # it optimised something
