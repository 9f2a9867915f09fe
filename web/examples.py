"""The demo's content and style pair, from nothing but installed packages (no ../shared, no download): content =
scikit-image's bundled photo of Chelsea the cat; style = a swirling brush-stroke painting made here (line-integral
convolution of noise along a vortex field, in a night-sky palette). scripts/demo_images.py writes them as files;
nst-web offers them as its examples."""

from __future__ import annotations

import functools
import io

import numpy as np


class ExamplesUnavailable(RuntimeError):
    """The content photo comes from scikit-image (the `demo` extra), which is not installed."""


def swirl_painting(h: int = 384, w: int = 512, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    # a few vortices; the flow is their summed rotational field plus a gentle drift
    vx, vy = np.full((h, w), 0.3), np.zeros((h, w))
    for _ in range(6):
        cx, cy, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(40, 110) * rng.choice([-1, 1])
        dx, dy = x - cx, y - cy
        r2 = dx * dx + dy * dy + 200.0
        vx += -dy * s / r2 * 8
        vy += dx * s / r2 * 8
    norm = np.hypot(vx, vy) + 1e-9
    vx, vy = vx / norm, vy / norm
    coarse = rng.random((h // 3 + 1, w // 3 + 1))
    noise = np.kron(coarse, np.ones((3, 3)))[:h, :w]  # 3-px dabs: brush-width strokes
    noise = (noise > 0.8).astype(np.float64) + 0.3 * noise
    # line-integral convolution: average the noise along each pixel's streamline
    acc = np.zeros((h, w))
    for sign in (1.0, -1.0):
        px, py = x.copy(), y.copy()
        for _ in range(18):
            ix, iy = np.clip(px.astype(int), 0, w - 1), np.clip(py.astype(int), 0, h - 1)
            acc += noise[iy, ix]
            px += sign * vx[iy, ix] * 1.5
            py += sign * vy[iy, ix] * 1.5
    t = (acc - acc.min()) / (acc.max() - acc.min())
    t = np.clip((t - 0.2) / 0.6, 0, 1)
    # a slow field decides where the sky glows (yellow/orange) and where it stays deep blue
    glow = 0.5 + 0.5 * np.sin(x / 70.0 + 1.3 * np.sin(y / 55.0)) * np.cos(y / 90.0 - x / 160.0)
    palette = np.array(
        [
            [0.04, 0.08, 0.25],
            [0.10, 0.28, 0.62],
            [0.30, 0.58, 0.80],
            [0.92, 0.78, 0.25],
            [0.98, 0.55, 0.12],
            [1.0, 0.96, 0.70],
        ]
    )
    u = np.clip(0.55 * t + 0.55 * glow * t + 0.15 * glow, 0, 1) * (len(palette) - 1)
    i = np.minimum(u.astype(int), len(palette) - 2)
    f = (u - i)[..., None]
    img = palette[i] * (1 - f) + palette[i + 1] * f
    return np.clip(img, 0, 1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


@functools.cache
def demo_content() -> np.ndarray:
    """(H, W, 3) uint8: scikit-image's photo of Chelsea the cat."""
    try:
        from skimage import data
    except ImportError:
        raise ExamplesUnavailable("the example photo needs scikit-image: pip install 'nst[demo]'") from None
    return np.asarray(data.chelsea())


@functools.cache
def demo_style() -> np.ndarray:
    """(H, W, 3) uint8: the swirl painting."""
    return to_uint8(swirl_painting())


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
