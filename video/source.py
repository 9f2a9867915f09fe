"""Reading a video as frames: a file FFmpeg reads (through PyAV), a folder of images or a glob of them.

Frames come lazily, one at a time, as (index, (H, W, 3) float32 RGB in [0, 1]); index counts from 0 within the part
selected by start/duration. Nothing holds more than the frame being decoded, so a long video streams."""

from __future__ import annotations

import glob
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from nst.engine.errors import ImageError
from nst.engine.images import DEFAULT_MAX_PIXELS, load_image

from .errors import EmptyVideoError, FrameError, VideoInputError, missing_extra

try:
    import av
except ImportError:
    raise missing_extra("PyAV (av)") from None

DEFAULT_FPS = 24.0  # frames folders and globs carry no rate
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
GLOB_CHARS = re.compile(r"[*?\[]")


def natural_key(path: str | Path) -> list:
    """Sort key putting frame2 before frame10: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def _select(start: float, duration: float | None) -> None:
    if not math.isfinite(start) or start < 0:
        raise VideoInputError(f"--start {start} is not a time in seconds >= 0; give e.g. --start 1.5")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise VideoInputError(f"--duration {duration} is not a time in seconds > 0; give e.g. --duration 4")


def _why(e: Exception) -> str:
    """FFmpeg's reason without the errno and path PyAV adds: 'Invalid data found when processing input'."""
    return " ".join(str(getattr(e, "strerror", None) or e).split())


def _check_pixels(path: str | Path, h: int, w: int, max_pixels: int | None) -> None:
    if max_pixels is not None and h * w > max_pixels:
        raise VideoInputError(
            f"{path}: frames are {w}x{h} = {h * w} pixels, more than --max-pixels {max_pixels}; "
            "raise --max-pixels if you trust this input"
        )


@dataclass
class FramesSource:
    """A sorted list of image files as a video at `fps`; start/duration select frames round(t * fps)."""

    path: str
    files: list[Path]  # the selected frames, in order
    fps: float
    size: tuple[int, int]  # (h, w)
    max_pixels: int | None = None
    audio: bool = False
    start: float = 0.0
    duration: float | None = None

    @property
    def count(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for i, f in enumerate(self.files):
            try:
                frame = load_image(f, max_pixels=self.max_pixels)
            except ImageError as e:
                raise FrameError(f"frame {i} ({f}) cannot be read: {e}", index=i) from None
            if frame.shape[:2] != self.size:  # the header said otherwise: a file replaced while running
                raise FrameError(
                    f"frame {i} ({f}) is {frame.shape[1]}x{frame.shape[0]}, the others "
                    f"{self.size[1]}x{self.size[0]}; give frames of one size",
                    index=i,
                )
            yield i, frame


def _frame_files(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.suffix.lower() in FRAME_EXTENSIONS and not f.name.startswith(".")]
        what = f"folder {path} holds no image ({', '.join(FRAME_EXTENSIONS)})"
    else:
        files = [Path(f) for f in glob.glob(path) if Path(f).is_file()]
        what = f"glob {path!r} matches no file"
    if not files:
        raise EmptyVideoError(f"{what}; give a video file, a folder of frames or a quoted glob like 'frames/*.png'")
    return sorted(files, key=natural_key)


def _open_frames(path: str, start: float, duration: float | None, fps: float, max_pixels: int | None) -> FramesSource:
    files = _frame_files(path)
    first = round(start * fps)
    last = len(files) if duration is None else min(len(files), round((start + duration) * fps))
    selected = files[first:last]
    if not selected:
        raise EmptyVideoError(
            f"{path} has {len(files)} frames ({len(files) / fps:.3g} s at {fps:g} fps): none from --start {start:g}"
            f"{'' if duration is None else f' for --duration {duration:g}'}; choose a part inside the video"
        )
    # Every header before any work (Pillow reads no pixels here): mixed sizes are refused before the first frame
    # is stylized, not an hour in. Pixel data that is truncated fails later, when its frame is reached.
    size: tuple[int, int] | None = None
    for i, f in enumerate(selected):
        try:
            with Image.open(f) as im:
                w, h = im.size
        except Exception as e:  # Pillow raises many types for a bad header (UnidentifiedImageError, OSError, ...)
            raise FrameError(f"frame {i} ({f}) is not an image Pillow can read ({e}); replace the file", i) from None
        if size is None:
            size = (h, w)
            _check_pixels(path, h, w, max_pixels)
        elif (h, w) != size:
            raise VideoInputError(
                f"frames of mixed sizes in {path}: {selected[0].name} is {size[1]}x{size[0]}, {f.name} is {w}x{h}; "
                "give frames of one size"
            )
    assert size is not None
    return FramesSource(path, selected, fps, size, max_pixels, start=start, duration=duration)


@dataclass
class FileSource:
    """A video file read through PyAV: its first video stream, decoded on iteration (each iteration reopens it)."""

    path: str
    fps: float
    rate: Fraction  # the exact frame rate, e.g. 30000/1001
    size: tuple[int, int]  # (h, w)
    count: int | None  # frames in the selected part: from the header when known, else duration x fps
    audio: bool
    start: float = 0.0
    duration: float | None = None
    _length: float | None = field(default=None, repr=False)  # the whole stream's duration in seconds, if known

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        end = math.inf if self.duration is None else self.start + self.duration
        # A frame belongs to the part when its time t satisfies start <= t < end, with half a frame of slack for
        # timestamps rounded in the container (t = 0.0416 for 1/24 s).
        slack = 0.5 / self.fps
        i = 0
        with av.open(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = stream.time_base or Fraction(1, 1_000_000)
            origin = stream.start_time or 0
            if self.start > 0:
                container.seek(origin + int(self.start / tb), stream=stream, backward=True)
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except av.error.FFmpegError as e:
                    raise FrameError(
                        f"{self.path}: frame {i} of the selected part cannot be decoded ({_why(e)}); "
                        "the file is damaged from there on",
                        index=i,
                    ) from None
                t = 0.0 if frame.pts is None else float((frame.pts - origin) * tb)
                if t < self.start - slack:
                    continue
                if t >= end - slack:
                    break
                rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
                yield i, rgb.astype(np.float32) / 255.0
                i += 1
        if i == 0:
            raise EmptyVideoError(
                f"{self.path} has no frame from --start {self.start:g}"
                f"{f' (it lasts {self._length:.3g} s)' if self._length else ''}; choose a part inside the video"
            )


def _open_file(path: str, start: float, duration: float | None, max_pixels: int | None) -> FileSource:
    p = Path(path)
    if not p.exists():
        raise VideoInputError(f"{path} does not exist; give a video file, a folder of frames or a quoted glob")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as e:
        raise VideoInputError(
            f"{path} is not a video FFmpeg can read ({_why(e)}); give a video file, a frames folder or a quoted glob"
        ) from None
    with container:
        if not container.streams.video:
            raise VideoInputError(f"{path} has no video stream; give a video file or a frames folder")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise VideoInputError(f"{path}: its video stream has no frame rate; convert it with ffmpeg first")
        fps = float(rate)
        h, w = stream.codec_context.height, stream.codec_context.width
        if not h or not w:
            raise VideoInputError(f"{path}: its video stream has no frame size; convert it with ffmpeg first")
        _check_pixels(path, h, w, max_pixels)
        if stream.duration and stream.time_base:
            length: float | None = float(stream.duration * stream.time_base)
        elif container.duration:
            length = container.duration / av.time_base
        else:
            length = None
        audio = bool(container.streams.audio)
        total = stream.frames or (round(length * fps) if length else None)
    if length is not None and start >= length:
        raise EmptyVideoError(f"--start {start:g} is beyond the end of {path} ({length:.3g} s); give a smaller --start")
    count: int | None
    if total is None:
        count = None if duration is None else round(duration * fps)
    else:
        count = max(0, total - round(start * fps))
        if duration is not None:
            count = min(count, round(duration * fps))
    return FileSource(path, fps, Fraction(rate), (h, w), count, audio, start, duration, length)


def open_source(
    path_or_glob: str | Path,
    start: float = 0.0,
    duration: float | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    fps: float = DEFAULT_FPS,
) -> FileSource | FramesSource:
    """Open a video for reading: a video file (anything FFmpeg decodes), a folder of images or a glob of them (quote
    it in a shell), both sorted naturally (frame2 before frame10).

    start/duration (seconds) select a part: a file seeks to it; frames are taken by index round(t * fps), `fps`
    being the rate given to folders and globs (a file has its own). The result has .path, .fps, .size (h, w),
    .count (frames in the part; for a file from the header, else estimated, else None), .audio and .start/.duration,
    and iterates (index, (H, W, 3) float32 RGB in [0, 1]) lazily. Raises VideoInputError (not a video, mixed sizes,
    more than max_pixels per frame), EmptyVideoError (no frame in the part; for a file whose length is unknown, at the
    end of iteration) and, during iteration, FrameError for a frame that cannot be decoded."""
    _select(start, duration)
    path = str(path_or_glob)
    if not math.isfinite(fps) or fps <= 0:
        raise VideoInputError(f"--fps {fps} is not a frame rate > 0; give e.g. --fps 24")
    if Path(path).is_dir() or (GLOB_CHARS.search(path) and not Path(path).exists()):
        return _open_frames(path, start, duration, fps, max_pixels)
    return _open_file(path, start, duration, max_pixels)
