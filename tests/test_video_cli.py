"""nst-video end to end on tiny clips: a video file with a tone (frame count, fps, size, audio), a frames folder in and
out, the work folder (kept with --frames-dir, refused with other settings, --force), resume after Ctrl-C equal to an
uninterrupted run bit for bit, and every bad input as one error line with nst-run's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'nst[video]')")
pytest.importorskip("cv2", reason="OpenCV is not installed (pip install 'nst[video]')")

H, W, FPS = 48, 64, 12
FAST = ["--size", W, "--iterations", 2, "--frame-iterations", 2, "-q"]


def frames(synthetic_image, n: int) -> list[np.ndarray]:
    wide = synthetic_image(H, W + 2 * n, 5)
    return [(wide[:, 2 * t : 2 * t + W] * 255 + 0.5).astype(np.uint8) for t in range(n)]


def tone_clip(path: Path, images: list[np.ndarray]) -> Path:
    """An H.264 clip of `images` at FPS with a 440 Hz AAC tone as long as the video."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="mono")
        for i, im in enumerate(images):
            vf = av.VideoFrame.from_ndarray(im, "rgb24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            c.mux(v.encode(vf))
        c.mux(v.encode(None))
        t = np.arange(48000 * len(images) // FPS) / 48000
        af = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], "flt", "mono")
        af.sample_rate, af.pts, af.time_base = 48000, 0, Fraction(1, 48000)
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    return path


def frames_folder(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"in{i + 1}.png")
    return folder


@pytest.fixture
def nst_video(runner, model_dir, style):
    from nst.cli.video_cmd import app

    def run(*args):
        return runner.invoke(app, ["--model", str(model_dir), "-s", str(style), *map(str, args)])

    return run


def test_video_file_with_audio(tmp_path, synthetic_image, nst_video, ok):
    clip = tone_clip(tmp_path / "in.mp4", frames(synthetic_image, 4))
    out = tmp_path / "out" / "styled.mp4"
    log, report = tmp_path / "log.jsonl", tmp_path / "report.png"
    ok(nst_video(clip, "-o", out, "--log-json", log, "--report", report, *FAST))
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.average_rate, v.codec_context.height, v.codec_context.width) == (FPS, H, W)
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert len(list(c.decode(v))) == 4
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(a)])
        assert a.codec_context.name == "aac" and 0.25 < len(pcm) / a.rate < 0.45
        assert abs(np.argmax(np.abs(np.fft.rfft(pcm))) * a.rate / len(pcm) - 440) < 10
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["frame"] for r in records] == [1, 2, 3, 4]
    assert records[0]["warping_error"] is None and all(r["warping_error"] >= 0 for r in records[1:])
    assert all(r["iterations"] == 2 and r["seconds"] > 0 and "early_stop" in r for r in records)
    assert "temporal" in records[1]["terms"]
    assert Image.open(report).size[0] >= 640
    assert not (tmp_path / "out" / "styled.mp4.frames").exists()  # the work folder goes once OUT is written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["styled.mp4"]


def test_folder_in_folder_out_and_frames_dir_kept(tmp_path, synthetic_image, nst_video, ok, pixels):
    src = frames_folder(tmp_path / "in", frames(synthetic_image, 3))
    out, work = tmp_path / "styled", tmp_path / "work"
    ok(nst_video(src, "-o", out, "--frames-dir", work, *FAST))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert pixels(out / names[0]).shape == (H, W, 3)
    assert sorted(p.name for p in work.iterdir()) == [*names, "frames.jsonl", "settings.json"]
    for name in names:  # OUT's frames are the work folder's, losslessly
        assert np.array_equal(pixels(out / name), pixels(work / name))

    # the same command again: every frame is finished, nothing is stylized, OUT is the same
    before = {n: pixels(out / n) for n in names}
    ok(nst_video(src, "-o", out, "--frames-dir", work, *FAST))
    assert all(np.array_equal(before[n], pixels(out / n)) for n in names)
    assert len((work / "frames.jsonl").read_text().splitlines()) == 3


def test_other_settings_refused_then_force(tmp_path, synthetic_image, nst_video, ok, error_line):
    src = frames_folder(tmp_path / "in", frames(synthetic_image, 2))
    out, work = tmp_path / "o.gif", tmp_path / "work"
    ok(nst_video(src, "-o", out, "--frames-dir", work, *FAST))
    line = error_line(nst_video(src, "-o", out, "--frames-dir", work, *FAST, "--temporal-weight", 5), 1, "nst-video")
    assert "temporal_weight" in line and "--force" in line
    ok(nst_video(src, "-o", out, "--frames-dir", work, *FAST, "--temporal-weight", 5, "--force"))
    assert json.loads((work / "settings.json").read_text())["video_options"]["temporal_weight"] == 5


def nst_video_exe() -> Path:
    return Path(sys.executable).parent / "nst-video"


def test_ctrl_c_keeps_finished_frames_and_a_rerun_equals_an_uninterrupted_run(
    tmp_path, synthetic_image, model_dir, style, nst_video, ok, pixels, interrupt_when
):
    src = frames_folder(tmp_path / "in", frames(synthetic_image, 6))
    args = ["--model", model_dir, "-s", style, *FAST]
    ok(nst_video(src, "-o", tmp_path / "whole", *FAST))

    work = tmp_path / "work"
    cmd = [str(nst_video_exe()), str(src), "-o", str(tmp_path / "resumed"), "--frames-dir", str(work), *map(str, args)]
    code, stderr = interrupt_when(cmd, (work / "frame_000002.png").exists)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert code == 130 and len(lines) == 1, stderr
    assert lines[0].startswith("nst-video: interrupted") and str(work) in lines[0]
    kept = sorted(p.name for p in work.glob("frame_*.png"))
    assert 2 <= len(kept) < 6 and not (tmp_path / "resumed").exists()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    whole = sorted((tmp_path / "whole").iterdir())
    resumed = sorted((tmp_path / "resumed").iterdir())
    assert [p.name for p in whole] == [p.name for p in resumed] and len(whole) == 6
    for a, b in zip(whole, resumed):
        assert np.array_equal(pixels(a), pixels(b)), a.name


def test_corrupt_frame_midway_stops_with_finished_frames_kept(tmp_path, synthetic_image, nst_video, error_line):
    src = frames_folder(tmp_path / "in", frames(synthetic_image, 3))
    data = (src / "in2.png").read_bytes()
    (src / "in2.png").write_bytes(data[: len(data) // 2])
    work = tmp_path / "work"
    line = error_line(nst_video(src, "-o", tmp_path / "o.mp4", "--frames-dir", work, *FAST), 1, "nst-video")
    assert "frame 1" in line and "in2.png" in line and "the 1 finished frame is kept" in line
    assert sorted(p.name for p in work.glob("frame_*.png")) == ["frame_000001.png"]
    assert not (tmp_path / "o.mp4").exists()


def test_bad_inputs_are_one_line(tmp_path, nst_video, error_line, synthetic_image):
    text = tmp_path / "x.mp4"
    text.write_text("not a video\n")
    assert "not a video" in error_line(nst_video(text, "-o", tmp_path / "o.mp4", *FAST), 1, "nst-video")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no image" in error_line(nst_video(empty, "-o", tmp_path / "o.mp4", *FAST), 1, "nst-video")
    src = frames_folder(tmp_path / "in", frames(synthetic_image, 2))
    line = error_line(nst_video(src, "-o", tmp_path / "o.avi", *FAST), 2, "nst-video")
    assert "unsupported output extension '.avi'" in line
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    line = error_line(nst_video(src, "-o", blocker / "o.mp4", *FAST), 1, "nst-video")
    assert "cannot write" in line
    assert "--frame-iterations" in error_line(
        nst_video(src, "-o", tmp_path / "o.mp4", "--frame-iterations", 0), 2, "nst-video"
    )
    assert "--init" in error_line(nst_video(src, "-o", tmp_path / "o.mp4", "--init", src / "in1.png"), 2, "nst-video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "in", "x.mp4"]


def test_without_the_extra_one_line_names_it(tmp_path):
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'av': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from nst.cli.video_cmd import main\n"
        "sys.argv = ['nst-video', 'in.mp4', '-s', 'style.png', '-o', 'o.mp4']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "nst-video: error: PyAV (av) is not installed; videos need the video extra: pip install 'nst[video]'"
    ], r.stderr
