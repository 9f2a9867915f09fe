"""nst-run's input images (issue 6): a missing, unreadable, truncated or oversized image is one `nst-run: error: ...`
line, exit 1, and no output; odd but valid images (gray, palette, alpha, CMYK, 16-bit, EXIF-rotated) load and run."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst.engine import ImageError, load_image
from nst.engine.images import fit_long_side

SIZE = 48  # conftest's nst_run working long side: the 60x80 content becomes 36x48


def noise_image(h=64, w=64, seed=0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG header claiming width x height, with (almost) no pixel data: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    return path


def test_missing_image(model_dir, style, tmp_path, nst_run, error_line):
    line = error_line(nst_run(model_dir, tmp_path / "nope.png", style, "-o", tmp_path / "o.png"), 1)
    assert "nope.png" in line and "does not exist" in line
    assert not (tmp_path / "o.png").exists()


def test_image_is_a_directory(model_dir, content, tmp_path, nst_run, error_line):
    line = error_line(nst_run(model_dir, content, tmp_path, "-o", tmp_path / "o.png"), 1)
    assert "directory" in line


def test_not_an_image(model_dir, style, tmp_path, nst_run, error_line):
    (tmp_path / "notes.png").write_text("this is text, not pixels\n")
    line = error_line(nst_run(model_dir, tmp_path / "notes.png", style, "-o", tmp_path / "o.png"), 1)
    assert "notes.png" in line and "not an image" in line


def test_empty_file(model_dir, style, tmp_path, nst_run, error_line):
    (tmp_path / "empty.jpg").write_bytes(b"")
    line = error_line(nst_run(model_dir, (tmp_path / "empty.jpg"), style, "-o", tmp_path / "o.png"), 1)
    assert "empty" in line


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(model_dir, content, tmp_path, fmt, nst_run, error_line):
    full = tmp_path / f"full.{fmt.lower()}"
    noise_image(96, 96).save(full, format=fmt)
    half = tmp_path / f"half.{fmt.lower()}"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    line = error_line(nst_run(model_dir, content, half, "-o", tmp_path / "o.png"), 1)
    assert half.name in line and "truncated or corrupt" in line
    with pytest.raises(ImageError):
        load_image(half)


def test_decompression_bomb_is_refused(model_dir, content, tmp_path, nst_run, error_line):
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)  # 10^10 pixels claimed in a 100-byte file
    line = error_line(nst_run(model_dir, content, bomb, "-o", tmp_path / "o.png"), 1)
    assert "bomb.png" in line and "--max-pixels" in line
    # the limit is the option's: the 60x80 content is refused below 4800 pixels and accepted at it
    line = error_line(nst_run(model_dir, content, content, "--max-pixels", 4799, "-o", tmp_path / "o.png"), 1)
    assert "4799" in line and "--max-pixels" in line
    assert load_image(content, max_pixels=4800).shape == (60, 80, 3)


def test_working_size_too_small_for_deepest_layer(model_dir, content, style, tmp_path, invoke, error_line):
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
        out.setdefault("P", tmp_path / "palette.png")
    )
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


def test_odd_images_run_end_to_end(model_dir, tmp_path, nst_run, ok, pixels):
    files = _odd_images(tmp_path)
    big16 = (np.linspace(0, 65535, 60 * 80).reshape(60, 80)).astype(np.uint16)
    Image.fromarray(big16).save(tmp_path / "content16.png")
    out = tmp_path / "o.png"
    ok(
        nst_run(
            model_dir,
            tmp_path / "content16.png",
            files["P+transparency"],
            files["CMYK-JPEG"],
            "--style-scale",
            2,
            "--iterations",
            1,
            "-o",
            out,
        )
    )
    assert pixels(out).shape == (36, SIZE, 3)
