"""nst-inspect reconstruct and sweep, and nst-run's report, below the CLI: tiny images, a few iterations."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine import load_model
from nst.views.grid import Cell, draw_grid
from nst.views.reconstruct import (
    CONV_LAYERS,
    RELU_LAYERS,
    cumulative,
    default_content_layers,
    reconstruct,
    render_strip,
    strip_figure,
)
from nst.views.report import _ticks, draw_losses, render_report
from nst.views.sweep import render_sweep, sweep, sweep_figure

# Measured at 48 px, 20 iterations from seeded noise on the 60x80 synthetic content: relu1_1 0.131 / 0.136 and
# relu5_1 0.610 / 0.622 (seeds 0 / 1); 0.094 and 0.594 after 40 iterations.
RELU1_1_BOUND = 0.2
RELU5_1_FLOOR = 0.45


@pytest.fixture(scope="module")
def model(model_dir):
    return load_model(model_dir, "cpu")


@pytest.fixture(scope="module")
def stripes() -> np.ndarray:
    s = np.zeros((64, 64, 3), np.float32)
    s[:, ::8] = [0.9, 0.7, 0.1]
    s[::8, :] = [0.1, 0.2, 0.8]
    return s


def test_content_reconstruction_close_at_relu1_1_far_at_relu5_1(model, synthetic_image, stripes):
    content = synthetic_image(60, 80, 0)
    runs = reconstruct(model, content, stripes, ["relu1_1", "relu5_1"], [], size=48, iterations=20, seed=0)
    near, far = runs
    assert (near.kind, near.layers, far.layers) == ("content", ("relu1_1",), ("relu5_1",))
    assert near.image.shape == near.target.shape == (36, 48, 3)
    assert near.rel_l2 < RELU1_1_BOUND, near.rel_l2
    assert far.rel_l2 > RELU5_1_FLOOR and far.rel_l2 > 3 * near.rel_l2, (near.rel_l2, far.rel_l2)


def test_style_reconstructions_take_cumulative_layer_sets(model, synthetic_image, stripes):
    assert cumulative(["a", "b", "c"]) == [("a",), ("a", "b"), ("a", "b", "c")]
    calls = []

    def callback(label, i, n):
        calls.append((label, i, n))
        return None

    content = synthetic_image(60, 80, 0)
    runs = reconstruct(
        model, content, stripes, ["relu2_1"], ["relu1_1", "relu2_1"], size=32, iterations=2, callback=callback
    )
    assert [(r.kind, r.layers) for r in runs] == [
        ("content", ("relu2_1",)),
        ("style", ("relu1_1",)),
        ("style", ("relu1_1", "relu2_1")),
    ]
    assert calls == [("content relu2_1", 1, 3), ("style relu1_1", 2, 3), ("style relu1_1..relu2_1", 3, 3)]
    assert runs[1].image.shape == (32, 32, 3)  # a style reconstruction has the style image's shape
    figure = strip_figure(content, stripes, runs)
    assert [len(r) for r in figure.rows] == [2, 3] and figure.row_labels == [
        "content\nfrom\nnoise",
        "style\nfrom\nnoise",
    ]
    assert [c.caption for c in figure.rows[1]] == ["original", "relu1_1", "relu1_1..relu2_1"]
    assert figure.rows[0][1].caption.startswith("relu2_1: rel L2 ")
    assert render_strip(content, stripes, runs, cell=40).size[0] > 3 * 40


def test_default_content_layers(model):
    assert default_content_layers(model.manifest) == RELU_LAYERS  # the default export has no conv taps
    assert CONV_LAYERS[0] == "conv1_1"


def test_sweep_grid_dimensions_and_labels(model, synthetic_image, stripes):
    content = synthetic_image(60, 80, 0)
    labels = []
    grid = sweep(
        model,
        content,
        [stripes],
        [1.0, 10.0],
        [1e-3, 1e-2, 1e-1],
        size=32,
        iterations=2,
        callback=lambda label, i, n: labels.append((label, i, n)),
    )
    assert [[(c.content_weight, c.style_weight) for c in row] for row in grid] == [
        [(1.0, 1e-3), (1.0, 1e-2), (1.0, 1e-1)],
        [(10.0, 1e-3), (10.0, 1e-2), (10.0, 1e-1)],
    ]
    assert all(c.image.shape == (24, 32, 3) for row in grid for c in row)
    assert labels[0] == ("alpha 1, beta 0.001", 1, 6) and labels[-1] == ("alpha 10, beta 0.1", 6, 6)
    figure = sweep_figure(grid, content, [stripes])
    assert figure.col_labels == ["", "beta = 0.001", "beta = 0.01", "beta = 0.1"]
    assert figure.row_labels == ["alpha = 1", "alpha = 10"]
    assert [c.caption for c in figure.rows[0]] == [
        "content",
        "alpha/beta = 1e+03",
        "alpha/beta = 100",
        "alpha/beta = 10",
    ]
    assert figure.rows[1][0].caption == "style"
    picture = render_sweep(grid, content, [stripes], cell=50)
    assert picture.size[0] > 4 * 50 and picture.size[1] > 2 * round(50 * 60 / 80)


def test_sweep_computes_the_style_targets_once(model, synthetic_image, stripes, monkeypatch):
    shapes = []
    real = model.features

    def features(image, keep_state=True):
        shapes.append(image.shape[2:])
        return real(image, keep_state)

    monkeypatch.setattr(model, "features", features)
    sweep(model, synthetic_image(60, 80, 0), [stripes], [1.0], [1e-3, 1e-2, 1e-1], size=32, iterations=1)
    assert shapes.count((32, 32)) == 1  # the 32x32 style went through the network once for the three cells
    assert shapes.count((24, 32)) >= 3


def test_loss_plot_and_report_picture(synthetic_image):
    history = [
        {
            "iteration": i,
            "stage": 1 if i <= 5 else 2,
            "loss": 1e6 / i,
            "terms": {"content": 1e3 * i, "style": 1e6 / i**2, "tv": 0.0},
        }
        for i in range(1, 11)
    ]
    plot = draw_losses(history, (400, 200))
    a = np.asarray(plot)
    assert plot.size == (400, 200) and (a[..., 0] > 150).any() and ((a[..., 2] > 150) & (a[..., 0] < 100)).any()
    assert _ticks(300) == [1, 50, 100, 150, 200, 250, 300] and _ticks(1) == [1] and _ticks(3) == [1, 2, 3]
    assert _ticks(12) == [1, 2, 4, 6, 8, 10, 12]
    report = render_report(
        synthetic_image(60, 80, 0), [synthetic_image(50, 50, 1)], synthetic_image(60, 80, 2), history, "title"
    )
    assert report.size[0] >= 640 and report.size[1] > 200 + 100


def test_draw_grid_layout():
    img = np.zeros((10, 20, 3), np.float32)
    picture = draw_grid(
        [[Cell(img, "a"), None], [Cell(img)]], (40, 20), title="t", row_labels=["r1", "r2"], col_labels=["c1", "c2"]
    )
    assert picture.size[0] > 2 * 40 and picture.size[1] > 2 * 20
