"""nst-inspect's command line and nst-run --report: outputs, one-line errors and exit codes as nst-run's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from nst.cli.inspect_cmd import app

PROG = "nst-inspect"


@pytest.fixture(scope="session")
def inspect(runner):
    def inspect(*args):
        result = runner.invoke(app, [*map(str, args)])
        assert "Traceback" not in result.output
        return result

    return inspect


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory, synthetic_image):
    """Five small images and two files that are not images."""
    d = tmp_path_factory.mktemp("photos")
    for i in range(5):
        Image.fromarray((synthetic_image(36, 48, i) * 255).astype(np.uint8)).save(d / f"p{i}.png")
    (d / "readme.txt").write_text("not an image")
    (d / "empty.jpg").write_bytes(b"")
    return d


def units(inspect, model_dir, *args):
    return inspect("units", "--model", model_dir, "--size", 48, "-q", *args)


def test_help_in_the_issues_vocabulary(inspect):
    r = inspect("--help")
    assert r.exit_code == 0 and all(c in r.stdout for c in ("units", "reconstruct", "sweep"))
    for command, words in {
        "units": ["--layer", "--units", "--unit-ids", "--images", "--gradient", "receptive field", "Exit codes"],
        "reconstruct": ["white noise", "--content-layers", "--style-layers", "--iterations"],
        "sweep": ["--style-weights", "--content-weights", "alpha", "beta", "--size"],
    }.items():
        r = inspect(command, "--help")
        assert r.exit_code == 0
        for word in words:
            assert word in r.stdout, (command, word)


def test_units_writes_grid_and_json(inspect, model_dir, photo_dir, tmp_path, ok):
    out = tmp_path / "grid.png"
    r = inspect(
        "units",
        "--model",
        model_dir,
        "--size",
        48,
        "--layer",
        "relu2_1",
        "--units",
        2,
        "--images",
        photo_dir,
        "--no-default-images",
        "--gradient",
        "-o",
        out,
    )
    ok(r)
    assert "2 non-image files skipped" in r.stdout
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["layer"] == "relu2_1" and data["receptive_field"] == {"size": 10, "stride": 2, "offset": -4}
    assert data["variants_searched"] == 20  # 5 images x 2 scales x (as is, mirrored)
    assert len(data["units"]) == 2
    for patches in data["units"].values():
        assert len(patches) == 9
        acts = [p["activation"] for p in patches]
        assert acts == sorted(acts, reverse=True)
        for p in patches:
            assert set(p) >= {"image", "variant", "position", "activation", "box", "source_box"}
            top, left, bottom, right = p["box"]
            assert bottom - top == right - left == 10
        counts = {}
        for p in patches:
            counts[p["image"]] = counts.get(p["image"], 0) + 1
        assert max(counts.values()) <= 2
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 9 * 80 and im.size[1] > 2 * 80


def test_units_by_id_with_a_json_path(inspect, model_dir, photo_dir, tmp_path, ok):
    out, js = tmp_path / "g.png", tmp_path / "sub" / "g.json"
    ok(
        units(
            inspect,
            model_dir,
            "--layer",
            "relu1_1",
            "--unit-ids",
            "3,17",
            "--images",
            photo_dir,
            "--no-default-images",
            "-o",
            out,
            "--json",
            js,
            "--tile",
            16,
        )
    )
    assert list(json.loads(js.read_text())["units"]) == ["3", "17"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--layer", "relu9_1"], 1, "unknown layer 'relu9_1'"),
        (["--layer", "relu3_2"], 1, "--extra-layers relu3_2"),
        (["--layer", "relu1_1", "--unit-ids", "64"], 2, "0-63"),
        (["--layer", "relu1_1", "--unit-ids", "x"], 2, "--unit-ids takes whole numbers"),
        (["--layer", "relu1_1", "--no-default-images"], 1, "no images to search"),
        (["--layer", "relu1_1", "-o", "grid.txt"], 2, "unsupported output extension"),
        (["--layer", "relu1_1", "--units", "0"], 2, "--units"),
        (["--layers", "relu1_1"], 2, "No such option"),
    ],
)
def test_units_bad_input_is_one_line(inspect, model_dir, error_line, args, code, words):
    line = error_line(units(inspect, model_dir, *args), code, PROG)
    assert words in line


def test_units_folder_errors(inspect, model_dir, tmp_path, error_line):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has no readable images" in error_line(
        units(inspect, model_dir, "--layer", "relu1_1", "--images", empty), 1, PROG
    )
    (empty / "a.txt").write_text("x")
    assert "1 non-image files skipped" in error_line(
        units(inspect, model_dir, "--layer", "relu1_1", "--images", empty), 1, PROG
    )
    assert "is not a folder" in error_line(
        units(inspect, model_dir, "--layer", "relu1_1", "--images", tmp_path / "missing"), 1, PROG
    )


def test_unwritable_output_and_missing_model(inspect, model_dir, tmp_path, error_line, content, style):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    line = error_line(units(inspect, model_dir, "--layer", "relu1_1", "-o", blocker / "grid.png"), 1, PROG)
    assert "cannot write to" in line
    line = error_line(
        inspect("reconstruct", content, style, "--model", tmp_path / "nope", "-o", tmp_path / "r.png"), 1, PROG
    )
    assert "does not exist" in line
    assert not (tmp_path / "r.png").exists()
    error_line(inspect("nosuch"), 2, PROG)


def test_reconstruct_writes_a_strip(inspect, model_dir, content, style, tmp_path, ok):
    out = tmp_path / "strip.png"
    r = ok(
        inspect(
            "reconstruct",
            content,
            style,
            "--model",
            model_dir,
            "--size",
            32,
            "--iterations",
            2,
            "--content-layers",
            "relu1_1,relu2_1",
            "--style-layers",
            "relu1_1",
            "-o",
            out,
        )
    )
    assert "content relu1_1: J" in r.stdout and "rel L2 to the content" in r.stdout and "style relu1_1" in r.stdout
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 3 * 160


def test_reconstruct_bad_layer_and_size(inspect, model_dir, content, style, tmp_path, error_line):
    args = ("reconstruct", content, style, "--model", model_dir, "-o", tmp_path / "r.png", "-q")
    assert "--extra-layers conv1_1" in error_line(inspect(*args, "--content-layers", "conv1_1"), 1, PROG)
    assert "--size" in error_line(inspect(*args, "--size", 16), 1, PROG)  # relu5_1 needs a 16 px short side
    assert not (tmp_path / "r.png").exists()


def test_sweep_writes_a_grid(inspect, model_dir, content, style, tmp_path, ok):
    out = tmp_path / "sweep.png"
    r = ok(
        inspect(
            "sweep",
            content,
            style,
            "--model",
            model_dir,
            "--size",
            32,
            "--iterations",
            1,
            "--style-weights",
            "1e-3,1e-1",
            "--content-weights",
            "1 10",
            "-o",
            out,
        )
    )
    summary = [line for line in r.stdout.splitlines() if line.startswith("alpha ")]
    assert len(summary) == 4 and summary[-1].startswith("alpha 10, beta 0.1: J ")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 3 * 200


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--style-weights", "abc"], "--style-weights takes numbers"),
        (["--style-weights", "-1"], "finite and >= 0"),
        (["--init", "x.png"], "--init"),
        (["--device", "tpu"], "unknown --device 'tpu'; choose one of: auto, cpu, cuda"),
    ],
)
def test_sweep_bad_input(inspect, model_dir, content, style, tmp_path, error_line, args, words):
    r = inspect("sweep", content, style, "--model", model_dir, "-o", tmp_path / "s.png", *args)
    assert words in error_line(r, 2, PROG)


def test_sweep_needs_a_style(inspect, model_dir, content, tmp_path, error_line):
    assert "at least one style" in error_line(inspect("sweep", content, "--model", model_dir), 2, PROG)


def test_nst_run_report(nst_run, model_dir, content, style, tmp_path, ok, error_line, monkeypatch):
    out, report = tmp_path / "out.png", tmp_path / "reports" / "report.png"
    ok(nst_run(model_dir, content, style, "-o", out, "--iterations", 3, "--report", report))
    with Image.open(report) as im:
        assert im.format == "PNG" and im.size[0] >= 640 and im.size[1] > 300
    assert "--report" in error_line(nst_run(model_dir, content, style, "-o", out, "--report", tmp_path / "r.txt"), 2)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write to" in error_line(
        nst_run(model_dir, content, style, "-o", out, "--report", blocker / "r.png"), 1
    )

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nst.views.grid.save_picture", no_space)
    line = error_line(
        nst_run(
            model_dir, content, style, "-o", tmp_path / "o2.png", "--iterations", 2, "--report", tmp_path / "r2.png"
        ),
        1,
    )
    assert "cannot write" in line and "No space left" in line and (tmp_path / "o2.png").exists()


def test_sweep_default_betas_follow_the_models_beta(inspect, model_dir, content, style, tmp_path, ok):
    from nst.engine import read_manifest
    from nst.views.sweep import DEFAULT_STYLE_FACTORS

    beta = read_manifest(model_dir).style_weight
    r = ok(
        inspect(
            "sweep", content, style, "--model", model_dir, "--size", 32, "--iterations", 1, "-o", tmp_path / "s.png"
        )
    )
    summary = [line.split(":")[0] for line in r.stdout.splitlines() if line.startswith("alpha ")]
    assert summary == [f"alpha 1, beta {f * beta:g}" for f in DEFAULT_STYLE_FACTORS]
