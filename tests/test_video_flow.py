"""nst.video.flow: warping direction, DIS flow on known motion, Ruder et al.'s consistency weights and the warping
error, on synthetic frames (textures moved by known subpixel amounts)."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (pip install 'nst[video]')")
pytest.importorskip("av", reason="PyAV is not installed (pip install 'nst[video]')")

from nst.video.flow import (  # noqa: E402
    WarpingError,
    consistency,
    flow_and_weights,
    optical_flow,
    pair_warping_error,
    warp,
    warping_error,
)

H, W = 96, 128


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """(h, w, 3) float32 in [0, 1]: blurred noise, band-limited so that subpixel shifts are well defined."""
    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    t = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return ((t - t.min()) / (t.max() - t.min())).astype(np.float32)


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """out(p) = img(p - (dx, dy)): the content moved by (dx, dy)."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def const_flow(dx: float, dy: float, h: int = H, w: int = W) -> np.ndarray:
    return np.broadcast_to(np.array([dx, dy], np.float32), (h, w, 2)).copy()


def test_warp_samples_image_at_p_plus_flow():
    img = np.arange(H * W, dtype=np.float32).reshape(H, W)
    out = warp(img, const_flow(1.0, 0.0))
    assert np.allclose(out[:, :-1], img[:, 1:])  # out(x) = img(x + 1)
    assert np.allclose(out[:, -1], img[:, -1])  # border replicated
    half = warp(img, const_flow(0.0, 0.5), "linear")
    assert np.allclose(half[:-1], (img[:-1] + img[1:]) / 2)  # bilinear
    rgb = np.stack([img] * 3, axis=-1)
    assert warp(rgb, const_flow(1.0, 0.0)).shape == (H, W, 3)
    with pytest.raises(ValueError, match="linear, cubic"):
        warp(img, const_flow(1.0, 0.0), "nearest")


def test_bicubic_warps_keep_texture_that_repeated_bilinear_warps_blur():
    """A frame warped from the last one, again and again (half a pixel each time, there and back): bilinear
    interpolation low-passes every time, bicubic far less; and cubic overshoot is clipped to the image's range."""
    img = texture(H, W, 2)
    inner = (slice(8, H - 8), slice(8, W - 8))
    kept = {}
    for mode in ("linear", "cubic"):
        out = img
        for k in range(8):
            out = warp(out, const_flow(0.5 if k % 2 == 0 else -0.5, 0.0), mode)
        kept[mode] = float(np.std(out[inner])) / float(np.std(img[inner]))
        assert out.min() >= img.min() and out.max() <= img.max()
    assert kept["cubic"] > kept["linear"] + 0.1, kept


def test_known_translation_warps_previous_onto_current_and_masks_the_new_strip():
    dx, dy = 3.4, -2.2
    prev = texture(H, W, 0)
    cur = shifted(prev, dx, dy)  # cur(p) = prev(p - t): forward flow t, backward flow -t
    fwd, bwd = const_flow(dx, dy), const_flow(-dx, -dy)
    warped = warp(prev, bwd)
    inner = (slice(8, H - 8), slice(8, W - 8))
    diff = np.abs(warped[inner] - cur[inner])  # our bicubic warp of OpenCV's bicubic shift: close, not exact
    assert diff.mean() < 0.005 and diff.max() < 0.05
    c = consistency(fwd, bwd)
    assert c.dtype == np.float32 and set(np.unique(c)) <= {0.0, 1.0}
    assert (c[:, :4] == 0).all() and (c[H - 2 :, :] == 0).all()  # came into view: p - t is outside prev
    assert (c[:-3, 4:] == 1).all()
    err = pair_warping_error(prev, cur, bwd, c)
    assert err < 3e-4 and err < 0.01 * float(np.mean(np.sum((cur - prev) ** 2, axis=2)))


@pytest.mark.parametrize("dx, dy", [(3.4, -2.2), (0.6, 0.3)])
def test_dis_recovers_subpixel_translation(dx, dy):
    prev = texture(H, W, 1)
    cur = shifted(prev, dx, dy)
    flow = optical_flow(prev, cur)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    inner = flow[12:-12, 12:-12].reshape(-1, 2)
    assert np.abs(np.median(inner, axis=0) - np.array([dx, dy])).max() < 0.15
    bwd, c = flow_and_weights(prev, cur)
    back = np.median(bwd[12:-12, 12:-12].reshape(-1, 2), axis=0)  # (2,)
    assert np.abs(back + np.array([dx, dy])).max() < 0.15
    assert c[4:-4, 4:-4].mean() > 0.95
    assert pair_warping_error(prev, cur, bwd, c) < 2e-3 < float(np.mean(np.sum((cur - prev) ** 2, axis=2)))


def occluder_pair(step: int = 6):
    """A 32x32 square of another texture moving right by `step` px over a still background; its exact flows."""
    bg, obj = texture(H, W, 2), texture(H, W, 3)
    y0, x0, s = 32, 40, 32

    def frame(x: int) -> np.ndarray:
        f = bg.copy()
        f[y0 : y0 + s, x : x + s] = obj[y0 : y0 + s, x0 : x0 + s]
        return f

    fwd, bwd = np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32)
    fwd[y0 : y0 + s, x0 : x0 + s, 0] = step  # on prev's grid: the object moves by +step
    bwd[y0 : y0 + s, x0 + step : x0 + step + s, 0] = -step  # on cur's grid
    uncovered = (slice(y0 + 2, y0 + s - 2), slice(x0 + 1, x0 + step - 1))  # background again, seen in cur only
    return frame(x0), frame(x0 + step), fwd, bwd, uncovered


def test_consistency_marks_uncovered_background_with_exact_flows():
    _, _, fwd, bwd, uncovered = occluder_pair()
    c = consistency(fwd, bwd)
    assert (c[uncovered] == 0).all()
    assert (c[:24] == 1).all() and (c[:, :32] == 1).all()  # static background away from the object
    assert (c[40:56, 52:68] == 1).all()  # the object's inside: consistent motion
    assert (c[32:64, 77:79] == 0).all()  # its leading edge: a motion boundary (central differences, 2 px)


def test_consistency_on_an_occluder_with_dis_flow():
    prev, cur, _, _, uncovered = occluder_pair()
    _, c = flow_and_weights(prev, cur)
    assert c[uncovered].mean() < 0.2
    far = np.ones((H, W), bool)
    far[20:76, 28:92] = False  # the object and a margin around where it moves
    assert c[far].mean() > 0.95  # DIS's small flow noise trips the strict motion-boundary test here and there


def test_consistency_refuses_mismatched_flows():
    with pytest.raises(ValueError, match="flows"):
        consistency(np.zeros((4, 4, 2)), np.zeros((4, 5, 2)))


def test_streaming_warping_error_tells_a_stable_output_from_a_flickering_one():
    base = texture(H + 20, W + 20, 4)
    frames_in = [shifted(base, 1.3 * t, 0.4 * t)[10 : 10 + H, 10 : 10 + W] for t in range(4)]
    rng = np.random.default_rng(0)
    flicker = [np.clip(f + rng.normal(0, 0.08, f.shape).astype(np.float32), 0, 1) for f in frames_in]
    stable = WarpingError()
    assert stable.update(frames_in[0], frames_in[0]) is None  # no pair yet
    per_pair = [stable.update(f, f) for f in frames_in[1:]]
    assert len(stable.errors) == 3 and per_pair == stable.errors
    assert stable.mean == pytest.approx(np.mean(per_pair))
    noisy = warping_error(flicker, frames_in)
    assert stable.mean < 2e-3 and noisy > 5 * stable.mean
    assert np.isnan(WarpingError().mean)


def test_pair_warping_error_is_nan_without_reliable_pixels():
    f = texture(16, 16, 5)
    assert np.isnan(pair_warping_error(f, f, np.zeros((16, 16, 2), np.float32), np.zeros((16, 16), np.float32)))
