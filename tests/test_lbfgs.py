"""The array-API L-BFGS (engine/lbfgs.py) against scipy and torch.optim.LBFGS on small problems, on NumPy and on
array_api_strict arrays (where a stray NumPy call raises)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

from nst.engine.lbfgs import lbfgs

A = np.diag(np.linspace(1.0, 30.0, 8)) + 0.3  # symmetric positive definite
B = np.linspace(-1.0, 1.0, 8)


def smooth(x):
    """A convex problem: 0.5 x'Ax - b'x + 0.25 sum x^4."""
    return float(0.5 * x @ A @ x - B @ x + 0.25 * np.sum(x**4)), A @ x - B + x**3


def test_rosenbrock_reaches_the_minimum_as_scipy_does():
    x0 = np.full(10, -1.2)
    ours = lbfgs(lambda x: (float(rosen(x)), rosen_der(x)), x0, max_iter=300, history=10, tolerance_grad=1e-9)
    ref = minimize(rosen, x0, jac=rosen_der, method="L-BFGS-B", options={"maxiter": 300, "maxcor": 10})
    np.testing.assert_allclose(ours.x, np.ones(10), atol=1e-5)
    np.testing.assert_allclose(ref.x, np.ones(10), atol=1e-4)
    assert ours.status == 0 and ours.nit < 300 and ours.fun <= ref.fun + 1e-10


def test_a_box_is_kept_by_projection():
    target = np.array([2.0, -1.0, 0.5, 0.25])
    r = lbfgs(lambda x: (float(np.sum((x - target) ** 2)), 2 * (x - target)), np.zeros(4), max_iter=50, bounds=(0, 1))
    np.testing.assert_allclose(r.x, [1.0, 0.0, 0.5, 0.25], atol=1e-8)


def test_without_a_line_search_a_flat_direction_steps_by_lr_and_keeps_no_pair():
    """A linear f: y = 0 every step, so no pair is stored (y's <= eps) and each step is -lr g; the first one scaled
    by 1 / ||g||_1."""
    g = np.array([1.0, -2.0, 0.5])
    r = lbfgs(lambda x: (float(g @ x), g.copy()), np.zeros(3), max_iter=3, line_search="none", lr=0.1)
    np.testing.assert_allclose(r.x, -g * 0.1 * (1 / 3.5 + 2))


def test_a_callback_stop_and_the_iteration_count():
    seen = []

    def cb(x, f):
        seen.append(f)
        if len(seen) == 4:
            raise StopIteration

    r = lbfgs(smooth, np.zeros(8), max_iter=50, callback=cb)
    assert r.status == 3 and r.nit == 4 and len(seen) == 4 and seen == sorted(seen, reverse=True)
    full = lbfgs(smooth, np.zeros(8), max_iter=7, tolerance_grad=0)
    assert full.status == 1 and full.nit == 7


@pytest.mark.torch
@pytest.mark.parametrize("line_search", ["none", "strong_wolfe"])
def test_iterates_match_torch_lbfgs(line_search):
    """The same problem, history, first-step scaling, H0 and line search: torch.optim.LBFGS run for n iterations in
    one step() lands where this one does after n iterations."""
    torch = pytest.importorskip("torch")
    x0 = np.linspace(0.5, -0.5, 8)
    At, Bt = torch.tensor(A), torch.tensor(B)
    for n in (1, 3, 6, 12):
        p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS(
            [p],
            lr=0.8,
            max_iter=n,
            max_eval=100 * n,
            history_size=4,
            tolerance_grad=0,
            tolerance_change=0,
            line_search_fn=None if line_search == "none" else "strong_wolfe",
        )

        def closure(p=p, opt=opt):
            opt.zero_grad()
            loss = 0.5 * p @ At @ p - Bt @ p + 0.25 * (p**4).sum()
            loss.backward()
            return loss

        opt.step(closure)
        ours = lbfgs(smooth, x0, max_iter=n, history=4, lr=0.8, line_search=line_search)
        np.testing.assert_allclose(ours.x, p.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=f"n={n}")


def test_on_array_api_strict_arrays(strict, from_strict):
    """No NumPy call on the vectors: on array_api_strict's non-CPU device such a call raises."""
    xps, to = strict

    def fun(x):
        a, b = to(A), to(B)
        return float(0.5 * x @ (a @ x) - b @ x + 0.25 * xps.sum(x**4)), a @ x - b + x**3

    r = lbfgs(fun, to(np.zeros(8)), max_iter=40, bounds=(-0.05, 1.0))
    ref = lbfgs(smooth, np.zeros(8), max_iter=40, bounds=(-0.05, 1.0))
    assert r.x.device == to(np.zeros(1)).device
    np.testing.assert_allclose(from_strict(xps, r.x), ref.x, rtol=1e-10, atol=1e-12)


def test_stylize_with_the_array_api_optimizer(model_dir, synthetic_image, range_recorder):
    """optimizer="lbfgs" in a run: J falls about as far as with scipy's L-BFGS-B in the same iterations, and with
    bounds="box" the projection keeps every evaluated image in [0, 1]."""
    from nst.engine import load_model, stylize

    model = load_model(model_dir, "cpu")
    content, style = synthetic_image(48, 64, 5), synthetic_image(64, 64, 6)
    runs = {}
    for optimizer in ("scipy", "lbfgs"):
        rec = range_recorder()
        runs[optimizer] = stylize(
            model,
            content,
            [style],
            size=64,
            scales=1,
            iterations=20,
            optimizer=optimizer,
            extra_terms=[lambda s, rec=rec: rec],
        )
        assert rec.seen and all(0.0 <= lo and hi <= 1.0 for lo, hi in rec.seen)
    first = runs["lbfgs"].history[0]["loss"]
    assert runs["lbfgs"].loss < 0.6 * first
    assert runs["lbfgs"].loss < 1.1 * runs["scipy"].loss
    assert runs["lbfgs"].iterations == 20 and runs["lbfgs"].plan.optimizer == "lbfgs"
