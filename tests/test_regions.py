"""Spatial control (engine/regions.py): the guided Gram and its style loss against finite differences (float64) and
torch autograd, on NumPy and array_api_strict arrays; m = 1 gives the plain Gram and style loss exactly; the masks at
each layer's resolution (shapes as the network's, mass, "inside" within "resize"'s support and equal to a min-pooling
through the layers); coverage finds a region too small for a layer; two region terms confine two styles."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from scipy.optimize import minimize

from nst.engine.losses import gram, style_loss
from nst.engine.manifest import LayerSpec
from nst.engine.regions import (
    RegionStyleTerm,
    coverage,
    guided_gram,
    guided_style_loss,
    layer_masks,
    source_gram,
)
from nst.engine.terms import auto_layer_weights
from nst.export.arch import vgg_layers

try:
    import torch
except ImportError:  # a runtime-only install: the array-API and finite-difference tests still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="autograd comparisons need torch (the export extra)")

VGG19 = tuple(LayerSpec(la.name, la.out_channels, la.scale) for la in vgg_layers("vgg19"))
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def rel(a, b):
    return float(np.linalg.norm(np.ravel(a - b)) / np.linalg.norm(np.ravel(b)))


def _acts(shape, seed):
    return np.random.default_rng(seed).random(shape) * 3.0  # float64, ReLU-like (non-negative)


def _soft_mask(h, w, seed):
    """A soft mask with a zero band and a band of ones: every kind of value the losses meet."""
    m = np.random.default_rng(seed).random((h, w))
    m[:, :2] = 0.0
    m[:, -1] = 1.0
    return m


def fd_check(f, x, n_probe=12, eps=1e-6, seed=0):
    """Central differences in float64 at random coordinates: the analytic gradient must agree."""
    rng = np.random.default_rng(seed)
    _, g = f(x)
    for i in rng.choice(x.size, n_probe, replace=False):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        num = (f(xp)[0] - f(xm)[0]) / (2 * eps)
        assert abs(num - g.flat[i]) <= 1e-5 * max(abs(num), np.abs(g).max() * 1e-3), (i, num, g.flat[i])


# --- the guided Gram and its loss ----------------------------------------------------------------------------------


def guided_gram_t(a, m):
    c = a.shape[1]
    B = (a * m).reshape(c, -1)
    return B @ B.T / (m * m).sum()


def guided_style_t(a, m, g_t):
    c = a.shape[1]
    return ((g_t - guided_gram_t(a, m)) ** 2).sum() / (4.0 * c * c)


@pytest.mark.torch
@needs_torch
def test_guided_style_loss_vs_finite_differences_and_autograd():
    a_g, m = _acts((1, 6, 5, 7), 0), _soft_mask(5, 7, 1)
    g_t = source_gram(_acts((1, 6, 8, 4), 2), _soft_mask(8, 4, 3))  # a style region from an image of another size
    fd_check(lambda a: guided_style_loss(a, m, g_t), a_g, n_probe=20)
    assert np.all(guided_style_loss(a_g, m, g_t)[1][..., :2] == 0)  # units outside the region get no gradient

    f32 = [np.asarray(x, np.float32) for x in (a_g, m, g_t)]
    v, g = guided_style_loss(*f32)
    t = torch.from_numpy(f32[0]).requires_grad_(True)
    j = guided_style_t(t, torch.from_numpy(f32[1]), torch.from_numpy(f32[2]))
    (tg,) = torch.autograd.grad(j, t)
    assert abs(v - float(j.detach())) <= 1e-5 * float(j.detach()) and rel(g, tg.numpy()) <= 1e-5
    assert g.dtype == np.float32 and g.shape == a_g.shape
    G = guided_gram(f32[0], f32[1])
    assert np.array_equal(G, G.T) and rel(G, guided_gram_t(t.detach(), torch.from_numpy(f32[1])).numpy()) <= 1e-5


@pytest.mark.parametrize("chw", [False, True], ids=["1CHW", "CHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_of_ones_is_the_plain_gram_and_style_loss_exactly(dtype, chw):
    shape = (8, 9, 11) if chw else (1, 8, 9, 11)
    a_g = _acts(shape, 4).astype(dtype)
    ones = np.ones((9, 11), dtype)
    g_s = gram(_acts((1, 8, 6, 5), 5).astype(dtype))
    assert np.array_equal(guided_gram(a_g, ones), gram(a_g)) and np.array_equal(source_gram(a_g), gram(a_g))
    v, g = guided_style_loss(a_g, ones, g_s)
    v0, g0 = style_loss(a_g, g_s)
    assert v == v0 and np.array_equal(g, g0) and g.dtype == dtype


def test_guided_gram_normalisation():
    """Normalised by the mask's mass: a binary mask gives the Gram of the region's units alone; scaling the mask
    changes nothing; half of a stationary texture gives about the whole texture's Gram (not half of it)."""
    a = _acts((1, 5, 12, 10), 6)
    half = np.zeros((12, 10))
    half[:, :4] = 1.0
    assert rel(guided_gram(a, half), gram(a[..., :4])) <= 1e-12
    m = _soft_mask(12, 10, 7)
    assert rel(guided_gram(a, 0.3 * m), guided_gram(a, m)) <= 1e-12

    rng = np.random.default_rng(8)  # a stationary texture: iid pixels through a fixed channel mixing, then ReLU
    texture = np.maximum(np.einsum("dc,chw->dhw", rng.standard_normal((6, 6)), rng.standard_normal((6, 96, 96))), 0)
    left = np.zeros((96, 96))
    left[:, :48] = 1.0
    g_left = guided_gram(texture, left)
    assert rel(g_left, gram(texture)) <= 0.1  # sampling noise of 4608 heavy-tailed units
    assert rel(g_left * (left.sum() / left.size), gram(texture)) >= 0.4  # dividing by N instead: half the Gram


def test_guided_losses_reject_mismatched_or_empty_masks():
    a = _acts((1, 4, 6, 5), 9)
    with pytest.raises(ValueError, match="does not match"):
        guided_gram(a, np.ones((5, 6)))
    with pytest.raises(ValueError, match="covers no unit"):
        guided_style_loss(a, np.zeros((6, 5)), gram(a))
    with pytest.raises(ValueError, match="1, C, H, W"):
        guided_gram(np.concatenate([a, a]), np.ones((6, 5)))


# --- the array API: the same code on array_api_strict arrays -------------------------------------------------------


@pytest.mark.parametrize("chw", [False, True], ids=["1CHW", "CHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_api_strict_equals_numpy(strict, from_strict, dtype, chw):
    """guided_gram, guided_style_loss and the term on strict arrays (masks given as strict arrays of another dtype, or
    as NumPy for the term) equal NumPy's, with gradients of the activations' namespace, dtype, shape and device."""
    xps, to = strict
    shape = (8, 5, 7) if chw else (1, 8, 5, 7)
    a_g, m = _acts(shape, 10).astype(dtype), _soft_mask(5, 7, 11)  # m float64 whatever the activations' dtype
    g_s = source_gram(_acts((1, 8, 6, 4), 12).astype(dtype), _soft_mask(6, 4, 13))
    tol = 1e-5 if dtype == np.float32 else 1e-12

    G, Gs = guided_gram(a_g, m), guided_gram(to(a_g), to(m))
    assert array_namespace(Gs) is xps and Gs.dtype == to(a_g).dtype and Gs.device == to(a_g).device
    np.testing.assert_allclose(from_strict(xps, Gs), G, rtol=tol, atol=tol * float(np.abs(G).max()))

    v, g = guided_style_loss(a_g, m, g_s)
    vs, gs = guided_style_loss(to(a_g), to(m), to(g_s))
    assert vs == pytest.approx(v, rel=1e-6) and g.dtype == dtype
    assert array_namespace(gs) is xps and gs.dtype == to(a_g).dtype and gs.device == to(a_g).device
    np.testing.assert_allclose(from_strict(xps, gs), g, rtol=tol, atol=tol * float(np.abs(g).max()))

    term = RegionStyleTerm("style:1", 2.0, ["relu1_1"], {"relu1_1": m}, {"relu1_1": to(g_s)}, [0.5])
    for _ in range(2):  # the second call reuses the mask moved to the device
        out = term({"relu1_1": to(a_g)}, None)
        assert out.value == pytest.approx(0.5 * v, rel=1e-6) and out.grads["relu1_1"].device == to(a_g).device
        np.testing.assert_allclose(
            from_strict(xps, out.grads["relu1_1"]), 0.5 * g, rtol=tol, atol=tol * np.abs(g).max()
        )


# --- masks at each layer's resolution ------------------------------------------------------------------------------


def _disc(h, w, cy, cx, r):
    y, x = np.mgrid[0:h, 0:w]
    return (((y - cy) ** 2 + (x - cx) ** 2) <= r * r).astype(np.float32)


@pytest.mark.parametrize("method", ["resize", "inside"])
def test_layer_masks_shapes_follow_the_pools(method):
    """(H // scale, W // scale) at every layer, for odd and even sizes, float32 in [0, 1]."""
    for H, W in ((37, 53), (64, 48), (33, 17)):
        masks = layer_masks(_disc(H, W, H / 2, W / 2, H / 3), VGG19, [s.name for s in VGG19], method)
        for s in VGG19:
            m = masks[s.name]
            assert m.shape == (H // s.scale, W // s.scale) and m.dtype == np.float32, (s.name, m.shape)
            assert m.min(initial=0) >= 0 and m.max(initial=0) <= 1


def test_layer_masks_match_the_models_activations(random_model_dir, synthetic_image):
    """The masks' shapes are the exported model's activation shapes, read from its manifest."""
    from nst.engine.images import to_nchw
    from nst.engine.model import load_model

    model = load_model(random_model_dir, "cpu")
    feats = model.features(to_nchw(synthetic_image(37, 53)), keep_state=False)
    for method in ("resize", "inside"):
        masks = layer_masks(np.ones((37, 53), np.float32), model.manifest, list(feats), method)
        assert {k: m.shape for k, m in masks.items()} == {k: f.shape[-2:] for k, f in feats.items()}


def test_resize_keeps_the_mass():
    """Area downsampling: the mean over the layer equals the mean over the pixels the pools keep."""
    m = _soft_mask(64, 48, 14)
    masks = layer_masks(m, VGG19, STYLE_LAYERS, "resize")
    for name in STYLE_LAYERS:
        assert float(masks[name].mean()) == pytest.approx(float(m.mean()), rel=1e-6)
    odd = _soft_mask(37, 53, 15)
    r = layer_masks(odd, VGG19, ["relu3_1"], "resize")["relu3_1"]  # scale 4: rows 36, columns 52 are kept
    assert float(r.mean()) == pytest.approx(float(odd[:36, :52].mean()), rel=1e-6)
    assert np.all(layer_masks(np.ones((37, 53)), VGG19, STYLE_LAYERS, "resize")["relu5_1"] == 1)


def _min_pool_through(layers, name, inside: np.ndarray) -> np.ndarray:
    """An independent "inside": propagate the binary mask layer by layer (conv 3x3 pad 1: all of the 3x3 window, the
    padding counting as inside; pool 2x2 stride 2: all of the block; relu: itself)."""
    x = inside.copy()
    for s in layers:
        if s.kind == "conv":
            p = np.pad(x, 1, constant_values=True)
            x = np.all([p[i : i + x.shape[0], j : j + x.shape[1]] for i in range(3) for j in range(3)], axis=0)
        elif s.kind == "pool":
            h, w = x.shape[0] // 2, x.shape[1] // 2
            x = x[: 2 * h, : 2 * w].reshape(h, 2, w, 2).all(axis=(1, 3))
        if s.name == name:
            return x
    raise KeyError(name)


def test_inside_is_a_min_pooling_and_within_resize():
    m = _disc(97, 141, 70, 120, 15)  # a disc, a thin island and a band wide enough for relu5_1's 156 px field
    m[5:9, 110:125] = 1.0
    m[:, :90] = 1.0
    inside = layer_masks(m, VGG19, STYLE_LAYERS, "inside")
    resized = layer_masks(m, VGG19, STYLE_LAYERS, "resize")
    cov_in, cov_re = coverage(inside), coverage(resized)
    for name in STYLE_LAYERS:
        assert set(np.unique(inside[name])) <= {0.0, 1.0}
        np.testing.assert_array_equal(inside[name], _min_pool_through(VGG19, name, m >= 0.5), err_msg=name)
        assert np.all(resized[name][inside[name] == 1] > 0), name  # inside's support within resize's
        assert 0 < cov_in[name] < cov_re[name], name
    assert [cov_in[n] for n in STYLE_LAYERS] == sorted((cov_in[n] for n in STYLE_LAYERS), reverse=True)
    full = layer_masks(np.ones((37, 53)), VGG19, STYLE_LAYERS, "inside")
    assert all(np.all(full[n] == 1) for n in STYLE_LAYERS)  # the border's zero padding is no other region


def test_coverage_finds_a_region_too_small_for_the_deepest_layer():
    """A 12 px square: some relu5_1 units at "resize" (softly), none at "inside" (relu5_1's field is 156 px wide)."""
    m = np.zeros((96, 96), np.float32)
    m[40:52, 40:52] = 1.0
    inside = layer_masks(m, VGG19, STYLE_LAYERS, "inside")
    cov = coverage(inside)
    assert cov["relu1_1"] > 0 and cov["relu5_1"] == 0
    assert coverage(layer_masks(m, VGG19, ["relu5_1"], "resize"))["relu5_1"] > 0
    assert coverage({"relu5_1": np.zeros((0, 3), np.float32)}) == {"relu5_1": 0.0}  # an image smaller than the pools
    targets = {s.name: np.eye(s.channels, dtype=np.float32) for s in VGG19 if s.name in STYLE_LAYERS}
    with pytest.raises(ValueError, match=r"covers no unit of layer.*relu5_1"):
        RegionStyleTerm("style:1", 1.0, STYLE_LAYERS, inside, targets)


def test_layer_masks_reject_bad_input():
    with pytest.raises(ValueError, match="unknown mask method"):
        layer_masks(np.ones((8, 8)), VGG19, ["relu1_1"], "erode")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        layer_masks(np.full((8, 8), 1.5), VGG19, ["relu1_1"])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        layer_masks(np.ones((8, 8, 3)), VGG19, ["relu1_1"])
    with pytest.raises(KeyError):
        layer_masks(np.ones((8, 8)), VGG19, ["relu9_1"])


# --- the loss term -------------------------------------------------------------------------------------------------


def test_region_style_term():
    """Attributes of a LossTerm; the value is sum_l lambda_l J_r^l with parts per layer; auto weights are
    objective.auto_layer_weights of the targets; the weight is left to the caller."""
    layers = ("a", "b")
    feats = {"a": _acts((1, 4, 8, 6), 16), "b": _acts((1, 6, 4, 3), 17)}
    masks = {"a": _soft_mask(8, 6, 18), "b": _soft_mask(4, 3, 19)}
    targets = {"a": gram(_acts((1, 4, 5, 5), 20)), "b": gram(_acts((1, 6, 3, 3), 21))}
    term = RegionStyleTerm("style:1", 1e4, layers, masks, targets)
    assert (term.name, term.weight, term.layers) == ("style:1", 1e4, layers)
    assert term.layer_weights == auto_layer_weights(targets, layers)
    out = term(feats, np.zeros((1, 3, 8, 6)))
    for lam, la in zip(term.layer_weights, layers):
        v, g = guided_style_loss(feats[la], masks[la], targets[la])
        assert out.parts[la] == pytest.approx(lam * v, rel=1e-12)
        np.testing.assert_allclose(out.grads[la], lam * g, rtol=1e-12)
    assert out.value == pytest.approx(sum(out.parts.values()), rel=1e-12) and set(out.grads) == set(layers)
    with pytest.raises(ValueError, match="no mask or target for layer"):
        RegionStyleTerm("style:2", 1.0, ("a", "c"), masks, targets)
    with pytest.raises(ValueError, match="1 layer weights for 2 layers"):
        RegionStyleTerm("style:2", 1.0, layers, masks, targets, [1.0])


@pytest.mark.parametrize("use_strict", [False, True], ids=["numpy", "strict"])
def test_region_term_computes_on_the_masks_box_only(strict, from_strict, use_strict):
    """A region inside part of the layer (a disc in a corner, a soft half): the term works on the mask's bounding box
    and gives the whole layer's value and gradient (zero outside the box), in NumPy and on strict arrays."""
    xps, to = strict
    a = _acts((1, 6, 12, 16), 30)
    g_s = gram(_acts((1, 6, 5, 5), 31))
    half = np.zeros((12, 16), np.float32)
    half[:, :7] = 1.0
    half[:, 7:9] = (0.6, 0.2)  # a soft seam, then nothing
    for mask, box in ((_disc(12, 16, 3, 4, 2.5), (slice(1, 6), slice(2, 7))), (half, (slice(0, 12), slice(0, 9)))):
        term = RegionStyleTerm("style:1", 1.0, ["x"], {"x": mask}, {"x": to(g_s) if use_strict else g_s}, [2.0])
        assert term.boxes["x"] == box
        v, g = guided_style_loss(a, mask, g_s)
        out = term({"x": to(a) if use_strict else a}, None)
        got = from_strict(xps, out.grads["x"]) if use_strict else out.grads["x"]
        assert out.value == pytest.approx(2.0 * v, rel=1e-6)
        np.testing.assert_allclose(got, 2.0 * g, rtol=1e-5, atol=1e-6 * float(np.abs(g).max()))
        outside = np.ones((12, 16), bool)
        outside[box] = False
        assert np.all(got[..., outside] == 0)


def test_two_region_terms_confine_two_styles():
    """Does it work, on activations: minimising two region terms (left half -> texture 1's Gram, right half ->
    texture 2's) gives each half its own style, which one unmasked style term (the blend) cannot."""
    rng = np.random.default_rng(22)
    c, h, w = 4, 12, 16
    tex1 = np.maximum(np.einsum("dc,chw->dhw", rng.standard_normal((c, c)), rng.standard_normal((c, 40, 40))), 0)
    tex2 = rng.random((1, c, 40, 40)) * np.array([3.0, 0.2, 1.0, 0.5])[:, None, None]
    left = np.zeros((h, w))
    left[:, : w // 2] = 1.0
    terms = [
        RegionStyleTerm("style:1", 1.0, ["x"], {"x": left}, {"x": source_gram(tex1)}, [1.0]),
        RegionStyleTerm("style:2", 1.0, ["x"], {"x": 1.0 - left}, {"x": source_gram(tex2)}, [1.0]),
    ]

    def f(x):
        a = x.reshape(1, c, h, w)
        outs = [t({"x": a}, None) for t in terms]
        return sum(o.value for o in outs), sum(o.grads["x"] for o in outs).ravel()

    x0 = rng.random(c * h * w)
    res = minimize(f, x0, jac=True, method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-12, "ftol": 1e-15})
    a = res.x.reshape(1, c, h, w)
    assert rel(gram(a[..., : w // 2]), gram(tex1)) <= 1e-3 and rel(gram(a[..., w // 2 :]), gram(tex2)) <= 1e-3
    assert rel(gram(tex1), gram(tex2)) > 0.3  # two different styles, each where it was asked for
