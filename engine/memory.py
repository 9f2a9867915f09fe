"""Estimate a run's peak memory from the model and the pixel count, before allocating anything."""

from __future__ import annotations

import os

from .images import fit_long_side
from .manifest import Manifest

# Bytes of memory per float32 activation of the network, across both graphs: the taps and their gradients on the
# host, the saved masks, and each graph's working buffers (in onnxruntime's shared arena, which runs above the
# no-arena peak at large sizes: +11% at 1024 px). BASE_BYTES: interpreter,
# libraries, onnxruntime sessions, style images, what earlier stages leave behind (the weights file is counted
# separately). Both are set so the estimate stays above the peak RSS of whole default nst-run runs at 512, 1024 and
# 2048 px (bench/README.md, "Round 2", rechecked with the shared arena: 3% above at 2048 px); bench/bench.py's scaling
# series fits the evaluation loop alone.
ACTIVATION_FACTOR = 4.8
BASE_BYTES = 700e6


def activations_per_pixel(manifest: Manifest) -> float:
    """float32 activations per input pixel summed over the network's layers."""
    return sum(layer.channels / (layer.scale * layer.scale) for layer in manifest.layers)


def estimate_bytes(
    manifest: Manifest, height: int, width: int, pairs: int, weights_bytes: int = 0, optimizer: str = "scipy"
) -> int:
    """Peak bytes of a run at (height, width) with `pairs` L-BFGS correction pairs (StylizeOptions.lbfgs_pairs) and
    StylizeOptions.optimizer: scipy's L-BFGS-B keeps its pairs in float64, the array-API L-BFGS in float32 (the
    constants above were fitted with scipy's; only the pairs' size differs)."""
    n = height * width
    acts = ACTIVATION_FACTOR * activations_per_pixel(manifest) * n
    return int(BASE_BYTES + 2 * weights_bytes + acts + lbfgs_bytes(n, pairs, optimizer) + image_bytes(n))


def lbfgs_bytes(pixels: int, pairs: int, optimizer: str = "scipy") -> int:
    """The optimiser's correction pairs and work vectors once all `pairs` are stored: float64 for scipy's L-BFGS-B,
    float32 for the array-API L-BFGS."""
    return (2 * pairs + 6) * 3 * pixels * (8 if optimizer == "scipy" else 4)


def image_bytes(pixels: int) -> int:
    """Image copies, gradients, the best iterate."""
    return 10 * 3 * pixels * 4


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def largest_fitting_long_side(
    manifest: Manifest,
    content_hw: tuple[int, int],
    pairs: int,
    budget: int,
    weights_bytes: int = 0,
    optimizer: str = "scipy",
) -> int:
    """The largest long side (px, a multiple of 16) whose estimate fits in `budget` bytes, with the content's aspect
    rounded exactly as the run resizes it. Returns 0 when not even 16 px fits."""

    def fits(long_side: int) -> bool:
        h, w = fit_long_side(*content_hw, long_side)
        return estimate_bytes(manifest, h, w, pairs, weights_bytes, optimizer) <= budget

    if not fits(16):
        return 0
    lo, hi = 16, 1 << 16
    while lo < hi:  # estimate_bytes grows with the long side, so bisect
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo - lo % 16
