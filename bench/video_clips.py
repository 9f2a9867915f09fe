"""Benchmark clips for nst-video, made from the photos in ../shared/images: each as a frames folder and an .mp4.

    .venv/bin/python bench/video_clips.py                      # bench/results/clips/ (git-ignored)
    .venv/bin/python bench/video_clips.py OUT --frames 24 --size 128

- pan:    a window sliding across tubingen.jpg (1.34 px per frame at 256 px x 48 frames); pan.mp4 carries a 440 Hz tone
          (AAC), to try the audio carry-over.
- zoom:   zooming into golden_gate.jpg by 30% about its centre.
- object: a disc cut from starry_night.jpg sliding over a still tubingen.jpg, so that background is covered in front
          of it and uncovered behind it (occlusions and disocclusions for the consistency weights).
Every frame is resampled from a photo larger than the frame (cv2.warpAffine, bicubic), so motion is smooth and
subpixel like a camera's, not whole-pixel jumps. Skips (exit 0, one line) without ../shared/images."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
FPS = 24
TONE_HZ = 440.0


def _photo(name: str, long_side: int) -> np.ndarray:
    from nst.engine import load_image, resize
    from nst.engine.images import fit_long_side

    img = load_image(SHARED / name)
    return resize(img, fit_long_side(*img.shape[:2], long_side))


def _affine(src: np.ndarray, m: np.ndarray, h: int, w: int) -> np.ndarray:
    """dst(p) = src(M⁻¹ p) for the 2x3 map M from source to frame coordinates; (h, w, C) float32 in [0, 1]."""
    import cv2

    out = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def pan(frames: int, size: int) -> Iterator[np.ndarray]:
    src = _photo("tubingen.jpg", round(size * 1.25))  # (H, W, 3), a quarter wider than the frame
    h, w = round(src.shape[0] / 1.25), size
    travel = src.shape[1] - w - 1  # px, across the whole clip
    for i in range(frames):
        x0 = travel * i / max(1, frames - 1)
        yield _affine(src, np.array([[1.0, 0.0, -x0], [0.0, 1.0, -(src.shape[0] - h) / 2]]), h, w)


def zoom(frames: int, size: int) -> Iterator[np.ndarray]:
    import cv2

    src = _photo("golden_gate.jpg", size)
    h, w = src.shape[:2]
    for i in range(frames):
        scale = 1.3 ** (i / max(1, frames - 1))  # constant zoom speed: the same ratio every frame
        yield _affine(src, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, scale), h, w)


def moving_object(frames: int, size: int) -> Iterator[np.ndarray]:
    background = _photo("tubingen.jpg", size)
    h, w = background.shape[:2]
    texture = _photo("starry_night.jpg", size)[:h, :w]
    r = h / 5
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(frames):
        t = i / max(1, frames - 1)
        cx, cy = r + 8 + t * (w - 2 * r - 16), h / 2 + 0.25 * h * np.sin(np.pi * t)
        # The disc carries its texture with it (a cut-out, not a window); its edge is antialiased over one pixel.
        alpha = np.clip(r - np.hypot(xs - cx, ys - cy) + 0.5, 0.0, 1.0)[..., None]  # (H, W, 1)
        disc = _affine(texture, np.array([[1.0, 0.0, cx - w / 2], [0.0, 1.0, cy - h / 2]]), h, w)
        yield (alpha * disc + (1 - alpha) * background).astype(np.float32)


CLIPS = {"pan": pan, "zoom": zoom, "object": moving_object}


def write_tone(path: Path, seconds: float, rate: int = 48000) -> Path:
    """A sine at TONE_HZ, amplitude 0.3, as AAC in an .m4a: an audio source for the sink's carry-over."""
    import av

    samples = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(round(seconds * rate)) / rate)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as c:
        stream = c.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", type=Path, default=ROOT / "bench" / "results" / "clips", help="output folder")
    ap.add_argument("--frames", type=int, default=48, help="frames per clip (default 48, 2 s at 24 fps)")
    ap.add_argument("--size", type=int, default=256, help="long side in pixels (default 256)")
    ap.add_argument("--clips", nargs="+", choices=sorted(CLIPS), default=list(CLIPS))
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"video_clips: skipped: {SHARED} is not present on this machine")
        return 0
    if args.frames < 2 or args.size < 16:
        ap.error("--frames must be 2 or more and --size 16 or more")
    from nst.video.sink import assemble

    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.clips:
        assemble(CLIPS[name](args.frames, args.size), args.out / name, FPS)
        frames = (f for f in CLIPS[name](args.frames, args.size))  # made twice: nothing held, as a video would be
        if name == "pan":
            with tempfile.TemporaryDirectory() as tmp:
                tone = write_tone(Path(tmp) / "tone.m4a", args.frames / FPS + 0.1)
                assemble(frames, args.out / f"{name}.mp4", FPS, audio_from=tone)
        else:
            assemble(frames, args.out / f"{name}.mp4", FPS)
        print(f"{args.out / name}/ and {name}.mp4: {args.frames} frames at {FPS} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
