"""The losses, each returning (value, gradient) with the gradient next to its forward (as in micrograd), written once
against the Python array API: NumPy arrays on the CPU, CuPy arrays on CUDA, any namespace array-api-compat knows.

Definitions (the seeds' formulas; A = activations reshaped (nC, nH*nW)):
  content  J_c = 1/(4 nH nW nC) * sum (a_C - a_G)^2
  Gram     G = A A^T / (nH nW)   -- normalised by its own nH*nW (departure from the paper's raw sum), so a style image
                                    of another size gives the same scale; equal to the 1/(2 nH nW nC)^2 form of the
                                    seeds' style cost when sizes are equal
  style    J_s = 1/(4 nC^2) * sum_kk' (G_S - G_G)^2
  tv       TV = (sum (x[i+1,j] - x[i,j])^2 + sum (x[i,j+1] - x[i,j])^2) / (3 H W)   (squared, per pixel-channel)
Activations are (1, C, H, W) or (C, H, W). Values are returned as Python floats (style and TV accumulated in float64,
content in the input's dtype: see content_loss); gradients are arrays of the input's namespace, dtype and shape.

Namespace: array_api_compat.array_namespace(*inputs), so every operation below is the standard's (reshape, sum,
matmul, concat, astype): the tests run them on array_api_strict arrays on a non-CPU device, where a stray NumPy call
raises as it would on CuPy arrays. No NumPy-only branch is needed: NumPy runs the same code as fast as the NumPy code
it replaced (gram's docstring; bench/losses_bench.py).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from array_api_compat import array_namespace

Array: TypeAlias = Any  # an array of any array-API namespace (numpy.ndarray, cupy.ndarray, array_api_strict.Array, ...)


def _flat(a: Array, xp: Any) -> Array:
    """(1, C, H, W) or (C, H, W) -> (C, H*W), a view when possible."""
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[0] != 1):
        raise ValueError(f"activations must be (1, C, H, W) or (C, H, W), got shape {tuple(a.shape)}")
    return xp.reshape(a, (a.shape[-3], -1))


def content_loss(a_g: Array, a_c: Array) -> tuple[float, Array]:
    xp = array_namespace(a_g, a_c)
    c, h, w = a_g.shape[-3:]
    scale = 1.0 / (4.0 * h * w * c)
    diff = a_g - a_c
    # Summed in the input's dtype. NumPy's pairwise sum: 2e-8 relative in float32 over 16M terms, 6x faster than
    # converting to float64 first (19 vs 126 ms); BLAS sdot was faster still but 5e-5 off. (CuPy also reduces in a
    # tree; its accuracy is for the GPU parity tests to confirm.)
    value = scale * float(xp.sum(xp.square(diff)))
    diff *= 2.0 * scale  # in place: a fresh (C, H, W) buffer per evaluation costs page faults as well as the pass
    return value, diff  # dJ/da_G = (a_G - a_C) / (2 nH nW nC); a Python float keeps diff's dtype


def gram(a: Array) -> Array:
    """G = A A^T / (nH nW), shape (C, C), exactly symmetric.

    NumPy's matmul sees that A.T is A transposed (same buffer) and calls BLAS syrk, which computes one triangle (half
    the FLOPs of a GEMM) and mirrors it: as fast as calling scipy's syrk directly, which this did before (measured in
    bench/README.md). Other namespaces may run a full GEMM (CuPy: cuBLAS), whose two triangles can differ in the last
    bit; (G + G^T) / 2 makes G symmetric, as the style gradient assumes, and leaves an exactly symmetric G unchanged."""
    xp = array_namespace(a)
    A = _flat(a, xp)
    g = A @ A.T
    return (g + g.T) * (0.5 / A.shape[1])


def style_loss(a_g: Array, g_s: Array, g_g: Array | None = None, scale: float = 1.0) -> tuple[float, Array]:
    """Style cost of activations a_g against the target Gram g_s (pass g_g = gram(a_g) if already computed), and its
    gradient times `scale` (a layer weight, applied to the (C, C) factor instead of the (C, N) gradient)."""
    xp = array_namespace(a_g, g_s)
    c = a_g.shape[-3]
    A = _flat(a_g, xp)
    n = A.shape[1]
    if g_g is None:
        g_g = gram(a_g)
    diff = g_g - g_s  # (C, C), symmetric
    d64 = xp.astype(diff, xp.float64, copy=False)
    value = float(xp.sum(d64 * d64)) / (4.0 * c * c)
    # dJ/dG = diff / (2 C^2); through G = A A^T / n (symmetric diff): dJ/dA = diff @ A / (C^2 n).
    k = diff * (scale / (c * c * n))
    if k.dtype != A.dtype:  # a float64 target with float32 activations: the gradient keeps the activations' dtype
        k = xp.astype(k, A.dtype)
    grad = k @ A  # (C, N)
    return value, xp.reshape(grad, a_g.shape)


def tv_loss(image: Array) -> tuple[float, Array]:
    """Squared total variation of a (1, 3, H, W) image, normalised per pixel-channel."""
    xp = array_namespace(image)
    x = image
    h, w = x.shape[-2:]
    scale = 1.0 / (3.0 * h * w)
    # The image with its first and last rows (columns) repeated: its differences are dy (dx) with a zero at both ends,
    # (..., H+1, W) and (..., H, W+1), so the gradient needs no in-place slice updates (not every namespace has them).
    py = xp.concat([x[..., :1, :], x, x[..., -1:, :]], axis=-2)
    px = xp.concat([x[..., :1], x, x[..., -1:]], axis=-1)
    dy = py[..., 1:, :] - py[..., :-1, :]  # [0, x[i+1] - x[i] ..., 0] along H
    dx = px[..., 1:] - px[..., :-1]
    # squared in the input's dtype, summed in float64; with the padding, 0.89x the time of float64 squares and in-place
    # slice updates on NumPy (bench/README.md)
    value = scale * (float(xp.sum(dy * dy, dtype=xp.float64)) + float(xp.sum(dx * dx, dtype=xp.float64)))
    # dTV/dx[i] = 2 scale ((x[i] - x[i-1]) - (x[i+1] - x[i])) along each axis, the missing differences zero
    g = (dy[..., :-1, :] - dy[..., 1:, :]) + (dx[..., :-1] - dx[..., 1:])
    return value, g * (2.0 * scale)
