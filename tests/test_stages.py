"""Coarse-to-fine runs, auto style-layer weights and colour preservation, end to end on tiny images (issue 10)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nst.cli.run_cmd import frame_path
from nst.engine import color, gram, load_model, stylize
from nst.engine.images import to_nchw
from nst.engine.terms import auto_layer_weights


@pytest.fixture(scope="module")
def model(model_dir):
    return load_model(model_dir, "cpu")


def test_stages_run_coarse_to_fine_and_stay_in_range(model, synthetic_image):
    seen = []

    def record(p):
        if p.iteration == 1:
            im = p.image()
            seen.append((p.stage, p.stages, im.shape[:2], float(im.min()), float(im.max())))

    r = stylize(
        model,
        synthetic_image(60, 80),
        [synthetic_image(64, 64, 1)],
        size=96,
        min_size=48,
        iterations=6,
        callback=record,
    )
    assert [s[:3] for s in seen] == [(1, 2, (36, 48)), (2, 2, (72, 96))]
    assert all(0.0 <= lo and hi <= 1.0 for *_, lo, hi in seen)
    assert r.image.shape == (72, 96, 3) and 0.0 <= r.image.min() and r.image.max() <= 1.0
    assert [s["iterations"] for s in r.stages] == [6, 3] and r.iterations == 9
    assert [h["stage"] for h in r.history] == [1] * 6 + [2] * 3
    assert r.stage == 2 and r.plan is not None and len(r.plan.stages) == 2


def test_one_scale_is_one_stage_of_the_asked_iterations(model, synthetic_image):
    r = stylize(model, synthetic_image(60, 80), [synthetic_image(64, 64, 1)], size=96, scales=1, iterations=4)
    assert len(r.stages) == 1 and r.stages[0]["size"] == [72, 96] and r.iterations == 4


def test_auto_layer_weights_make_each_term_a_relative_gram_error(model, synthetic_image):
    """With lambda_l from auto_layer_weights, lambda_l * J_style^l = ||G - G_S||^2 / (L ||G_S||^2) per layer."""
    layers = model.manifest.default_style_layers
    fs = model.features(to_nchw(synthetic_image(64, 64, 1)), keep_state=False)
    fg = model.features(to_nchw(synthetic_image(64, 64, 2)), keep_state=False)
    grams = {layer: gram(fs[layer]) for layer in layers}
    lam = auto_layer_weights(grams, layers)
    from nst.engine import style_loss

    for layer, w in zip(layers, lam):
        js, _ = style_loss(fg[layer], grams[layer])
        gs, gg = grams[layer].astype(np.float64), gram(fg[layer]).astype(np.float64)
        expected = np.sum((gg - gs) ** 2) / (len(layers) * np.sum(gs**2))
        assert w * js == pytest.approx(expected, rel=1e-4), layer


def test_auto_weights_match_relu1_1_better_than_equal(model, synthetic_image):
    """The point of auto: the first layer (colour, fine texture) is matched far better than with equal weights."""
    content, style = synthetic_image(48, 64, 5), synthetic_image(64, 64, 6)[::-1] ** 3

    def relu1_1_distance(**kw):
        r = stylize(model, content, [style], size=64, scales=1, iterations=30, **kw)
        fo = model.features(to_nchw(r.image), keep_state=False)["relu1_1"]
        fs = model.features(to_nchw(style), keep_state=False)["relu1_1"]
        return float(np.sum((gram(fo) - gram(fs)) ** 2))

    assert relu1_1_distance() < 0.5 * relu1_1_distance(style_layer_weights="equal")


def test_luminance_only_keeps_the_contents_chroma(model, synthetic_image):
    content = 0.2 + 0.6 * synthetic_image(48, 64, 7)
    r = stylize(model, content, [synthetic_image(64, 64, 8)], size=64, iterations=5, preserve_colors="luminance")
    yiq_out, yiq_c = color.rgb_to_yiq(r.image), color.rgb_to_yiq(content)
    inside = ((r.image > 0.01) & (r.image < 0.99)).all(axis=-1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(yiq_out[inside][:, 1:], yiq_c[inside][:, 1:], atol=2e-3)  # 8-bit-free float path
    h = stylize(model, content, [synthetic_image(64, 64, 8)], size=64, iterations=3, preserve_colors="histogram")
    assert h.image.shape == (48, 64, 3)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--scales", "0"], "--scales must be >= 1"),
        (["--min-size", "100"], "--min-size (100) must not be larger than --size (48)"),
        (["--preserve-colors", "chroma"], "luminance, histogram"),
        (["--style-layer-weights", "loud"], "auto, equal"),
    ],
)
def test_bad_stage_and_colour_options_exit_2(model_dir, images_dir, tmp_path, nst_run, error_line, args, needle):
    out = tmp_path / "o.png"
    line = error_line(nst_run(model_dir, images_dir / "content.png", images_dir / "style1.png", "-o", out, *args), 2)
    assert needle in line
    assert not out.exists()


def test_interrupted_multiscale_run_writes_a_full_size_image(
    model_dir, content, style, tmp_path, pixels, interrupt_nst_run
):
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    code, stderr = interrupt_nst_run(
        [
            str(content),
            str(style),
            "--model",
            str(model_dir),
            "--size",
            "96",
            "--min-size",
            "48",
            "--iterations",
            "1000",
            "--save-every",
            "1",
            "-o",
            str(out),
            "--log-json",
            str(log),
        ],
        frame_path(out, 1, stage=1),
    )
    assert pixels(frame_path(out, 1, stage=1)).shape == (36, 48, 3)  # stage 1 of 2 (48 px) was running
    assert code == 130, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "stage 1/2" in lines[0] and "resized to the final size" in lines[0], stderr
    assert pixels(out).shape == (72, 96, 3)
    data = json.loads(log.read_text())
    assert data["interrupted"] is True and [s["stage"] for s in data["stages"]] == [1]


def test_unbounded_lbfgs_clips_what_it_writes(model, synthetic_image):
    r = stylize(
        model,
        synthetic_image(60, 80),
        [synthetic_image(64, 64, 1)],
        size=64,
        scales=1,
        iterations=8,
        bounds="clip",
        style_weight=1e9,
    )  # a strong pull, so unbounded iterates leave [0, 1]
    assert 0.0 <= r.image.min() and r.image.max() <= 1.0
    # the optimiser's own time is recorded apart from the objective's: some, and a small part of the stage
    assert 0.0 < r.stages[0]["lbfgs_seconds"] < 0.5 * r.stages[0]["seconds"]
    # of which minimize()'s setup, before the first evaluation, is a part
    assert 0.0 < r.stages[0]["lbfgs_setup_seconds"] < r.stages[0]["lbfgs_seconds"]
