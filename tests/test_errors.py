"""Bad input and failures (issue 6): every failure of nst-run / nst-export is one `PROG: error: ...` line on stderr,
exit 1 (2 for a bad command line, 130 for Ctrl-C), no traceback, no partial output, an existing OUT left alone; odd but
valid images work. Tiny images and a few iterations: the whole file runs in well under a minute."""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst.cli.run_cmd import app, frame_path
from nst.engine import ImageError, NonFiniteError, load_image, load_model, read_manifest, stylize
from nst.engine.images import fit_long_side
from nst.engine.memory import estimate_bytes
from conftest import ok, pixels

runner = CliRunner()
SIZE = 48
NST_RUN = Path(sys.executable).parent / "nst-run"


# --- helpers ---------------------------------------------------------------------------------------------------------

def invoke(*args, model=None):
    base = ["--model", str(model)] if model is not None else []
    return runner.invoke(app, [*base, *map(str, args)])


def nst_run(model_dir, *args):
    return invoke("--size", SIZE, "-q", *args, model=model_dir)


def error_line(result, code: int, prog: str = "nst-run") -> str:
    """The run failed with `code`, printed exactly one line `prog: error: ...` on stderr and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]


def noise_image(h=64, w=64, seed=0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG header claiming width x height, with (almost) no pixel data: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def model_copy(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's model to damage (never the shared fixture)."""
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def edit_manifest(model: Path, edit) -> None:
    path = model / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))


def tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


@pytest.fixture
def content(images_dir):
    return images_dir / "content.png"


@pytest.fixture
def style(images_dir):
    return images_dir / "style1.png"


# --- input images ----------------------------------------------------------------------------------------------------

def test_missing_image(model_dir, style, tmp_path):
    line = error_line(nst_run(model_dir, tmp_path / "nope.png", style, "-o", tmp_path / "o.png"), 1)
    assert "nope.png" in line and "does not exist" in line
    assert not (tmp_path / "o.png").exists()


def test_image_is_a_directory(model_dir, content, tmp_path):
    line = error_line(nst_run(model_dir, content, tmp_path, "-o", tmp_path / "o.png"), 1)
    assert "directory" in line


def test_not_an_image(model_dir, style, tmp_path):
    (tmp_path / "notes.png").write_text("this is text, not pixels\n")
    line = error_line(nst_run(model_dir, tmp_path / "notes.png", style, "-o", tmp_path / "o.png"), 1)
    assert "notes.png" in line and "not an image" in line


def test_empty_file(model_dir, style, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    line = error_line(nst_run(model_dir, (tmp_path / "empty.jpg"), style, "-o", tmp_path / "o.png"), 1)
    assert "empty" in line


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(model_dir, content, tmp_path, fmt):
    full = tmp_path / f"full.{fmt.lower()}"
    noise_image(96, 96).save(full, format=fmt)
    half = tmp_path / f"half.{fmt.lower()}"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    line = error_line(nst_run(model_dir, content, half, "-o", tmp_path / "o.png"), 1)
    assert half.name in line and "truncated or corrupt" in line
    with pytest.raises(ImageError):
        load_image(half)


def test_decompression_bomb_is_refused(model_dir, content, tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)  # 10^10 pixels claimed in a 100-byte file
    line = error_line(nst_run(model_dir, content, bomb, "-o", tmp_path / "o.png"), 1)
    assert "bomb.png" in line and "--max-pixels" in line
    # the limit is the option's: the 60x80 content is refused below 4800 pixels and accepted at it
    line = error_line(nst_run(model_dir, content, content, "--max-pixels", 4799, "-o", tmp_path / "o.png"), 1)
    assert "4799" in line and "--max-pixels" in line
    assert load_image(content, max_pixels=4800).shape == (60, 80, 3)


def test_working_size_too_small_for_deepest_layer(model_dir, content, style, tmp_path):
    r = invoke(content, style, "--size", 8, "-q", "-o", tmp_path / "o.png", model=model_dir)
    line = error_line(r, 1)
    assert "relu5_1" in line and "too small" in line
    n = int(re.search(r"--size (\d+)", line).group(1))
    assert min(fit_long_side(60, 80, n)) >= 16 > min(fit_long_side(60, 80, n - 1))
    assert not (tmp_path / "o.png").exists()


def _odd_images(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    rgb = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    out = {}
    Image.fromarray(rgb).convert("L").save(out.setdefault("L", tmp_path / "gray.png"))
    Image.fromarray(rgb).convert("1").save(out.setdefault("1", tmp_path / "bilevel.png"))
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(
        out.setdefault("P", tmp_path / "palette.png"))
    p = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p.putpixel((0, 0), 0)
    p.info["transparency"] = 0  # palette index 0 is fully transparent
    p.save(out.setdefault("P+transparency", tmp_path / "palette_t.png"), transparency=0)
    rgba = np.dstack([rgb, np.full((20, 30), 255, np.uint8)])
    rgba[0, 0] = [255, 0, 0, 0]  # fully transparent red: must come out white
    rgba[0, 1] = [255, 0, 0, 255]  # opaque red stays red
    Image.fromarray(rgba, "RGBA").save(out.setdefault("RGBA", tmp_path / "rgba.png"))
    Image.fromarray(rgba, "RGBA").convert("LA").save(out.setdefault("LA", tmp_path / "la.png"))
    Image.fromarray(rgb).convert("CMYK").save(out.setdefault("CMYK-JPEG", tmp_path / "cmyk.jpg"))
    Image.fromarray(rgb).convert("CMYK").save(out.setdefault("CMYK-TIFF", tmp_path / "cmyk.tif"))
    sixteen = (np.linspace(0, 65535, 20 * 30).reshape(20, 30)).astype(np.uint16)
    Image.fromarray(sixteen).save(out.setdefault("I;16", tmp_path / "sixteen.png"))
    return out


def test_odd_but_valid_images_load(tmp_path):
    files = _odd_images(tmp_path)
    with Image.open(files["I;16"]) as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    for kind, path in files.items():
        a = load_image(path)
        assert a.shape == (20, 30, 3) and a.dtype == np.float32, kind
        assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1, kind
    rgba = load_image(files["RGBA"])
    assert np.allclose(rgba[0, 0], 1.0)  # transparent -> white
    assert np.allclose(rgba[0, 1], [1.0, 0.0, 0.0])  # opaque red untouched
    assert np.allclose(load_image(files["P+transparency"])[0, 0], 1.0)
    assert np.allclose(load_image(files["LA"])[0, 0], 1.0)
    gray = load_image(files["L"])
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    sixteen = load_image(files["I;16"])
    assert sixteen[0, 0, 0] == 0.0 and sixteen[-1, -1, 0] == 1.0  # full 16-bit range -> [0, 1]
    assert abs(float(sixteen[10, 15, 0]) - (10 * 30 + 15) / 599) < 2 / 255


def test_exif_rotated_image_loads_in_display_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    noise_image(20, 30).save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (30, 20, 3)


def test_odd_images_run_end_to_end(model_dir, tmp_path):
    files = _odd_images(tmp_path)
    big16 = (np.linspace(0, 65535, 60 * 80).reshape(60, 80)).astype(np.uint16)
    Image.fromarray(big16).save(tmp_path / "content16.png")
    out = tmp_path / "o.png"
    ok(nst_run(model_dir, tmp_path / "content16.png", files["P+transparency"], files["CMYK-JPEG"],
               "--style-scale", 2, "--iterations", 1, "-o", out))
    assert pixels(out).shape == (36, SIZE, 3)


# --- the output path -------------------------------------------------------------------------------------------------

def test_unsupported_output_extension(model_dir, content, style, tmp_path):
    line = error_line(nst_run(model_dir, content, style, "-o", tmp_path / "out.gif"), 2)
    assert ".gif" in line and ".png" in line and ".webp" in line
    assert not (tmp_path / "out.gif").exists()


def test_output_under_a_regular_file(model_dir, content, style, tmp_path):
    (tmp_path / "somefile").write_text("x")
    line = error_line(nst_run(model_dir, content, style, "-o", tmp_path / "somefile" / "out.png"), 1)
    assert "cannot write" in line and "somefile" in line
    line = error_line(nst_run(model_dir, content, style, "-o", tmp_path / "o.png",
                              "--log-json", tmp_path / "somefile" / "log.json"), 1)
    assert "cannot write" in line


def test_output_in_proc(model_dir, content, style):
    line = error_line(nst_run(model_dir, content, style, "-o", "/proc/nst-test/out.png"), 1)
    assert "cannot write" in line


def test_output_in_read_only_directory(model_dir, content, style, tmp_path, monkeypatch):
    """A directory we may not write to. chmod does not stop root (tests may run as root), so the permission error is
    raised where the CLI first tries to create a file there."""
    import nst.cli.outputs as run_cmd

    ro = tmp_path / "ro"
    ro.mkdir()
    real_mkstemp = run_cmd.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == ro:
            raise PermissionError(13, "Permission denied", str(ro))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(run_cmd.tempfile, "mkstemp", mkstemp)
    line = error_line(nst_run(model_dir, content, style, "-o", ro / "out.png"), 1)
    assert "cannot write" in line and "ro" in line and "Permission denied" in line
    assert list(ro.iterdir()) == []


def test_missing_parent_directories_are_created(model_dir, content, style, tmp_path):
    out = tmp_path / "a" / "b" / "out.png"
    ok(nst_run(model_dir, content, style, "-o", out, "--iterations", 1))
    assert pixels(out).shape == (36, SIZE, 3)
    help_text = " ".join(runner.invoke(app, ["--help"]).stdout.split())
    assert "missing parent directories are created" in help_text


def test_existing_output_untouched_when_the_run_fails(model_dir, content, style, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    error_line(nst_run(model_dir, content, tmp_path / "missing-style.png", "-o", out), 1)
    error_line(nst_run(model_dir, content, style, "--style-weight", 1e300, "-o", out), 1)
    error_line(invoke(content, style, "-o", out, model=tmp_path / "no-model"), 1)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


# --- options ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, code, needles", [
    (["--iterations", "0"], 2, ["--iterations", ">= 1"]),
    (["--iterations", "-3"], 2, ["--iterations"]),
    (["--size", "0"], 2, ["--size", ">= 1"]),
    (["--size", "-5"], 2, ["--size"]),
    (["--size", "big"], 2, ["--size"]),
    (["--style-weight", "nan"], 2, ["--style-weight", "finite"]),
    (["--content-weight", "-1"], 2, ["--content-weight", ">= 0"]),
    (["--tv-weight", "inf"], 2, ["--tv-weight"]),
    (["--style-blend", "0.7"], 2, ["--style-blend", "1 weights for 2 style"]),
    (["--style-blend", "0.7,0.2,0.1"], 2, ["--style-blend"]),
    (["--style-blend", "a,b"], 2, ["--style-blend"]),
    (["--style-layers", "relu5_4"], 1, ["relu5_4", "--extra-layers"]),
    (["--content-layer", "relu3_2"], 1, ["relu3_2", "relu4_2"]),
    (["--init", "nosie"], 2, ["--init", "nosie"]),
    (["--init", "mix:2"], 2, ["mix"]),
    (["--device", "tpu"], 2, ["--device", "cpu"]),
    (["--no-such-option"], 2, ["--no-such-option"]),
])
def test_bad_options(model_dir, images_dir, tmp_path, args, code, needles):
    out = tmp_path / "o.png"
    r = nst_run(model_dir, images_dir / "content.png", images_dir / "style1.png", images_dir / "style2.jpg",
                "-o", out, *args)
    line = error_line(r, code)
    for needle in needles:
        assert needle in line, (needle, line)
    assert not out.exists()


def test_only_a_content_image(model_dir, content, tmp_path):
    assert "STYLE" in error_line(nst_run(model_dir, content, "-o", tmp_path / "o.png"), 2)


def test_cuda_when_there_is_none(model_dir, content, style, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime offers CUDA")
    line = error_line(nst_run(model_dir, content, style, "--device", "cuda", "-o", tmp_path / "o.png"), 1)
    assert "CUDA" in line and "--device cpu" in line


# --- the model directory ---------------------------------------------------------------------------------------------

def test_model_dir_missing(content, style, tmp_path):
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=tmp_path / "nowhere"), 1)
    assert "does not exist" in line and "nst-export" in line


def test_model_dir_without_manifest(content, style, tmp_path):
    (tmp_path / "m").mkdir()
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=tmp_path / "m"), 1)
    assert "manifest.json" in line


def test_manifest_not_json(content, style, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text("{ this is not json")
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=tmp_path / "m"), 1)
    assert "not valid JSON" in line and "re-export" in line


def test_manifest_from_newer_format(model_dir, content, style, tmp_path):
    model = model_copy(model_dir, tmp_path)
    edit_manifest(model, lambda m: m.update(format_version=m["format_version"] + 1))
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=model), 1)
    assert "format version" in line and "upgrade nst" in line


def test_graph_file_sha256_mismatch(model_dir, content, style, tmp_path):
    model = model_copy(model_dir, tmp_path)
    with open(model / "features.onnx", "ab") as f:
        f.write(b"\0")
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=model), 1)
    assert "features.onnx" in line and "sha256" in line


def _truncate(model: Path, key: str) -> Path:
    """Cut a graph file in half and record the new sha256, so the truncation itself must be detected."""
    def edit(m):
        path = model / m["graphs"][key]["file"]
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        m["graphs"][key]["sha256"] = hashlib.sha256(data[: len(data) // 2]).hexdigest()

    edit_manifest(model, edit)
    return model


def test_truncated_graph_file(model_dir, content, style, tmp_path):
    model = _truncate(model_copy(model_dir, tmp_path), "features")
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=model), 1)
    assert "features.onnx" in line and "re-export" in line


def test_truncated_weights_one_line_on_the_real_stderr(model_dir, content, style, tmp_path):
    """onnxruntime logs load errors to file descriptor 2 itself: only a subprocess sees that."""
    model = _truncate(model_copy(model_dir, tmp_path), "weights")
    p = subprocess.run([str(NST_RUN), str(content), str(style), "--model", str(model), "-o", str(tmp_path / "o.png")],
                       capture_output=True, text=True, timeout=120)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert lines[0].startswith("nst-run: error: ") and "re-export" in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_model_without_the_requested_layer(model_dir, content, style, tmp_path):
    model = model_copy(model_dir, tmp_path)
    edit_manifest(model, lambda m: m.update(taps=[t for t in m["taps"] if t != "relu3_1"]))
    line = error_line(invoke(content, style, "-q", "--size", SIZE, "-o", tmp_path / "o.png", model=model), 1)
    assert "relu3_1" in line and "re-export" in line


# --- during a run ----------------------------------------------------------------------------------------------------

def test_ctrl_c_writes_best_image_and_log(model_dir, content, style, tmp_path):
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    proc = subprocess.Popen([str(NST_RUN), str(content), str(style), "--model", str(model_dir), "--size", "64",
                             "--iterations", "1000", "--save-every", "1", "-o", str(out), "--log-json", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # A shell running us in the background (as CI may) starts children with SIGINT ignored,
                            # and Python then installs no KeyboardInterrupt handler: give the child the default back.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        while not frame_path(out, 1).exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no first frame"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and str(out) in lines[0], stderr
    with Image.open(out) as im:
        im.verify()
    assert pixels(out).shape == (48, 64, 3)
    data = json.loads(log.read_text())
    assert data["interrupted"] is True and 1 <= len(data["history"]) < 1000
    assert tmp_files(tmp_path) == []


class _Flaky:
    """Wraps the Objective class: from evaluation `after` + 1 on, the loss or the gradient is NaN."""

    def __init__(self, real, after: int, what: str):
        self.real, self.after, self.what = real, after, what

    def __call__(self, *args, **kwargs):
        objective, flaky = self.real(*args, **kwargs), self
        calls = [0]

        def call(image):
            f, g, terms = objective(image)
            calls[0] += 1
            if calls[0] > flaky.after:
                if flaky.what == "loss":
                    f = math.nan
                else:
                    g = g.copy()
                    g.flat[0] = np.inf
            return f, g, terms

        return call


@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_nan_stops_with_last_finite_image_api(model_dir, monkeypatch, what):
    core = importlib.import_module("nst.engine.stylize")
    from conftest import synthetic_image

    monkeypatch.setattr(core, "Objective", _Flaky(core.Objective, 12, what))
    model = load_model(model_dir, "cpu")
    with pytest.raises(NonFiniteError) as info:
        stylize(model, synthetic_image(32, 40), [synthetic_image(32, 32, 1)], size=40, iterations=50)
    e = info.value
    assert e.iteration >= 2 and f"iteration {e.iteration}" in str(e) and what in str(e)
    assert len(e.history) == e.iteration - 1
    assert e.image is not None and e.image.shape == (32, 40, 3) and np.isfinite(e.image).all()


def test_nan_in_cli_keeps_last_finite_image(model_dir, content, style, tmp_path, monkeypatch):
    core = importlib.import_module("nst.engine.stylize")

    monkeypatch.setattr(core, "Objective", _Flaky(core.Objective, 12, "gradient"))
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    out.write_bytes(b"old")
    line = error_line(nst_run(model_dir, content, style, "--iterations", 50, "-o", out, "--log-json", log), 1)
    n = int(re.search(r"iteration (\d+)", line).group(1))
    assert n >= 2 and "NaN/Inf" in line and str(out) in line
    img = pixels(out)  # replaced by the best finite image: a valid image, no NaN possible in 8-bit
    assert img.shape == (36, SIZE, 3) and img.std() > 0
    data = json.loads(log.read_text())
    assert len(data["history"]) == n - 1 and "iteration" in data["error"]
    assert tmp_files(tmp_path) == []


def test_overflowing_weight_in_cli(model_dir, content, style, tmp_path):
    out = tmp_path / "out.png"
    line = error_line(nst_run(model_dir, content, style, "--style-weight", 1e300, "-o", out), 1)
    assert "iteration 1" in line and "NaN/Inf" in line and "nothing was written" in line
    assert not out.exists()


# --- memory ----------------------------------------------------------------------------------------------------------

def test_memory_preflight_names_a_size_that_fits(model_dir, content, style, tmp_path, monkeypatch):
    import nst.engine.memory as memory

    m = read_manifest(model_dir)
    weights = (model_dir / m.weights.file).stat().st_size
    budget = estimate_bytes(m, *fit_long_side(60, 80, 300), 20, weights)
    monkeypatch.setattr(memory, "available_bytes", lambda: budget)
    line = error_line(invoke(content, style, "--size", 4000, "-q", "-o", tmp_path / "o.png", model=model_dir), 1)
    assert "GiB" in line
    n = int(re.search(r"--size (\d+)", line).group(1))
    assert 16 <= n and estimate_bytes(m, *fit_long_side(60, 80, n), 20, weights) <= budget
    assert n >= 300 - 16  # and not needlessly small
    assert not (tmp_path / "o.png").exists()

    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000_000)
    line = error_line(invoke(content, style, "--size", 64, "-q", "-o", tmp_path / "o.png", model=model_dir), 1)
    assert "free some memory" in line


def test_low_memory_fits_what_the_default_does_not(model_dir, content, style, tmp_path, monkeypatch):
    """--low-memory (onnxruntime's arena off) has a smaller estimate; the refusal offers it when it would fit."""
    import nst.engine.memory as memory

    m = read_manifest(model_dir)
    weights = (model_dir / m.weights.file).stat().st_size
    hw = fit_long_side(60, 80, 2000)
    budget = (estimate_bytes(m, *hw, 20, weights) + estimate_bytes(m, *hw, 20, weights, low_memory=True)) // 2
    monkeypatch.setattr(memory, "available_bytes", lambda: budget)
    line = error_line(invoke(content, style, "--size", 2000, "-q", "-o", tmp_path / "o.png", model=model_dir), 1)
    assert "--low-memory" in line
    r = invoke(content, style, "--size", 64, "--iterations", 3, "--low-memory", "-q", "-o", tmp_path / "o.png",
               "--log-json", tmp_path / "o.json", model=model_dir)
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o.json").read_text())["options"]["low_memory"] is True


# --- nst-export ------------------------------------------------------------------------------------------------------

def test_export_keeps_an_existing_directory(tmp_path):
    pytest.importorskip("torch")
    from nst.cli.export_cmd import app as export_app

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    line = error_line(runner.invoke(export_app, ["--out", str(tmp_path / "m"), "--weights", "random"]), 1,
                      "nst-export")
    assert "--force" in line
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["keep.txt"]


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import nst.export.onnx_graphs as exporter
    from nst.cli.export_cmd import app as export_app

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "build_graphs", interrupted)
    r = runner.invoke(export_app, ["--out", str(tmp_path / "models" / "m"), "--weights", "random"])
    assert "interrupted" in error_line(r, 130, "nst-export")
    assert list((tmp_path / "models").iterdir()) == []  # no model directory, no temporary directory


# --- continuing a run ------------------------------------------------------------------------------------------------

def test_a_saved_frame_continues_the_run(model_dir, content, style, tmp_path):
    first, log1, log2 = tmp_path / "first.png", tmp_path / "first.json", tmp_path / "second.json"
    ok(nst_run(model_dir, content, style, "--iterations", 10, "--save-every", 5, "-o", first, "--log-json", log1))
    frame = frame_path(first, 5)
    assert frame.is_file()
    ok(nst_run(model_dir, content, style, "--iterations", 3, "--init", frame, "-o", tmp_path / "second.png",
               "--log-json", log2))
    fresh = json.loads(log1.read_text())["history"]  # same settings from the content: a fresh run's first loss
    continued = json.loads(log2.read_text())["history"]
    assert continued[0]["loss"] < fresh[0]["loss"]
    assert continued[0]["loss"] < fresh[4]["loss"] * 1.05  # picks up about where frame 5 left off
