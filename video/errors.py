"""Video exceptions: NSTError subclasses, so the CLI turns each into one line and exit code 1. Each message names the
problem and what to do; options are spelled as the command line spells them (--start)."""

from __future__ import annotations

import importlib

from nst.engine.errors import NSTError

EXTRA_HINT = "pip install 'nst[video]'"


class VideoError(NSTError):
    """Base of the video errors."""


class VideoExtraError(VideoError):
    """PyAV or OpenCV (the `video` extra) is not installed."""


class VideoInputError(VideoError):
    """The input is not a video, a frames folder or a glob that can be read (also: frames of mixed sizes)."""


class EmptyVideoError(VideoInputError):
    """The input, or its part selected by --start/--duration, has no frame."""


class FrameError(VideoInputError):
    """A frame in the middle cannot be decoded. Raised when that frame is reached, so the frames before it (`index`
    of them, 0-based index of the bad one within the selected part) are already delivered and can be kept."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


class VideoOutputError(VideoError):
    """The output cannot be written (unsupported extension, a folder holding other files, an encoder failure)."""


def missing_extra(module: str) -> VideoExtraError:
    return VideoExtraError(f"{module} is not installed; videos need the video extra: {EXTRA_HINT}")


def require_video_extra() -> None:
    """Raise VideoExtraError (one line naming the extra) unless both PyAV (`av`) and OpenCV (`cv2`) can be imported.
    Call it before any work; the modules nst.video.source, .sink and .flow raise the same error when imported
    without them."""
    for module, name in (("av", "PyAV (av)"), ("cv2", "OpenCV (cv2)")):
        try:  # an import, not find_spec: a broken install (a missing FFmpeg library) fails here too
            importlib.import_module(module)
        except ImportError:
            raise missing_extra(name) from None
