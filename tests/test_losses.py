"""Each loss: value and gradient vs central finite differences (float64) and vs torch autograd of the same formula,
<= 1e-5 relative; the same losses on array_api_strict arrays (on CPU and on a non-CPU device, where any NumPy call
raises, as it would on CuPy's) equal NumPy's; the Gram on NumPy equals scipy's BLAS syrk."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from scipy.linalg import blas

from nst.engine.losses import content_loss, gram, style_loss, tv_loss

try:
    import torch

    from nst.export.reference import content_t, gram_t, style_t, tv_t
except ImportError:  # a runtime-only install: the array-API and finite-difference tests still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="autograd comparisons need torch (the export extra)")


def rel(a, b):
    return float(np.linalg.norm(np.ravel(a - b)) / np.linalg.norm(np.ravel(b)))


def fd_check(f, x, n_probe=12, eps=1e-6, seed=0):
    """Central differences in float64 at random coordinates: the analytic gradient must agree."""
    rng = np.random.default_rng(seed)
    _, g = f(x)
    idx = rng.choice(x.size, n_probe, replace=False)
    for i in idx:
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        num = (f(xp)[0] - f(xm)[0]) / (2 * eps)
        assert abs(num - g.flat[i]) <= 1e-5 * max(abs(num), np.abs(g).max() * 1e-3), (i, num, g.flat[i])


def autograd_check(np_loss, torch_loss, x, *targets):
    """float32 NumPy (value, grad) against torch autograd of the same formula: <= 1e-5 relative for both."""
    f32 = [np.asarray(a, np.float32) for a in (x, *targets)]
    v, g = np_loss(*f32)
    t = torch.from_numpy(f32[0]).requires_grad_(True)
    j = torch_loss(t, *map(torch.from_numpy, f32[1:]))
    (tg,) = torch.autograd.grad(j, t)
    jv = float(j.detach())
    assert abs(v - jv) <= 1e-5 * abs(jv) and rel(g, tg.numpy()) <= 1e-5
    assert g.dtype == np.float32


def _acts(shape, seed):
    return np.random.default_rng(seed).random(shape) * 3.0  # float64, ReLU-like (non-negative)


@pytest.mark.torch
@needs_torch
def test_content_loss():
    a_g, a_c = _acts((1, 8, 5, 7), 0), _acts((1, 8, 5, 7), 1)
    fd_check(lambda a: content_loss(a, a_c), a_g)
    autograd_check(content_loss, content_t, a_g, a_c)


@pytest.mark.torch
@needs_torch
def test_gram_symmetric_and_matches_torch():
    a = _acts((1, 16, 9, 11), 2).astype(np.float32)
    G = gram(a)
    assert G.shape == (16, 16) and np.array_equal(G, G.T)
    assert rel(G, gram_t(torch.from_numpy(a)).numpy()) <= 1e-5
    a64 = _acts((1, 16, 9, 11), 2)
    A = a64.reshape(16, -1)
    assert rel(gram(a64), A @ A.T / A.shape[1]) <= 1e-12


@pytest.mark.torch
@needs_torch
def test_style_loss():
    a_g = _acts((1, 6, 4, 5), 3)
    g_s = gram(_acts((1, 6, 7, 3), 4))  # a style image of another size
    fd_check(lambda a: style_loss(a, g_s), a_g)
    autograd_check(style_loss, style_t, a_g, g_s)


def test_style_loss_equals_seed_formula_for_equal_sizes():
    """With equal sizes, J_s = 1/(2 nH nW nC)^2 * sum (raw Gram difference)^2, the seeds' form."""
    a_g, a_s = _acts((1, 5, 4, 6), 5), _acts((1, 5, 4, 6), 6)
    c, n = 5, 24
    raw = lambda a: a.reshape(c, -1) @ a.reshape(c, -1).T  # noqa: E731
    seed_form = np.sum((raw(a_s) - raw(a_g)) ** 2) / (2 * n * c) ** 2
    assert abs(style_loss(a_g, gram(a_s))[0] - seed_form) <= 1e-12 * seed_form


@pytest.mark.torch
@needs_torch
def test_tv_loss():
    x = np.random.default_rng(7).random((1, 3, 6, 5))
    fd_check(tv_loss, x, n_probe=20)
    autograd_check(tv_loss, tv_t, x)


def test_losses_are_zero_at_target():
    a = _acts((1, 4, 3, 3), 8)
    assert content_loss(a, a)[0] == 0 and style_loss(a, gram(a))[0] == pytest.approx(0, abs=1e-20)


# --- the array API: one code path for every namespace -------------------------------------------------------------


def _loss_cases(dtype, chw: bool) -> dict:
    """name -> (loss, NumPy inputs): style targets from an image of another size, as in a run."""
    shape = (8, 5, 7) if chw else (1, 8, 5, 7)
    a_g, a_c = _acts(shape, 10).astype(dtype), _acts(shape, 11).astype(dtype)
    g_s = gram(_acts((1, 8, 6, 4), 12).astype(dtype))
    img = np.random.default_rng(13).random((1, 3, 6, 5)).astype(dtype)
    return {
        "content": (content_loss, (a_g, a_c)),
        "gram": (lambda a: (0.0, gram(a)), (a_g,)),
        "style": (style_loss, (a_g, g_s)),
        "style_given_gram": (lambda a, g: style_loss(a, g, gram(a)), (a_g, g_s)),
        "tv": (tv_loss, (img,)),
        "tv_one_row": (tv_loss, (img[..., :1, :],)),
        "tv_one_column": (tv_loss, (img[..., :1],)),
    }


@pytest.mark.parametrize("chw", [False, True], ids=["1CHW", "CHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(_loss_cases(np.float32, False)))
def test_array_api_strict_equals_numpy(strict, from_strict, name, dtype, chw):
    """Each loss on array_api_strict arrays: the value within 1e-6 relative of NumPy's, the gradient a strict array
    of the input's dtype, shape and device, allclose to NumPy's."""
    xps, to = strict
    loss, args = _loss_cases(dtype, chw)[name]
    v, g = loss(*args)
    sargs = [to(a) for a in args]
    vs, gs = loss(*sargs)
    assert vs == pytest.approx(v, rel=1e-6, abs=1e-300)
    assert array_namespace(gs) is xps
    assert gs.dtype == sargs[0].dtype and gs.device == sargs[0].device and tuple(gs.shape) == g.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(from_strict(xps, gs), g, rtol=tol, atol=tol * float(np.abs(g).max()))
    assert g.dtype == dtype and isinstance(g, np.ndarray)


def test_numpy_calls_raise_on_the_strict_device():
    """The premise of the test above: on "device1", a NumPy function fed a strict array raises."""
    xps = pytest.importorskip("array_api_strict", reason="the array-API tests need array-api-strict (the test extra)")
    a = xps.asarray(np.ones((2, 2)), device=xps.Device("device1"))
    with pytest.raises((RuntimeError, TypeError)):
        np.triu(a)
    with pytest.raises((RuntimeError, TypeError)):
        np.sum(a)


def syrk_gram(a: np.ndarray) -> np.ndarray:
    """The Gram by scipy's BLAS syrk, as losses.gram computed it before the array API (one triangle, mirrored)."""
    A = np.ascontiguousarray(a.reshape(a.shape[-3], -1))
    upper = blas.get_blas_funcs("syrk", (A,))(alpha=1.0 / A.shape[1], a=A.T, trans=1, lower=0)
    return np.triu(upper) + np.triu(upper, 1).T


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_on_numpy_equals_blas_syrk(dtype):
    """On NumPy arrays the array-API Gram (NumPy's matmul, which calls syrk for A @ A.T) equals scipy's syrk, exactly
    symmetric, also from a non-contiguous view and from (C, H, W)."""
    a = _acts((1, 16, 9, 11), 14).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for x in (a, a[..., ::2], np.swapaxes(a, 2, 3), a[0], a[:, ::2]):
        g, ref = gram(x), syrk_gram(x)
        assert g.dtype == dtype and isinstance(g, np.ndarray) and np.array_equal(g, g.T)
        np.testing.assert_allclose(g, ref, rtol=tol, atol=tol * float(np.abs(ref).max()))
    half = gram(a.astype(np.float16))  # no BLAS for float16: NumPy's own loops, same code
    assert half.dtype == np.float16 and np.array_equal(half, half.T)
    np.testing.assert_allclose(half, gram(a.astype(np.float16).astype(np.float32)), rtol=2e-3)


def test_losses_accept_chw_and_reject_batches():
    a_g, a_c = _acts((1, 6, 4, 5), 15), _acts((1, 6, 4, 5), 16)
    g_s = gram(a_c)
    for loss, args in ((content_loss, (a_g, a_c)), (style_loss, (a_g, g_s))):
        v4, g4 = loss(*args)
        v3, g3 = loss(args[0][0], *(a[0] if a.ndim == 4 else a for a in args[1:]))
        assert v3 == pytest.approx(v4, rel=1e-12) and g3.shape == args[0].shape[1:]
        np.testing.assert_allclose(g3, g4[0], rtol=1e-12)
    np.testing.assert_array_equal(gram(a_g[0]), gram(a_g))
    batch = np.concatenate([a_g, a_c])
    for f in (gram, lambda a: style_loss(a, g_s)):
        with pytest.raises(ValueError, match="1, C, H, W"):
            f(batch)


def test_style_gradient_keeps_the_activations_dtype():
    """A float64 target with float32 activations: the value is computed from the promoted difference, the gradient
    comes back float32 (what the model's gradient graph takes)."""
    a_g = _acts((1, 6, 4, 5), 17).astype(np.float32)
    g_s = gram(_acts((1, 6, 5, 3), 18))
    v, g = style_loss(a_g, g_s)
    v64, g64 = style_loss(a_g.astype(np.float64), g_s)
    assert g.dtype == np.float32 and v == pytest.approx(v64, rel=1e-6)
    assert rel(g, g64) <= 1e-5


def test_tv_loss_thin_images():
    """One row or one column: the missing direction contributes nothing; finite differences agree."""
    x = np.random.default_rng(19).random((1, 3, 4, 5))
    for thin in (x[..., :1, :], x[..., :1], x[0, :, :1, :]):
        fd_check(tv_loss, np.ascontiguousarray(thin), n_probe=min(10, thin.size))
