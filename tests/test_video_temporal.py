"""nst.video.temporal: the temporal loss's value and gradient against central finite differences, torch autograd and
array_api_strict arrays; the term's sum over several previous frames."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace

from nst.engine.terms import PIXELS
from nst.video.temporal import TemporalTerm, temporal_loss


def case(h: int = 5, w: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, warped (1, 3, h, w) and weights (1, 1, h, w) in {0, 1} with some zeros, float64."""
    rng = np.random.default_rng(seed)
    x, warped = rng.random((1, 3, h, w)), rng.random((1, 3, h, w))
    c = (rng.random((1, 1, h, w)) > 0.3).astype(np.float64)
    return x, warped, c


def test_value_is_the_weighted_mean_square():
    x, warped, c = case()
    v, g = temporal_loss(x, warped, c)
    assert v == pytest.approx(float(np.sum(c * (x - warped) ** 2)) / x.size, rel=1e-12)
    assert temporal_loss(warped, warped, c)[0] == 0.0
    assert temporal_loss(x, warped, np.zeros_like(c))[0] == 0.0  # nothing consistent: no pull
    assert g.shape == x.shape and np.all(g[np.broadcast_to(c == 0, x.shape)] == 0)


def test_gradient_matches_finite_differences():
    x, warped, c = case(seed=1)
    _, g = temporal_loss(x, warped, c)
    eps = 1e-6
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        num = (temporal_loss(xp, warped, c)[0] - temporal_loss(xm, warped, c)[0]) / (2 * eps)
        assert abs(num - g.flat[i]) <= 1e-7 + 1e-6 * abs(num)


@pytest.mark.torch
def test_gradient_matches_torch_autograd():
    torch = pytest.importorskip("torch", reason="autograd comparisons need torch (the export extra)")
    x, warped, c = (a.astype(np.float32) for a in case(seed=2))
    v, g = temporal_loss(x, warped, c)
    t = torch.from_numpy(x).requires_grad_(True)
    j = (torch.from_numpy(c) * (t - torch.from_numpy(warped)) ** 2).sum() / t.numel()
    (tg,) = torch.autograd.grad(j, t)
    assert v == pytest.approx(float(j.detach()), rel=1e-5)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, tg.numpy(), rtol=1e-5, atol=1e-8)


def test_array_api_strict_equals_numpy():
    xps = pytest.importorskip("array_api_strict", reason="the array-API tests need array-api-strict (the test extra)")
    x, warped, c = (a.astype(np.float32) for a in case(seed=3))
    v, g = temporal_loss(x, warped, c)
    vs, gs = temporal_loss(xps.asarray(x), xps.asarray(warped), xps.asarray(c))
    assert array_namespace(gs) is xps and gs.dtype == xps.float32
    assert vs == pytest.approx(v, rel=1e-6)
    np.testing.assert_allclose(np.asarray(gs), g, rtol=1e-6)


def test_term_sums_its_pairs_on_the_pixels():
    x, w1, c1 = case(seed=4)
    _, w2, c2 = case(seed=5)
    term = TemporalTerm([w1, w2], [c1, c2], weight=3.0)
    out = term({}, x)
    v1, g1 = temporal_loss(x, w1, c1)
    v2, g2 = temporal_loss(x, w2, c2)
    assert term.layers == () and term.name == "temporal"
    assert out.value == pytest.approx(v1 + v2) and np.allclose(out.grads[PIXELS], g1 + g2)


def test_shapes_are_checked():
    x, warped, c = case()
    with pytest.raises(ValueError, match="temporal loss"):
        temporal_loss(x, warped[..., :-1], c)
    with pytest.raises(ValueError, match="temporal loss"):
        temporal_loss(x, warped, np.ones((1, 3, 5, 6)))
