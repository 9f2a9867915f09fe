"""Writing frames as a video, chosen by the output's extension: .mp4 (H.264), .webm (VP9), .gif, or a folder of PNG
frames (frame_000001.png, ...), with the source's audio carried over when asked.

Atomic like engine/files.py: everything goes to a hidden temporary file (or folder) beside the output, renamed over
it at close; on an exception, Ctrl-C included, the temporary is removed and an existing output is left as it was."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nst.engine.files import TMP_SUFFIX
from nst.engine.images import to_uint8

from .errors import VideoOutputError, missing_extra

try:
    import av
except ImportError:
    raise missing_extra("PyAV (av)") from None

KINDS = {".mp4": "mp4", ".webm": "webm", ".gif": "gif"}  # extension -> FFmpeg muxer; no extension: a frames folder
SUPPORTED_OUTPUT = ".mp4, .webm, .gif or a folder (no extension)"
FRAME_NAME = "frame_{:06d}.png"  # 1-based, as ffmpeg's image2 numbering
# (encoder, options): crf 18 is visually lossless for x264; VP9 in constant quality (b:v 0), row-mt for speed.
VIDEO_CODECS: dict[str, tuple[str, dict[str, str]]] = {
    "mp4": ("libx264", {"crf": "18", "preset": "medium"}),
    "webm": ("libvpx-vp9", {"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}),
    "gif": ("gif", {}),
}
# Audio codecs each container takes as they are (packets copied) and the one it gets otherwise (re-encoded).
AUDIO_COPY = {"mp4": {"aac", "mp3", "alac"}, "webm": {"opus", "vorbis"}}
AUDIO_ENCODE = {"mp4": "aac", "webm": "libopus"}


def check_output(out: str | Path) -> str:
    """The output kind ("mp4", "webm", "gif" or "folder") for `out`, or VideoOutputError before any work: an
    unsupported extension, or an existing folder holding anything but frame PNGs (which a run would replace)."""
    out = Path(out)
    if out.is_dir():
        others = [p.name for p in out.iterdir() if not (p.name.startswith("frame_") and p.suffix == ".png")]
        if others:
            raise VideoOutputError(
                f"output folder {out} holds other files ({others[0]}, ...) that writing frames would replace; "
                "give an empty or new folder"
            )
        return "folder"
    if out.exists():
        if out.suffix.lower() not in KINDS:
            raise VideoOutputError(f"unsupported output {out} (an existing file); use {SUPPORTED_OUTPUT}")
        return KINDS[out.suffix.lower()]
    if out.suffix == "":
        return "folder"
    kind = KINDS.get(out.suffix.lower())
    if kind is None:
        raise VideoOutputError(f"unsupported output extension {out.suffix!r} for {out}; use {SUPPORTED_OUTPUT}")
    return kind


def _why(e: Exception) -> str:
    """FFmpeg's reason without the errno and path PyAV adds."""
    return " ".join(str(getattr(e, "strerror", None) or e).split())


def _rate(fps: float | Fraction) -> Fraction:
    """An exact rate for the container: 29.97 -> 30000/1001 (denominators up to 1001 cover NTSC rates)."""
    if not (isinstance(fps, Fraction) or math.isfinite(fps)) or fps <= 0:
        raise VideoOutputError(f"--fps {fps} is not a frame rate > 0; give e.g. --fps 24")
    return Fraction(fps).limit_denominator(1001)


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p stores colour per 2x2 block, so x264 needs even sides: an odd side loses its last row or column.
    Cropped rather than padded: no stripe of repeated pixels at the border, and one pixel of the image is not seen."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def _gif_frame(rgb: np.ndarray) -> Any:
    """(H, W, 3) uint8 -> a pal8 frame with its own 256-colour palette (median cut, no dithering: dither noise
    differs from frame to frame and would flicker, which is what a stylized video must not do)."""
    im = Image.fromarray(rgb, "RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal = np.zeros((256, 4), np.uint8)  # ARGB, as PyAV wants it
    rgb_pal = np.asarray(im.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
    pal[: len(rgb_pal), 1:] = rgb_pal
    pal[:, 0] = 255
    pair: Any = (np.asarray(im, np.uint8), pal)  # PyAV's stubs know only single arrays; pal8 takes (indices, palette)
    return av.VideoFrame.from_ndarray(pair, format="pal8")


class _Audio:
    """The audio of `path` from `start` on, muxed into `out` up to a time the sink asks for: packets copied when the
    container takes the codec, else decoded and re-encoded. Starts at 0 in the output, at the first packet (copy) or
    frame (re-encode) that reaches `start`, so it can lead the picture by less than one packet (~20 ms)."""

    def __init__(self, path: str | Path, out: Any, kind: str, start: float):
        self.input = av.open(str(path))
        self.stream_in = self.input.streams.audio[0]
        self.start, self.origin, self.offset = start, self.stream_in.start_time or 0, None
        self.tb = self.stream_in.time_base or Fraction(1, 1_000_000)
        self.copy = self.stream_in.codec_context.name in AUDIO_COPY[kind]
        if self.copy:
            self.stream_out = out.add_stream_from_template(self.stream_in)
        else:
            rate = 48000 if kind == "webm" else (self.stream_in.rate or 48000)  # Opus runs at 48 kHz only
            layout = "mono" if self.stream_in.channels == 1 else "stereo"
            self.stream_out = out.add_stream(AUDIO_ENCODE[kind], rate=rate, layout=layout)
        if start > 0:
            self.input.seek(self.origin + int(start / self.tb), stream=self.stream_in, backward=True)
        self.items: Iterator[Any] = self.input.demux(self.stream_in) if self.copy else self.input.decode(self.stream_in)
        self.pending: Any = None  # the next packet or frame, read but beyond the last time asked for
        self.out = out

    def _time(self, item: Any) -> float:
        return float((item.pts - self.origin) * self.tb) - self.start

    def _next(self) -> Any:
        """The next packet or frame at or after start, or None at the end."""
        if self.pending is not None:
            item, self.pending = self.pending, None
            return item
        for item in self.items:
            if item.pts is None:  # demux's final empty packet
                continue
            dur = float((item.duration or 0) * self.tb) if self.copy else item.samples / item.sample_rate
            if self._time(item) + dur <= 0:
                continue
            return item
        return None

    def until(self, t: float) -> None:
        """Mux everything that starts before t seconds of output."""
        while (item := self._next()) is not None:
            if self._time(item) >= t:
                self.pending = item
                return
            if self.offset is None:
                self.offset = item.pts
            item.pts -= self.offset
            if self.copy:
                item.dts = None if item.dts is None else item.dts - self.offset
                item.stream = self.stream_out
                self.out.mux(item)
            else:
                item.pts = None  # the encoder numbers its own samples (its resampler and FIFO re-chunk frames)
                self.out.mux(self.stream_out.encode(item))

    def close(self) -> None:
        if not self.copy:
            self.out.mux(self.stream_out.encode(None))
        self.input.close()


class VideoSink:
    """Frames in, a video out: write() each (H, W, 3) float32 in [0, 1] (or uint8) frame, then close(). As a
    context manager it closes on success and aborts (removes everything it wrote) on an exception.

    fps: the output's frame rate. audio_from: a file whose first audio stream is carried over for .mp4/.webm, from
    `start` seconds on and cut at the video's end (gif and folders have no audio; a source without audio gives a
    silent video). .frames: frames written so far; .size: the (h, w) written, after mp4/webm's cropping to even."""

    def __init__(
        self,
        out: str | Path,
        fps: float | Fraction,
        audio_from: str | Path | None = None,
        start: float = 0.0,
        duration: float | None = None,
    ):
        self.out, self.kind, self.rate = Path(out), check_output(out), _rate(fps)
        self.audio_from, self.start, self.duration = audio_from, start, duration
        self.frames, self.size = 0, (0, 0)
        self.container: Any = None
        self.stream: Any = None
        self.audio: _Audio | None = None
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "folder":
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=TMP_SUFFIX, dir=self.out.parent))
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.out.name}.", suffix=TMP_SUFFIX, dir=self.out.parent)
            os.close(fd)
            self.tmp = Path(tmp)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self, h: int, w: int) -> None:
        codec, options = VIDEO_CODECS[self.kind]
        opts = {"movflags": "+faststart"} if self.kind == "mp4" else {}  # the index first: playable while loading
        self.container = av.open(str(self.tmp), "w", format=self.kind, options=opts)
        self.stream = self.container.add_stream(codec, rate=self.rate, options=options)
        self.stream.width, self.stream.height = w, h
        self.stream.pix_fmt = "pal8" if self.kind == "gif" else "yuv420p"
        if self.kind == "gif":
            self.stream.time_base = Fraction(1, 100)  # GIF delays are in 1/100 s
        elif self.audio_from is not None:
            try:
                with av.open(str(self.audio_from)) as probe:
                    has_audio = bool(probe.streams.audio)
            except (av.error.FFmpegError, OSError) as e:
                raise VideoOutputError(
                    f"cannot read audio from {self.audio_from} ({_why(e)}); check the file"
                ) from None
            if has_audio:
                self.audio = _Audio(self.audio_from, self.container, self.kind, self.start)

    def write(self, frame: np.ndarray) -> None:
        try:
            self._write(frame)
        except av.error.FFmpegError as e:  # an encoder or muxer failure (disk full, a codec refusing the size)
            raise VideoOutputError(f"cannot write {self.out} ({_why(e)}); check the disk and the frame size") from None

    def _write(self, frame: np.ndarray) -> None:
        rgb = frame if frame.dtype == np.uint8 else to_uint8(frame)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"a frame must be (H, W, 3), not {rgb.shape}")
        if self.kind in ("mp4", "webm"):
            rgb = _even(rgb)
        h, w = rgb.shape[:2]
        if min(h, w) < 2 and self.kind != "folder":
            raise VideoOutputError(f"frames of {w}x{h} are too small for {self.kind}; give frames of 2x2 or more")
        if self.frames == 0:
            self.size = (h, w)
            if self.kind != "folder":
                self._open(h, w)
        elif (h, w) != self.size:
            raise ValueError(f"frame {self.frames} is {w}x{h}, the first was {self.size[1]}x{self.size[0]}")
        if self.kind == "folder":
            Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(self.tmp / FRAME_NAME.format(self.frames + 1))
        else:
            vf = (
                _gif_frame(rgb)
                if self.kind == "gif"
                else av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")
            )
            if self.kind == "gif":
                vf.pts, vf.time_base = round(self.frames / self.rate * 100), Fraction(1, 100)
            else:
                vf.pts, vf.time_base = self.frames, 1 / self.rate
            self.container.mux(self.stream.encode(vf))
        self.frames += 1
        if self.audio is not None:
            self.audio.until(self._end())  # interleave: audio up to the end of this frame

    def _end(self) -> float:
        """Seconds of audio wanted so far: as long as the frames written, at most --duration."""
        t = float(self.frames / self.rate)
        return t if self.duration is None else min(t, self.duration)

    def close(self) -> Path:
        """Finish the file and rename it over the output. A sink with no frame written is an error."""
        try:
            if self.frames == 0:
                raise VideoOutputError(f"no frame was written to {self.out}; nothing to save")
            if self.container is not None:
                self.container.mux(self.stream.encode(None))
                if self.audio is not None:
                    self.audio.until(self._end())
                    self.audio.close()
                self.container.close()
                self.container = None
            os.chmod(self.tmp, 0o755 if self.kind == "folder" else 0o644)  # mkstemp/mkdtemp make them private
            self._replace()
        except av.error.FFmpegError as e:
            self.abort()
            raise VideoOutputError(f"cannot finish {self.out} ({_why(e)}); check the disk") from None
        except BaseException:
            self.abort()
            raise
        return self.out

    def _replace(self) -> None:
        if self.kind != "folder" or not self.out.exists():
            os.replace(self.tmp, self.out)
            return
        # A folder cannot be renamed over a non-empty one: the old frames (check_output allowed nothing else) step
        # aside first and go once the new ones are in place.
        old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old.", suffix=TMP_SUFFIX, dir=self.out.parent))
        os.replace(self.out, old / "frames")
        os.replace(self.tmp, self.out)
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove what was written (the temporary file or folder); the output is left as it was."""
        if self.audio is not None:
            self.audio.input.close()
            self.audio = None
        if self.container is not None:
            with contextlib.suppress(Exception):  # a half-set-up muxer may fail to write its trailer: the file goes
                self.container.close()
            self.container = None
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)


def assemble(
    frames: Iterable[np.ndarray],
    out: str | Path,
    fps: float | Fraction,
    audio_from: str | Path | None = None,
    start: float = 0.0,
    duration: float | None = None,
) -> Path:
    """Stream `frames` ((H, W, 3) float32 in [0, 1] or uint8) into `out` (see VideoSink), atomically; returns `out`.
    Pass the source's path and its start/duration as audio_from/start/duration to carry its audio over."""
    with VideoSink(out, fps, audio_from, start, duration) as sink:
        for frame in frames:
            sink.write(frame)
    return sink.out
