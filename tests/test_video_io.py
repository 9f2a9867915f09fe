"""nst.video.source and nst.video.sink: tiny clips written and read back (mp4, webm, gif, frames folders), audio
carried over, part selection, and the one-line errors for bad inputs and outputs."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'nst[video]')")
pytest.importorskip("cv2", reason="OpenCV is not installed (pip install 'nst[video]')")

from nst.video import EmptyVideoError, FrameError, VideoInputError, VideoOutputError  # noqa: E402
from nst.video.sink import VideoSink, assemble, check_output  # noqa: E402
from nst.video.source import open_source  # noqa: E402

FPS = 12
N = 12  # frames: 1 s at 12 fps


def frame(i: int, h: int = 33, w: int = 45) -> np.ndarray:
    """(h, w, 3) float32: a smooth gradient whose red level tells the frame index (i * 20 / 255)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([np.full((h, w), i * 20 / 255), x / w, y / h], axis=-1).astype(np.float32)


def index_of(f: np.ndarray) -> int:
    return round(float(f[..., 0].mean()) * 255 / 20)


def tone_clip(path: Path, codec: str = "aac", n: int = N, fps: int = FPS) -> Path:
    """A clip of `n` frames (32x44) with a 440 Hz sine as `codec` audio, written with PyAV directly."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264" if path.suffix == ".mp4" else "libvpx-vp9", rate=fps)
        v.width, v.height, v.pix_fmt = 44, 32, "yuv420p"
        a = c.add_stream(codec, rate=48000, layout="mono")
        for i in range(n):
            vf = av.VideoFrame.from_ndarray((frame(i, 32, 44) * 255 + 0.5).astype(np.uint8), "rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            c.mux(v.encode(vf))
        c.mux(v.encode(None))
        t = np.arange(48000 * n // fps) / 48000
        af = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], "flt", "mono")
        af.sample_rate, af.pts, af.time_base = 48000, 0, Fraction(1, 48000)
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    return path


def audio_of(path: Path) -> tuple[str, float, float]:
    """(codec, seconds, dominant frequency in Hz) of the first audio stream."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        pcm = np.concatenate([f.to_ndarray().reshape(f.layout.nb_channels, -1)[0] for f in c.decode(stream)])
        rate = stream.rate
        name = stream.codec_context.name
    spectrum = np.abs(np.fft.rfft(pcm))
    return name, len(pcm) / rate, float(np.argmax(spectrum) * rate / len(pcm))


def read(path) -> tuple:
    src = open_source(path, fps=FPS)
    return src, [f for _, f in src]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("ext", [".mp4", ".webm"])
def test_clip_round_trip_with_even_size(tmp_path, ext):
    out = assemble((frame(i) for i in range(6)), tmp_path / f"clip{ext}", FPS)
    src, frames = read(out)
    assert (src.fps, src.size, src.count, len(frames), src.audio) == (FPS, (32, 44), 6, 6, False)  # 33x45 cropped
    assert frames[0].dtype == np.float32 and frames[0].shape == (32, 44, 3)
    for i, f in enumerate(frames):
        assert np.abs(f - frame(i)[:32, :44]).mean() < 0.03
    assert leftovers(tmp_path) == []


def test_folder_output_is_lossless_and_numbered(tmp_path):
    out = assemble((frame(i) for i in range(3)), tmp_path / "frames", FPS)
    assert sorted(p.name for p in out.iterdir()) == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    src, frames = read(out)
    assert (src.size, src.count, src.fps) == ((33, 45), 3, FPS)
    assert all(np.abs(f - frame(i)).max() <= 0.5 / 255 + 1e-6 for i, f in enumerate(frames))
    assemble((frame(9) for _ in range(2)), out, FPS)  # an earlier output's frames are replaced, not mixed
    assert len(list(out.iterdir())) == 2 and leftovers(tmp_path) == []


def test_gif_output(tmp_path):
    out = assemble((frame(i) for i in range(4)), tmp_path / "clip.gif", 10)  # GIF delays: 1/100 s, so 10 fps is exact
    src, frames = read(out)
    assert (src.fps, src.size, len(frames)) == (10, (33, 45), 4)
    assert all(np.abs(f - frame(i)).mean() < 0.02 for i, f in enumerate(frames))


@pytest.mark.parametrize(
    "source, out, codec",
    [("tone.mp4", "o.mp4", "aac"), ("tone.mp4", "o.webm", "opus"), ("tone.webm", "o.mp4", "aac")],
)
def test_audio_carried_over_and_trimmed(tmp_path, source, out, codec):
    src_path = tone_clip(tmp_path / source, "aac" if source.endswith("mp4") else "libopus")
    src = open_source(src_path, start=0.25, duration=0.5)
    assert src.audio and src.count == 6
    result = assemble((f for _, f in src), tmp_path / out, src.fps, audio_from=src_path, start=0.25, duration=0.5)
    name, seconds, hz = audio_of(result)
    assert name == codec and abs(hz - 440) < 5
    assert 0.45 < seconds < 0.6  # the video's 0.5 s, up to an audio packet or the encoder's padding
    back = open_source(result)
    assert len(list(back)) == 6 and abs(back.count - 6) <= 1  # webm stores no frame count: estimated from duration


def test_audio_source_without_audio_gives_a_silent_video(tmp_path):
    silent = assemble((frame(i) for i in range(3)), tmp_path / "silent.mp4", FPS)
    out = assemble((frame(i) for i in range(3)), tmp_path / "o.mp4", FPS, audio_from=silent)
    assert not open_source(out).audio


def test_frames_folder_natural_order_glob_and_part(tmp_path):
    for i in (10, 2, 1, 0, 3, 11):  # frame10 after frame3 naturally, before it in plain string order
        Image.fromarray((frame(i) * 255 + 0.5).astype(np.uint8)).save(tmp_path / f"frame{i}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    src, frames = read(tmp_path)
    assert [index_of(f) for f in frames] == [0, 1, 2, 3, 10, 11]
    assert (src.fps, src.count, src.audio) == (FPS, 6, False)
    src, frames = read(str(tmp_path / "frame1*.png"))
    assert [index_of(f) for f in frames] == [1, 10, 11]
    part = open_source(tmp_path, start=2 / FPS, duration=3 / FPS, fps=FPS)
    assert part.count == 3 and [index_of(f) for _, f in part] == [2, 3, 10]
    assert [i for i, _ in part] == [0, 1, 2]


def test_file_part_selection(tmp_path):
    clip = assemble((frame(i) for i in range(N)), tmp_path / "c.mp4", FPS)
    src = open_source(clip, start=0.25, duration=0.5)
    assert src.count == 6 and [index_of(f) for _, f in src] == [3, 4, 5, 6, 7, 8]
    assert [index_of(f) for _, f in open_source(clip, start=0.75)] == [9, 10, 11]


def test_not_a_video(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_text("hello, not a video\n")
    with pytest.raises(VideoInputError, match="not a video FFmpeg can read") as e:
        open_source(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(VideoInputError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")


def test_zero_frames(tmp_path):
    clip = assemble((frame(i) for i in range(N)), tmp_path / "c.mp4", FPS)
    with pytest.raises(EmptyVideoError, match="beyond the end"):
        open_source(clip, start=5.0)
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(EmptyVideoError, match="holds no image"):
        open_source(folder)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "f1.png")
    with pytest.raises(EmptyVideoError, match="none from --start 3"):
        open_source(folder, start=3.0)
    with pytest.raises(EmptyVideoError, match="matches no file"):
        open_source(str(tmp_path / "nothing*.png"))


def test_unreadable_frame_midway_is_raised_when_reached(tmp_path):
    for i in range(4):
        Image.fromarray((frame(i) * 255).astype(np.uint8)).save(tmp_path / f"f{i}.png")
    data = (tmp_path / "f2.png").read_bytes()
    (tmp_path / "f2.png").write_bytes(data[: len(data) // 2])  # the header is intact, the pixels cut off
    got = []
    with pytest.raises(FrameError) as e:
        for i, _ in open_source(tmp_path):
            got.append(i)
    assert got == [0, 1] and e.value.index == 2
    assert "frame 2" in str(e.value) and "f2.png" in str(e.value) and "\n" not in str(e.value)


def test_mixed_frame_sizes_refused_before_any_frame(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "f1.png")
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "f2.png")
    with pytest.raises(VideoInputError, match="mixed sizes"):
        open_source(tmp_path)


def test_max_pixels(tmp_path):
    clip = assemble((frame(i) for i in range(2)), tmp_path / "c.mp4", FPS)
    with pytest.raises(VideoInputError, match="--max-pixels 100"):
        open_source(clip, max_pixels=100)


def test_unsupported_output_refused_before_any_work(tmp_path):
    for bad in ("out.avi", "out.png"):
        with pytest.raises(VideoOutputError, match="unsupported output extension") as e:
            check_output(tmp_path / bad)
        assert "\n" not in str(e.value)
    pulled = []

    def frames():
        pulled.append(1)
        yield frame(0)

    with pytest.raises(VideoOutputError):
        assemble(frames(), tmp_path / "out.mkv", FPS)
    assert pulled == [] and list(tmp_path.iterdir()) == []
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(VideoOutputError, match="holds other files"):
        check_output(tmp_path / "busy")
    assert [check_output(tmp_path / n) for n in ("a.mp4", "a.WEBM", "a.gif", "new")] == ["mp4", "webm", "gif", "folder"]


@pytest.mark.parametrize("name", ["o.mp4", "frames"])
def test_failure_leaves_nothing_and_keeps_an_existing_output(tmp_path, name):
    def failing():
        yield frame(0)
        yield frame(1)
        raise RuntimeError("stylization failed")

    with pytest.raises(RuntimeError):
        assemble(failing(), tmp_path / name, FPS)
    assert list(tmp_path.iterdir()) == []
    assemble((frame(5) for _ in range(2)), tmp_path / name, FPS)
    with pytest.raises(RuntimeError):
        assemble(failing(), tmp_path / name, FPS)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    _, frames = read(tmp_path / name)
    assert len(frames) == 2 and index_of(frames[0]) == 5


def test_empty_sink_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(VideoOutputError, match="no frame"), VideoSink(tmp_path / "o.mp4", FPS):
        pass
    assert list(tmp_path.iterdir()) == []


def test_without_the_extra_one_line_names_it():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'cv2': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from nst.video import VideoExtraError, require_video_extra\n"
        "for attempt in (require_video_extra, lambda: __import__('nst.video.flow')):\n"
        "    try:\n"
        "        attempt()\n"
        "    except VideoExtraError as e:\n"
        "        print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 2, r.stderr
    expected = "OpenCV (cv2) is not installed; videos need the video extra: pip install 'nst[video]'"
    assert lines == [expected, expected]


BENCH_CLIPS = Path(__file__).resolve().parents[1] / "bench" / "video_clips.py"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"


def test_bench_clips_help_runs_anywhere():
    r = subprocess.run([sys.executable, str(BENCH_CLIPS), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--frames" in r.stdout and "--size" in r.stdout, r.stderr


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} (the shared test photos) is not present")
def test_bench_clips_are_readable_videos(tmp_path):
    r = subprocess.run(
        [sys.executable, str(BENCH_CLIPS), str(tmp_path), "--frames", "3", "--size", "48"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    for name in ("pan", "zoom", "object"):
        folder, clip = open_source(tmp_path / name), open_source(tmp_path / f"{name}.mp4")
        assert folder.count == 3 and len(list(clip)) == 3 and max(folder.size) == 48
        assert clip.audio == (name == "pan")


def test_unreadable_audio_source_is_one_line_and_leaves_nothing(tmp_path):
    bad = tmp_path / "in" / "bad.mp4"
    bad.parent.mkdir()
    bad.write_text("not media")
    out = tmp_path / "out"
    with pytest.raises(VideoOutputError, match="cannot read audio from") as e:
        assemble((frame(i) for i in range(2)), out / "o.mp4", FPS, audio_from=bad)
    assert "\n" not in str(e.value) and list(out.iterdir()) == []
