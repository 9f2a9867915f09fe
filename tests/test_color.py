"""Colour preservation (engine/color.py) on synthetic images: exact properties of the transforms."""

from __future__ import annotations

import numpy as np

from nst.engine import color


def test_yiq_round_trip(synthetic_image):
    img = synthetic_image(20, 30)
    np.testing.assert_allclose(color.yiq_to_rgb(color.rgb_to_yiq(img)), img, atol=1e-5)


def test_recombined_output_has_the_stylized_luminance_and_the_contents_chroma(synthetic_image):
    content = 0.2 + 0.6 * synthetic_image(24, 32, 1)
    stylized = 0.3 + 0.4 * synthetic_image(24, 32, 2)[..., ::-1]
    out = color.recombine(stylized, content)
    inside = ((out > 0) & (out < 1)).all(axis=-1)  # where a new luminance with the old chroma is out of gamut, the
    assert inside.mean() > 0.9  # result is clipped to [0, 1]; everywhere else the recombination is exact
    np.testing.assert_allclose(color.luminance(out)[inside], color.luminance(stylized)[inside], atol=1e-5)
    np.testing.assert_allclose(
        color.rgb_to_yiq(out)[inside][:, 1:], color.rgb_to_yiq(content)[inside][:, 1:], atol=1e-5
    )
    assert out.min() >= 0 and out.max() <= 1


def test_matched_style_luminance_has_the_contents_mean_and_std(synthetic_image):
    content = 0.25 + 0.5 * synthetic_image(30, 30, 3)
    style = 0.1 + 0.3 * synthetic_image(40, 20, 4)
    grey = color.match_luminance(style, content)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    y, yc = grey[..., 0], color.luminance(content)
    assert abs(y.mean() - yc.mean()) < 1e-4 and abs(y.std() - yc.std()) < 1e-4


def test_histogram_matching_gives_the_contents_mean_and_covariance(synthetic_image):
    rng = np.random.default_rng(0)
    content = 0.5 + 0.1 * rng.standard_normal((40, 40, 3)) @ np.array([[1, 0.3, 0], [0, 1, 0.2], [0, 0, 1]])
    style = 0.4 + 0.05 * rng.standard_normal((50, 30, 3))
    a, b = color.color_transform(style, content)
    mapped = style.reshape(-1, 3) @ a.T + b  # unclipped
    c = content.reshape(-1, 3)
    np.testing.assert_allclose(mapped.mean(0), c.mean(0), atol=1e-9)
    np.testing.assert_allclose(np.cov(mapped, rowvar=False), np.cov(c, rowvar=False), atol=1e-9)
    out = color.match_histogram(style.astype(np.float32), content.astype(np.float32))
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_flat_style_does_not_blow_up(synthetic_image):
    flat = np.full((10, 10, 3), 0.5, np.float32)
    out = color.match_histogram(flat, synthetic_image(10, 10))
    assert np.isfinite(out).all()
