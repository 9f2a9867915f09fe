"""During a run (issue 6): Ctrl-C (exit 130) and NaN/Inf keep the best finite image and the log, with no temporary
files left; an overflowing weight writes nothing; a saved frame continues a run where it left off."""

from __future__ import annotations

import importlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst.cli.run_cmd import frame_path
from nst.engine import NonFiniteError, load_model, stylize

SIZE = 48  # conftest's nst_run working long side: the 60x80 content becomes 36x48


def tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


def test_ctrl_c_writes_best_image_and_log(model_dir, content, style, tmp_path, pixels, interrupt_nst_run):
    out, log = tmp_path / "out.png", tmp_path / "log.json"
    code, stderr = interrupt_nst_run(
        [
            str(content),
            str(style),
            "--model",
            str(model_dir),
            "--size",
            "64",
            "--iterations",
            "1000",
            "--save-every",
            "1",
            "-o",
            str(out),
            "--log-json",
            str(log),
        ],
        frame_path(out, 1),
    )
    assert code == 130, stderr
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
            ev = objective(image)
            calls[0] += 1
            if calls[0] > flaky.after:
                if flaky.what == "loss":
                    ev.loss = math.nan
                else:
                    ev.grad = ev.grad.copy()
                    ev.grad.flat[0] = np.inf
            return ev

        return call


@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_nan_stops_with_last_finite_image_api(model_dir, monkeypatch, what, synthetic_image):
    core = importlib.import_module("nst.engine.stage")

    monkeypatch.setattr(core, "Objective", _Flaky(core.Objective, 12, what))
    model = load_model(model_dir, "cpu")
    with pytest.raises(NonFiniteError) as info:
        stylize(model, synthetic_image(32, 40), [synthetic_image(32, 32, 1)], size=40, iterations=50)
    e = info.value
    assert e.iteration >= 2 and f"iteration {e.iteration}" in str(e) and what in str(e)
    assert len(e.history) == e.iteration - 1
    assert e.image is not None and e.image.shape == (32, 40, 3) and np.isfinite(e.image).all()


def test_nan_in_cli_keeps_last_finite_image(
    model_dir, content, style, tmp_path, monkeypatch, nst_run, error_line, pixels
):
    core = importlib.import_module("nst.engine.stage")

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


def test_overflowing_weight_in_cli(model_dir, content, style, tmp_path, nst_run):
    """A weight far off the model's scale is warned about before the run; the overflow then fails in one line."""
    out = tmp_path / "out.png"
    r = nst_run(model_dir, content, style, "--style-weight", 1e300, "-o", out)
    assert r.exit_code == 1 and "Traceback" not in r.output
    warning, line = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert warning.startswith("nst-run: warning: ") and "--style-weight 2e+06" in warning
    assert line.startswith("nst-run: error: ") and "iteration 1" in line and "NaN/Inf" in line
    assert "nothing was written" in line
    assert not out.exists()


def test_a_saved_frame_continues_the_run(model_dir, content, style, tmp_path, nst_run, ok):
    first, log1, log2 = tmp_path / "first.png", tmp_path / "first.json", tmp_path / "second.json"
    ok(nst_run(model_dir, content, style, "--iterations", 10, "--save-every", 5, "-o", first, "--log-json", log1))
    frame = frame_path(first, 5)
    assert frame.is_file()
    ok(
        nst_run(
            model_dir,
            content,
            style,
            "--iterations",
            3,
            "--init",
            frame,
            "-o",
            tmp_path / "second.png",
            "--log-json",
            log2,
        )
    )
    fresh = json.loads(log1.read_text())["history"]  # same settings from the content: a fresh run's first loss
    continued = json.loads(log2.read_text())["history"]
    assert continued[0]["loss"] < fresh[0]["loss"]
    assert continued[0]["loss"] < fresh[4]["loss"] * 1.05  # picks up about where frame 5 left off
