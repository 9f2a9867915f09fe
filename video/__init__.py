"""Video: read a video (file, frames folder or glob) as float32 frames, write frames as a video with the source's audio,
optical flow and warping for temporal consistency (Ruder, Dosovitskiy & Brox 2016).

This package imports without the `video` extra: only the errors and require_video_extra() live here. Import the rest
from its modules (nst.video.source, nst.video.sink, nst.video.flow), which import PyAV / OpenCV and raise
VideoExtraError without them."""

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

__all__ = [
    "EXTRA_HINT",
    "EmptyVideoError",
    "FrameError",
    "VideoError",
    "VideoExtraError",
    "VideoInputError",
    "VideoOutputError",
    "require_video_extra",
]
