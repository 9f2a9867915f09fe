"""Colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving Color in Neural Artistic Style
Transfer"), NumPy only. Images are (H, W, 3) float32 RGB in [0, 1].

- luminance: stylize the luminance alone. The style's luminance is matched to the content's mean and standard
  deviation; both become grey images (Y in every channel); after the run, the output's luminance is recombined with
  the content's chroma (YIQ, as the paper).
- histogram: before the run, an affine map x -> A x + b of the style's colours gives them the content's mean and
  covariance (A = Sigma_C^(1/2) Sigma_S^(-1/2), symmetric square roots; the paper's "colour histogram matching")."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

PreserveColors = Literal["none", "luminance", "histogram"]
PRESERVE_COLORS: tuple[str, ...] = get_args(PreserveColors)

# RGB -> YIQ (NTSC 1953): rows Y, I, Q.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)
_EPS = 1e-8


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float64) @ _RGB_TO_YIQ.T).astype(np.float32)  # (H, W, 3): Y, I, Q


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return (yiq.astype(np.float64) @ _YIQ_TO_RGB.T).astype(np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    """Y as an (H, W) array."""
    return rgb_to_yiq(image)[..., 0]


def grey(y: np.ndarray) -> np.ndarray:
    """(H, W) luminance -> (H, W, 3) grey RGB image, clipped to [0, 1]."""
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's luminance with the content's mean and standard deviation, as a grey image."""
    ys, yc = luminance(style), luminance(content)
    return grey((ys - ys.mean()) * (yc.std() / max(float(ys.std()), _EPS)) + yc.mean())


def recombine(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylized image's luminance with the content's chroma (content at the same size), clipped to [0, 1]."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = luminance(stylized)
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0)


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Symmetric (inverse) square root of a covariance matrix; eigenvalues floored so flat images do not blow up."""
    w, v = np.linalg.eigh(cov)
    w = np.maximum(w, _EPS)
    return (v * (w ** (-0.5 if inverse else 0.5))) @ v.T


def color_transform(style: np.ndarray, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A (3, 3), b (3,)) such that A x + b over the style's pixels has the content's mean and covariance."""
    s = style.reshape(-1, 3).astype(np.float64)  # (N, 3)
    c = content.reshape(-1, 3).astype(np.float64)
    mu_s, mu_c = s.mean(0), c.mean(0)
    a = _sqrtm(np.cov(c, rowvar=False)) @ _sqrtm(np.cov(s, rowvar=False), inverse=True)
    return a, mu_c - a @ mu_s


def match_histogram(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style image with the content's colour mean and covariance, clipped to [0, 1]."""
    a, b = color_transform(style, content)
    return np.clip(style.astype(np.float64) @ a.T + b, 0.0, 1.0).astype(np.float32)
