"""nst.video.stylize.stylize_video on tiny moving frames: one result per frame, the temporal term on later frames,
resume equal to an uninterrupted run bit for bit, stops, and the temporal term reducing the warping error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'nst[video]')")
pytest.importorskip("cv2", reason="OpenCV is not installed (pip install 'nst[video]')")

from nst.engine import StylizeOptions, load_model
from nst.video.options import VideoOptions
from nst.video.stylize import stylize_video

H, W = 48, 64
OPTIONS = StylizeOptions(size=W, iterations=3)
VIDEO = VideoOptions(frame_iterations=2)


def moving_frames(synthetic_image, n: int, step: int = 2) -> list[np.ndarray]:
    """n frames (H, W, 3): a window sliding `step` px right per frame over a wider synthetic image."""
    wide = synthetic_image(H, W + step * n, 5)
    return [wide[:, step * t : step * t + W] for t in range(n)]


@pytest.fixture(scope="module")
def model(model_dir):
    return load_model(model_dir, "cpu")


@pytest.fixture(scope="module")
def style(synthetic_image):
    return synthetic_image(40, 40, 9)[..., ::-1].copy()


def test_one_result_per_frame_and_resume_equals_an_uninterrupted_run(model, style, synthetic_image):
    frames = moving_frames(synthetic_image, 4)
    seen = []
    full = list(
        stylize_video(model, frames, [style], OPTIONS, video_options=VIDEO, callback=lambda i, p: seen.append(i))
    )
    assert [r.index for r in full] == [0, 1, 2, 3] and not any(r.resumed for r in full)
    assert sorted(set(seen)) == [0, 1, 2, 3]
    for r in full:
        assert r.image.shape == (H, W, 3) and r.image.dtype == np.float32
        assert np.array_equal(r.image, np.round(r.image * 255) / 255)  # 8-bit values: what a PNG keeps
    assert full[0].warping_error is None and "temporal" not in full[0].terms
    assert full[0].result.stages[0]["iterations"] == 3
    for r in full[1:]:
        assert r.result.iterations == 2 and r.terms["temporal"] > 0
        assert np.isfinite(r.warping_error) and 0.5 < r.consistent <= 1.0

    # stopped after frame 2 (the consumer takes two), then resumed from those two frames as uint8 PNG pixels
    first_two = [
        r.image for r in itertools.islice(stylize_video(model, frames, [style], OPTIONS, video_options=VIDEO), 2)
    ]
    as_png = [np.round(f * 255).astype(np.uint8) for f in first_two]
    resumed = list(stylize_video(model, frames, [style], OPTIONS, video_options=VIDEO, resume=as_png))
    assert [r.resumed for r in resumed] == [True, True, False, False]
    for a, b in zip(full, resumed):
        assert np.array_equal(a.image, b.image)


def test_callback_stop_ends_after_the_last_finished_frame(model, style, synthetic_image):
    frames = moving_frames(synthetic_image, 3)

    def stop_in_frame_2(i, p):
        if i == 1:
            raise StopIteration

    got = list(stylize_video(model, frames, [style], OPTIONS, video_options=VIDEO, callback=stop_in_frame_2))
    assert [r.index for r in got] == [0]


def test_temporal_weight_reduces_the_warping_error(model, style, synthetic_image):
    frames = moving_frames(synthetic_image, 3, step=3)
    errors = {}
    for gamma in (0.0, 1e9):
        video = VideoOptions(frame_iterations=3, temporal_weight=gamma)
        results = list(stylize_video(model, frames, [style], OPTIONS, video_options=video))
        errors[gamma] = np.mean([r.warping_error for r in results[1:]])
    assert errors[1e9] < 0.5 * errors[0.0]


def test_long_term_ties_each_pixel_to_the_nearest_consistent_frame(monkeypatch):
    """With 21 frames seen, the long-term loss looks back 1, 10 and 20 frames, with c_long_j = max(c_j - sum of the
    nearer c_k, 0) (Ruder et al. eq. 7). The flows are replaced by a stand-in that gives each previous frame known
    consistency weights: frame t-1 consistent on the left third, t-10 on the left two thirds, t-20 everywhere."""
    from nst.video import stylize as video_stylize

    h, w = 6, 9
    known = {1: np.s_[:, :3], 10: np.s_[:, :6], 20: np.s_[:, :]}

    def stand_in(prev, cur, preset):
        back = round(float(cur[0, 0, 0] - prev[0, 0, 0]) * 100)  # frames carry their index / 100
        c = np.zeros((h, w), np.float32)
        c[known.get(back, np.s_[:0])] = 1.0
        return np.zeros((h, w, 2), np.float32), c

    monkeypatch.setattr(video_stylize, "flow_and_weights", stand_in)
    frames = [np.full((h, w, 3), t / 100, np.float32) for t in range(22)]
    history = [video_stylize._Seen(f, f) for f in frames[:21]]
    warped, weights, c = video_stylize._temporal_pairs(history, frames[21], VideoOptions(long_term=True))
    assert len(warped) == 3
    assert [float(x[0, 0, 0]) for x in warped] == pytest.approx([0.20, 0.11, 0.01])  # outputs 1, 10, 20 back
    expected = np.zeros((3, h, w), np.float32)
    expected[0, :, :3] = expected[1, :, 3:6] = expected[2, :, 6:] = 1.0  # each pixel tied to exactly one frame
    assert np.array_equal(np.stack(weights), expected) and np.array_equal(c, expected[0])
    short = video_stylize._temporal_pairs(history, frames[21], VideoOptions())
    assert len(short[0]) == 1 and np.array_equal(short[1][0], expected[0])


def test_video_options_are_validated():
    from nst.engine import OptionError

    with pytest.raises(OptionError, match="frame_iterations"):
        VideoOptions(frame_iterations=0)
    with pytest.raises(OptionError, match="temporal_weight"):
        VideoOptions(temporal_weight=-1.0)
    with pytest.raises(OptionError, match="flow"):
        VideoOptions(flow="slow")  # type: ignore[arg-type]
