"""stylize_video: a video's frames in, stylized frames out, one at a time, without flicker (Ruder, Dosovitskiy & Brox
2016). A generator in the engine's style: arrays in, arrays out, progress through a callback, no files.

Frame 1 is a still run with the options as given (coarse to fine). Every later frame t:
  1. the flow between INPUT frames t-1 and t, both directions (DIS), and the consistency weights c (0 at
     disocclusions, motion boundaries and where the flow leaves the frame): nst.video.flow.flow_and_weights;
  2. the previous STYLIZED frame warped onto frame t: w = warp(O_{t-1}, flow t -> t-1);
  3. one stage at the final size (scales=1) of frame_iterations L-BFGS iterations from x0 = c w + (1 - c) I_t
     (the content frame where nothing can be warped), with the temporal term gamma (1/D) sum c (x - w)^2 added to
     the content and style terms (nst.video.temporal).
Departures from the paper: its later frames start from the warped frame and run a fixed number of iterations at one
size too, but it blends nothing into disoccluded regions (it starts them from the warped, wrong, pixels); here they
start from the content frame, which gives them a clean start like frame 1's. The consistency weights are the paper's.

Every output frame is rounded to 8 bits before the next frame starts from it, in an uninterrupted run as in a resumed
one, so a run resumed from saved PNG frames gives the same frames as one that never stopped.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nst.engine import color
from nst.engine.images import fit_long_side, resize, to_nchw, to_uint8
from nst.engine.model import Model
from nst.engine.optimize import Progress
from nst.engine.options import StylizeOptions
from nst.engine.plan import Plan, Stage, plan_run
from nst.engine.stylize import StylizeResult, stylize
from nst.engine.terms import LossTerm

from .flow import flow_and_weights, warp, warped_error
from .options import VideoOptions
from .temporal import TemporalTerm

LONG_TERM_OFFSETS = (1, 10, 20, 40)  # the previous frames the long-term loss looks back to (Ruder et al., sec. 3.2)
HW = tuple[int, int]


@dataclass
class FrameResult:
    index: int  # 0-based, within the frames given
    image: np.ndarray  # (H, W, 3) float32 at the working size: the 8-bit values / 255 (as a PNG stores them)
    resumed: bool = False  # taken from `resume`, not stylized now
    result: StylizeResult | None = None  # of the stylization (None when resumed)
    warping_error: float | None = None  # to the previous output (flow, c from the inputs); None for frame 1, resumed
    consistent: float | None = None  # the fraction of pixels with c = 1 (frames after the first)
    seconds: float = 0.0  # flow + stylization of this frame
    terms: dict[str, float] = field(default_factory=dict)  # weighted, at the result


FrameCallback = Callable[[int, Progress], None]  # (frame index, the iteration's Progress); may raise StopIteration


def quantize(image: np.ndarray) -> np.ndarray:
    """What a frame is after a PNG round trip: 8-bit values as float32 in [0, 1]."""
    return to_uint8(np.asarray(image, np.float32)).astype(np.float32) / 255.0


def frame_plans(
    manifest: Any, frame_hw: HW, style_hws: Sequence[HW], options: StylizeOptions, video: VideoOptions, **kw: Any
) -> tuple[Plan, Plan]:
    """(frame 1's plan: the options as given, coarse to fine; every later frame's: one stage at the final size, of
    frame_iterations, started from an image). frame_hw: the input frames' (h, w); kw go to plan_run (available=,
    weights_bytes=, style_names= for the memory check and messages)."""
    first = plan_run(manifest, frame_hw, style_hws, options, **kw)
    later_options = dataclasses.replace(
        options, scales=1, min_size=None, iterations=video.frame_iterations, init="image"
    )
    later = plan_run(manifest, first.size, style_hws, later_options, **kw)
    return first, later


@dataclass
class _Seen:
    """A frame kept for the next ones: the input at the working size and its 8-bit output."""

    input: np.ndarray
    output: np.ndarray


def _temporal_pairs(
    history: Sequence[_Seen], cur: np.ndarray, video: VideoOptions
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(the warped previous outputs, the previous frame first; their weights; c of the previous frame).

    Short-term: the previous frame only. Long-term (Ruder et al. eq. 7): the frames j in LONG_TERM_OFFSETS back,
    each with c_long_j = max(c_j - sum_{k in J, k < j} c_k, 0): a pixel is tied to the nearest consistent frame."""
    offsets = [j for j in (LONG_TERM_OFFSETS if video.long_term else (1,)) if j <= len(history)]
    warped, weights = [], []
    covered = c1 = None
    for j in offsets:
        seen = history[-j]
        flow, c = flow_and_weights(seen.input, cur, video.flow)
        if j == 1:
            c1 = c
        c_long = c if covered is None else np.maximum(c - covered, 0.0)
        covered = c if covered is None else covered + c
        warped.append(warp(seen.output, flow))
        weights.append(c_long.astype(np.float32))
    assert c1 is not None
    return warped, weights, c1


def stylize_video(
    model: Model,
    frames: Iterable[np.ndarray],
    styles: Sequence[np.ndarray],
    options: StylizeOptions | None = None,
    *,
    video_options: VideoOptions | None = None,
    callback: FrameCallback | None = None,
    resume: Iterable[np.ndarray] = (),
    target_cache: dict | None = None,
) -> Iterator[FrameResult]:
    """Stylize `frames` ((H, W, 3) float32 in [0, 1], all one size, e.g. nst.video.source's) one by one; yield a
    FrameResult per frame as soon as it is done. Holds the previous input and output frame only (40 of each with
    video_options.long_term), so memory does not grow with the video.

    options: StylizeOptions for every frame (frame 1 uses them as given; later frames one stage of
    video_options.frame_iterations at options.size). resume: the frames already stylized by an earlier run with the
    same settings, in order (arrays, or PNGs read back): they are yielded with resumed=True, and the first frame after
    them starts from the last of them, as it would have in that run. target_cache: a dict for the style Grams, kept
    across frames (and across calls with the same style arrays); with preserve_colors luminance or histogram the
    styles are matched to each frame's colours, so the Grams are recomputed per frame.

    The callback gets (frame index, Progress) after every iteration. Its StopIteration ends the video cleanly after
    the last finished frame (the frame in progress is dropped); Ctrl-C raises KeyboardInterrupt after the last
    finished frame. NonFiniteError and the plan's errors are raised."""
    options = options or StylizeOptions()
    video = video_options or VideoOptions()
    cache = ({} if target_cache is None else target_cache) if options.preserve_colors == "none" else None
    finished = iter(resume)
    history: deque[_Seen] = deque(maxlen=max(LONG_TERM_OFFSETS) if video.long_term else 1)
    plans: tuple[Plan, Plan] | None = None
    for index, frame in enumerate(frames):
        t0 = time.perf_counter()
        frame = np.asarray(frame, dtype=np.float32)
        if plans is None:
            plans = frame_plans(model.manifest, frame.shape[:2], [s.shape[:2] for s in styles], options, video)
        cur = resize(frame, plans[0].size)  # the working size: flow and stylization both here
        done = next(finished, None)
        if done is not None:
            done = np.asarray(done)
            out = quantize(done if done.dtype != np.uint8 else done.astype(np.float32) / 255.0)
            if out.shape != cur.shape:
                raise ValueError(f"resumed frame {index + 1} is {out.shape[:2]}, the working size {cur.shape[:2]}")
            history.append(_Seen(cur, out))
            yield FrameResult(index, out, resumed=True)
            continue
        on_progress = None if callback is None else (lambda p, i=index: callback(i, p))
        if not history:
            result = stylize(model, cur, styles, plan=plans[0], callback=on_progress, target_cache=cache)
            warped = c = None
        else:
            warped, weights, c = _temporal_pairs(history, cur, video)
            init = c[..., None] * warped[0] + (1.0 - c[..., None]) * cur
            extra = [] if video.temporal_weight == 0 else [_temporal_factory(warped, weights, video, plans[1])]
            result = stylize(
                model,
                cur,
                styles,
                plan=plans[1],
                callback=on_progress,
                init_image=init,
                target_cache=cache,
                extra_terms=extra,
            )
        if result.interrupted:
            raise KeyboardInterrupt
        if result.stopped:
            return
        out = quantize(result.image)
        warping = consistent = None
        if warped is not None and c is not None:  # the previous output already warped onto this frame: warped[0]
            warping, consistent = warped_error(warped[0], out, c), float(c.mean())
        history.append(_Seen(cur, out))
        yield FrameResult(
            index,
            out,
            result=result,
            warping_error=warping,
            consistent=consistent,
            seconds=time.perf_counter() - t0,
            terms=dict(result.terms),
        )


def _temporal_factory(
    warped: Sequence[np.ndarray], weights: Sequence[np.ndarray], video: VideoOptions, plan: Plan
) -> Callable[[Stage], LossTerm]:
    """The temporal term for the later frames' one stage. With preserve_colors=luminance the optimised image is the
    grey luminance (engine/color.py), so the warped outputs are compared as grey luminance too."""
    luminance = plan.preserve_colors == "luminance"
    seen = [to_nchw(color.grey(color.luminance(w)) if luminance else w) for w in warped]
    cs = [c[None, None] for c in weights]  # (1, 1, H, W)

    def make(stage: Stage) -> LossTerm:
        if stage.size != seen[0].shape[2:]:
            raise ValueError(f"temporal term built for {seen[0].shape[2:]}, asked for a stage at {stage.size}")
        return TemporalTerm(seen, cs, video.temporal_weight)

    return make


def working_size(frame_hw: HW, options: StylizeOptions) -> HW:
    """The (h, w) the frames are stylized (and written) at: long side options.size."""
    return fit_long_side(*frame_hw, options.size)
