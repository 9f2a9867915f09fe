"""Video: read a video (file, frames folder or glob) as float32 frames, write frames as a video with the source's audio,
optical flow and warping for temporal consistency (Ruder, Dosovitskiy & Brox 2016).

This package imports without the `video` extra: the errors, require_video_extra() and VideoOptions live here.
stylize_video and FrameResult (nst.video.stylize) are loaded on first use, and the modules nst.video.source, .sink,
.flow and .stylize import PyAV / OpenCV and raise VideoExtraError without them."""

from typing import Any

from .errors import (
    EXTRA_HINT,
    EmptyVideoError,
    FrameError,
    VideoError,
    VideoExtraError,
    VideoInputError,
    VideoOutputError,
    require_video_extra,
)
from .options import VideoOptions


def __getattr__(name: str) -> Any:
    """nst.video.stylize_video and FrameResult, imported when first asked for (they need the extra)."""
    if name in ("stylize_video", "FrameResult"):
        from . import stylize

        return getattr(stylize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXTRA_HINT",
    "EmptyVideoError",
    "FrameError",
    "VideoError",
    "VideoExtraError",
    "VideoInputError",
    "VideoOptions",
    "VideoOutputError",
    "require_video_extra",
]
