"""Optical flow (OpenCV's DIS), backward warping, the forward-backward consistency weights of Ruder, Dosovitskiy &
Brox (2016) and the warping error of Lai et al. (2018). NumPy arrays in, NumPy arrays out.

Conventions, used throughout:
- A flow is (H, W, 2) float32 (dx, dy) in pixels, defined on the grid of the frame it starts from:
  optical_flow(a, b)(p) = w(p) with a(p) ≈ b(p + w(p)).
- warp(image, flow)(p) = image(p + flow(p)), bicubic. So warp(b, optical_flow(a, b)) ≈ a: to bring the previous
  frame onto the current one, warp it with the flow from the CURRENT frame to the PREVIOUS one (Ruder's "backward
  flow" ŵ):  warped_prev = warp(prev, optical_flow(cur, prev)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .errors import missing_extra

try:
    import cv2
except ImportError:
    raise missing_extra("OpenCV (cv2)") from None

# DIS presets by name. The default is chosen by measurement (bench/video_flow.py: tubingen.jpg at 256x192 moved by
# subpixel shifts and a 3% zoom): mean endpoint error 0.29 / 0.18 / 0.12 px for ULTRAFAST / FAST / MEDIUM at
# 1.4 / 2.4 / 9.4 ms per pair on one core. Two flows per frame cost MEDIUM ~20 ms, nothing beside a stylization.
PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
DEFAULT_PRESET = "medium"


def _grey(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] or uint8, or (H, W) -> (H, W) uint8 grey, which DIS takes."""
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if frame.ndim == 3:
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(frame)


def optical_flow(a: np.ndarray, b: np.ndarray, preset: str = DEFAULT_PRESET) -> np.ndarray:
    """Dense flow from frame a to frame b: (H, W, 2) float32 w with a(p) ≈ b(p + w(p)) (dx, dy in pixels).

    DIS (Kroeger et al. 2016) on grey uint8 frames, `preset` one of PRESETS. The default MEDIUM had 1.5x less endpoint
    error than FAST and 2.5x less than ULTRAFAST on a 256-px photo moved by known subpixel shifts and a zoom (0.12 px;
    bench/video_flow.py), for ~9 ms per pair, small beside a stylization."""
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"frames of different sizes: {a.shape[:2]} and {b.shape[:2]}")
    if preset not in PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; use one of {', '.join(PRESETS)}")
    dis = cv2.DISOpticalFlow_create(PRESETS[preset])  # type: ignore[attr-defined]
    flow = dis.calc(_grey(a), _grey(b), None)  # (H, W, 2) float32
    return np.asarray(flow, dtype=np.float32)


INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def _remap(image: np.ndarray, flow: np.ndarray, border: int, interpolation: str = "linear") -> np.ndarray:
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    out = cv2.remap(np.ascontiguousarray(image), map_x, map_y, INTERPOLATIONS[interpolation], borderMode=border)
    return out.reshape(image.shape) if out.ndim < image.ndim else out  # remap drops a trailing channel axis of 1


def warp(image: np.ndarray, flow: np.ndarray, interpolation: str = "cubic") -> np.ndarray:
    """Backward warping: out(p) = image(p + flow(p)), borders replicated. image (H, W) or (H, W, C) float32; flow
    (H, W, 2) on out's grid. The previous frame onto the current one: warp(prev, optical_flow(cur, prev)).

    Bicubic by default, clipped to the image's own range (cubic weights overshoot at edges). Departure from the paper,
    by measurement (bench/README.md "nst-video"): each frame starts from the last one warped, so a bilinear warp's
    low-pass compounds frame after frame; on the pan clip at 256 px relu1_1's style-loss reduction fell from 209 to 38
    within 8 frames with bilinear warps and to 130 with bicubic ones. "linear" is for fields such as flows."""
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; use one of {', '.join(INTERPOLATIONS)}")
    image = image.astype(np.float32, copy=False)
    out = _remap(image, flow, cv2.BORDER_REPLICATE, interpolation)
    if interpolation == "cubic" and image.size:
        out = np.clip(out, float(image.min()), float(image.max()))
    return out


def _gradient_sq(f: np.ndarray) -> np.ndarray:
    """|∇f|² by central differences (one-sided at the borders), like the authors' consistency checker."""
    gy, gx = np.gradient(f)
    return gx * gx + gy * gy


def consistency(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """Per-pixel weights c ∈ {0, 1} (H, W) float32 on the CURRENT frame's grid (Ruder et al. 2016, sec. 3.3).

    flow_fwd = w = (u, v): optical_flow(prev, cur), on the previous frame's grid.
    flow_bwd = ŵ = (û, v̂): optical_flow(cur, prev), on the current frame's grid; the one that warps prev onto cur.
    w̃(p) = w(p + ŵ(p)): the forward flow brought onto the current grid (warp(flow_fwd, flow_bwd)).
    Where the flows agree, going back and forth returns home: w̃ ≈ -ŵ. c = 0 where
      disocclusion:    |w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5   (the pixel was hidden, or the flow is wrong there)
      motion boundary: |∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002
    and, as in the authors' implementation (not in the paper's formulas), where p + ŵ(p) falls outside the previous
    frame: the region coming into view at a border, which has nothing to be warped from. c = 1 elsewhere."""
    if flow_fwd.shape != flow_bwd.shape or flow_fwd.ndim != 3 or flow_fwd.shape[2] != 2:
        raise ValueError(f"flows must be two (H, W, 2) arrays, not {flow_fwd.shape} and {flow_bwd.shape}")
    h, w = flow_bwd.shape[:2]
    fwd = flow_fwd.astype(np.float32, copy=False)
    bwd = flow_bwd.astype(np.float32, copy=False)
    w_tilde = warp(fwd, bwd, "linear")  # (H, W, 2)
    disoccluded = (
        np.sum((w_tilde + bwd) ** 2, axis=2) > 0.01 * (np.sum(w_tilde**2, axis=2) + np.sum(bwd**2, axis=2)) + 0.5
    )
    boundary = _gradient_sq(bwd[..., 0]) + _gradient_sq(bwd[..., 1]) > 0.01 * np.sum(bwd**2, axis=2) + 0.002
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    x, y = xs + bwd[..., 0], ys + bwd[..., 1]
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    return (~(disoccluded | boundary | outside)).astype(np.float32)


def flow_and_weights(prev: np.ndarray, cur: np.ndarray, preset: str = DEFAULT_PRESET) -> tuple[np.ndarray, np.ndarray]:
    """For the frame pair (prev, cur): the backward flow ŵ = optical_flow(cur, prev) that warps prev onto cur, and the
    consistency weights c on cur's grid. Both (H, W, 2) and (H, W) float32; what the temporal loss and the warping
    error need, computed from the INPUT frames."""
    bwd = optical_flow(cur, prev, preset)
    fwd = optical_flow(prev, cur, preset)
    return bwd, consistency(fwd, bwd)


def pair_warping_error(out_prev: np.ndarray, out_cur: np.ndarray, flow_bwd: np.ndarray, c: np.ndarray) -> float:
    """Σ_p c(p) ‖O_t(p) - warp(O_{t-1}, ŵ)(p)‖² / Σ_p c(p), the squared norm over the colour channels (Lai et al.
    2018, with flow and c from the input frames). NaN when c is 0 everywhere (nothing to compare)."""
    return warped_error(warp(out_prev, flow_bwd), out_cur, c)


def warped_error(warped_prev: np.ndarray, out_cur: np.ndarray, c: np.ndarray) -> float:
    """pair_warping_error with O_{t-1} already warped onto frame t (warp(O_{t-1}, ŵ)); NaN when c is 0 everywhere."""
    total = float(c.sum())
    if total == 0.0:
        return math.nan
    diff = out_cur.astype(np.float32, copy=False) - warped_prev  # (H, W, 3)
    return float(np.sum(c * np.sum(diff * diff, axis=2)) / total)


class WarpingError:
    """Streaming E_warp: update(frame_in, frame_out) per frame, in order; it keeps only the previous pair.

    Each update after the first returns the pair's error (pair_warping_error, flow and c from the input frames);
    .errors lists them, .mean is their mean over the pairs with a finite error (NaN before two frames)."""

    def __init__(self, preset: str = DEFAULT_PRESET):
        self.preset = preset
        self.errors: list[float] = []
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def update(self, frame_in: np.ndarray, frame_out: np.ndarray) -> float | None:
        prev, self._prev = self._prev, (frame_in, frame_out)
        if prev is None:
            return None
        bwd, c = flow_and_weights(prev[0], frame_in, self.preset)
        err = pair_warping_error(prev[1], frame_out, bwd, c)
        self.errors.append(err)
        return err

    @property
    def mean(self) -> float:
        finite = [e for e in self.errors if math.isfinite(e)]
        return float(np.mean(finite)) if finite else math.nan


def warping_error(
    frames_out: Iterable[np.ndarray], frames_in: Iterable[np.ndarray], preset: str = DEFAULT_PRESET
) -> float:
    """E_warp of a whole video: the mean over consecutive pairs of pair_warping_error (see WarpingError)."""
    meter = WarpingError(preset)
    for frame_out, frame_in in zip(frames_out, frames_in):
        meter.update(frame_in, frame_out)
    return meter.mean
