"""nst-run's command line on a real (original-weights) model: tiny images, a few iterations each."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from nst.cli.run_cmd import app, frame_path

SIZE = 48  # conftest's nst_run working long side: the 60x80 content becomes 36x48, above relu5_1's 16 px


@pytest.fixture
def nst_run(nst_run):
    """conftest's nst_run, and never a traceback in the output, whatever the exit code."""

    def run(model_dir, *args):
        result = nst_run(model_dir, *args)
        assert "Traceback" not in result.output
        return result

    return run


def test_help(runner):
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for option in (
        "--out",
        "--size",
        "--iterations",
        "--style-blend",
        "--init",
        "--seed",
        "--save-every",
        "--log-json",
        "--max-pixels",
        "--device",
        "Exit codes",
    ):
        assert option in r.stdout, option


def test_run_writes_image_and_log(model_dir, images_dir, tmp_path, nst_run, ok):
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    ok(
        nst_run(
            model_dir,
            images_dir / "content.png",
            images_dir / "style1.png",
            "-o",
            out,
            "--iterations",
            4,
            "--log-json",
            log,
            "--tv-weight",
            1.0,
        )
    )
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.size == (SIZE, 36)  # (W, H): the content's long side is the working size
    data = json.loads(log.read_text())
    for key in ("history", "evaluations", "seconds", "setup_seconds", "provider", "size", "options", "model"):
        assert key in data, key
    assert data["size"] == [36, SIZE]
    assert data["provider"] == "CPUExecutionProvider" or "CUDA" in data["provider"]
    assert data["evaluations"] >= len(data["history"]) >= 1
    assert data["seconds"] > 0 and data["setup_seconds"] > 0
    assert data["options"]["iterations"] == 4 and data["options"]["size"] == SIZE
    assert data["model"]["arch"] == "vgg19"
    assert [h["iteration"] for h in data["history"]] == list(range(1, len(data["history"]) + 1))
    for h in data["history"]:
        assert set(h) == {"stage", "iteration", "loss", "terms"}
        assert set(h["terms"]) == {"content", "style", "tv"}  # the terms by the names the run gave them
        assert sum(h["terms"].values()) == pytest.approx(h["loss"], rel=1e-9)
        assert h["terms"]["tv"] > 0
    losses = [h["loss"] for h in data["history"]]
    assert losses[-1] < losses[0]


def test_save_every_writes_frames_beside_out(model_dir, images_dir, tmp_path, nst_run, ok, pixels):
    out = tmp_path / "out.png"
    ok(
        nst_run(
            model_dir,
            images_dir / "content.png",
            images_dir / "style1.png",
            "-o",
            out,
            "--iterations",
            4,
            "--save-every",
            2,
        )
    )
    assert frame_path(out, 2) == tmp_path / "out.iter0002.png"
    assert frame_path(out, 2).is_file() and out.is_file()
    assert pixels(frame_path(out, 2)).shape == (36, SIZE, 3)
    assert not frame_path(out, 4).exists()  # the last iteration is OUT itself
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.iter0002.png", "out.png"]


def test_two_styles_with_blend(model_dir, images_dir, tmp_path, nst_run, ok, pixels):
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    ok(
        nst_run(
            model_dir,
            images_dir / "content.png",
            images_dir / "style1.png",
            images_dir / "style2.jpg",
            "-o",
            out,
            "--iterations",
            2,
            "--style-blend",
            "0.7,0.3",
            "--log-json",
            log,
        )
    )
    options = json.loads(log.read_text())["options"]
    assert options["style_blend"] == [0.7, 0.3] and len(options["styles"]) == 2
    assert pixels(out).shape == (36, SIZE, 3)


@pytest.mark.parametrize("init", ["content", "noise", "mix:0.5", "image"])
def test_init_modes(model_dir, images_dir, tmp_path, init, nst_run, ok, pixels):
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    value = str(images_dir / "style2.jpg") if init == "image" else init
    ok(
        nst_run(
            model_dir,
            images_dir / "content.png",
            images_dir / "style1.png",
            "-o",
            out,
            "--iterations",
            2,
            "--init",
            value,
            "--log-json",
            log,
        )
    )
    assert pixels(out).shape == (36, SIZE, 3)
    assert json.loads(log.read_text())["options"]["init"] == value


def test_seed_makes_noise_init_reproducible(model_dir, images_dir, tmp_path, nst_run, ok, pixels):
    def run(name, seed):
        out = tmp_path / name
        ok(
            nst_run(
                model_dir,
                images_dir / "content.png",
                images_dir / "style1.png",
                "-o",
                out,
                "--iterations",
                2,
                "--init",
                "noise",
                "--seed",
                seed,
            )
        )
        return out

    a, b, c = run("a.png", 7), run("b.png", 7), run("c.png", 8)
    assert a.read_bytes() == b.read_bytes()
    assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(c))


def test_exif_orientation_is_honoured(model_dir, images_dir, tmp_path, nst_run, ok, pixels):
    src = Image.fromarray((np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8))  # 60 wide, 40 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    src.save(tmp_path / "rotated.jpg", exif=exif)
    out = tmp_path / "out.png"
    ok(nst_run(model_dir, tmp_path / "rotated.jpg", images_dir / "style1.png", "-o", out, "--iterations", 1))
    h, w, _ = pixels(out).shape
    assert (h, w) == (SIZE, 32)  # displayed 40x60 (W x H): portrait, so H and W are swapped relative to the file


@pytest.mark.parametrize("ext, fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".tif", "TIFF")])
def test_output_format_follows_extension(model_dir, images_dir, tmp_path, ext, fmt, nst_run, ok):
    out = tmp_path / f"out{ext}"
    ok(nst_run(model_dir, images_dir / "content.png", images_dir / "style1.png", "-o", out, "--iterations", 1))
    with Image.open(out) as im:
        assert im.format == fmt and im.size == (SIZE, 36) and im.mode == "RGB"


def test_defaults_on_the_shared_images(shared_images, model_dir, tmp_path, nst_run, ok, pixels):
    """The defaults on a real pair, small and short (128 px, two stages): every style layer is matched (the Gram
    distance to the style falls >= 10x from the photo's for relu1_1..relu4_1 and >= 3x for relu5_1, which has few
    positions at 128 px; the full-length 512 px runs reach >= 20x: README), the content term stays within 10x of the
    style term, and J falls by half after its first iteration."""
    import numpy as np

    from nst.engine import gram, load_image, load_model, resize
    from nst.engine.images import to_nchw

    log, out = tmp_path / "log.json", tmp_path / "o.png"
    ok(
        nst_run(
            model_dir,
            shared_images / "tubingen.jpg",
            shared_images / "starry_night.jpg",
            "-o",
            out,
            "--size",
            128,
            "--min-size",
            64,
            "--iterations",
            60,
            "--log-json",
            log,
        )
    )
    h = json.loads(log.read_text())["history"]
    assert h[-1]["loss"] < 0.5 * h[0]["loss"]
    assert 0.1 < h[-1]["terms"]["style"] / h[-1]["terms"]["content"] < 10
    model = load_model(model_dir, "cpu")
    result = pixels(out).astype(np.float32) / 255
    photo = resize(load_image(shared_images / "tubingen.jpg"), result.shape[:2])
    style = load_image(shared_images / "starry_night.jpg")
    style = resize(style, (round(style.shape[0] * 128 / style.shape[1]), 128))
    f = {k: model.features(to_nchw(a), keep_state=False) for k, a in (("photo", photo), ("out", result), ("s", style))}
    for layer in model.manifest.default_style_layers:
        gs = gram(f["s"][layer])
        reduction = np.sum((gram(f["photo"][layer]) - gs) ** 2) / np.sum((gram(f["out"][layer]) - gs) ** 2)
        assert reduction >= (3 if layer == "relu5_1" else 10), (layer, reduction)
