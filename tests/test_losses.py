"""Each NumPy loss: value and gradient vs central finite differences (float64) and vs torch autograd of the same
formula, <= 1e-5 relative."""
from __future__ import annotations

import numpy as np
import pytest

from nst.engine.losses import content_loss, gram, style_loss, tv_loss

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="autograd comparisons need torch (the export extra)")
from nst.export.reference import content_t, gram_t, style_t, tv_t  # noqa: E402


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


def test_content_loss():
    a_g, a_c = _acts((1, 8, 5, 7), 0), _acts((1, 8, 5, 7), 1)
    fd_check(lambda a: content_loss(a, a_c), a_g)
    autograd_check(content_loss, content_t, a_g, a_c)


def test_gram_symmetric_and_matches_torch():
    a = _acts((1, 16, 9, 11), 2).astype(np.float32)
    G = gram(a)
    assert G.shape == (16, 16) and np.array_equal(G, G.T)
    assert rel(G, gram_t(torch.from_numpy(a)).numpy()) <= 1e-5
    a64 = _acts((1, 16, 9, 11), 2)
    A = a64.reshape(16, -1)
    assert rel(gram(a64), A @ A.T / A.shape[1]) <= 1e-12


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


def test_tv_loss():
    x = np.random.default_rng(7).random((1, 3, 6, 5))
    fd_check(tv_loss, x, n_probe=20)
    autograd_check(tv_loss, tv_t, x)


def test_losses_are_zero_at_target():
    a = _acts((1, 4, 3, 3), 8)
    assert content_loss(a, a)[0] == 0 and style_loss(a, gram(a))[0] == pytest.approx(0, abs=1e-20)
