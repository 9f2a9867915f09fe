"""Shared fixtures: small exported models (random and original weights), synthetic images and CLI helpers.

Helpers are fixtures (not imports from this file), so tests/ need not be on sys.path. Tests needing ../shared/images
skip with that reason when it is absent; everything else runs on a bare machine."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
SIZE = 48  # nst_run's working long side: the 60x80 content becomes 36x48, above relu5_1's 16 px


def pytest_collection_modifyitems(items):
    """The model fixtures are exported with torch, so a test using them needs the export extra like one importing it:
    mark it `torch` so that `-m "not torch"` selects what a runtime-only install can run."""
    for item in items:
        if {"model_dir", "random_model_dir"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.torch)


def _synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) float32: smooth gradients, a flat patch, a saturated patch and some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 5.0 + y / 7.0)], axis=-1)
    img += 0.15 * rng.standard_normal((h, w, 3)).astype(np.float32)
    img[: h // 4, : w // 4] = 0.5
    img[-h // 4 :, -w // 4 :] = 1.0
    return np.clip(img, 0, 1).astype(np.float32)


def _ok(result):
    """A CLI run that succeeded and printed nothing on stderr."""
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "", result.stderr
    return result


def _pixels(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _error_line(result, code: int, prog: str = "nst-run") -> str:
    """The run failed with `code`, printed exactly one line `prog: error: ...` on stderr and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]


@pytest.fixture(params=["cpu", "device1"])
def strict(request):
    """(array_api_strict, NumPy -> strict array, strict array -> NumPy). On its non-CPU "device1" every NumPy function
    given a strict array raises, as it would given a CuPy array: a NumPy call on the generic path fails there instead
    of hiding."""
    xps = pytest.importorskip("array_api_strict", reason="the array-API tests need array-api-strict (the test extra)")
    if request.param == "cpu":
        return xps, lambda a: xps.asarray(a)
    try:
        dev = xps.Device("device1")
    except Exception as e:  # older array_api_strict: one device only
        pytest.skip(f"array_api_strict {xps.__version__} has no second device: {e}")
    return xps, lambda a: xps.asarray(a, device=dev)


@dataclass
class _RangeRecorder:
    """A weightless pixel-space loss term that remembers (min, max) of every image the objective evaluates."""

    name: str = "recorder"
    weight: float = 0.0
    layers: tuple[str, ...] = ()
    seen: list = field(default_factory=list)

    def __call__(self, feats, image):
        from nst.engine.terms import TermValue

        self.seen.append((float(image.min()), float(image.max())))
        return TermValue(0.0, {})


@pytest.fixture(scope="session")
def range_recorder():
    """The class of a weightless loss term recording the range of every evaluated image (a fresh one per call)."""
    return _RangeRecorder


@pytest.fixture(scope="session")
def from_strict():
    """The function (array_api_strict module, strict array) -> NumPy array, from any device."""
    return lambda xps, a: np.asarray(a.to_device(xps.Device("CPU_DEVICE")))


# --- helper functions, as fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def synthetic_image():
    """The function (h, w, seed=0) -> (H, W, 3) float32 test image."""
    return _synthetic_image


@pytest.fixture(scope="session")
def pixels():
    """The function path -> the image file's RGB pixels as a uint8 array."""
    return _pixels


@pytest.fixture(scope="session")
def ok():
    """The function that checks a CliRunner result succeeded with an empty stderr, and returns it."""
    return _ok


@pytest.fixture(scope="session")
def error_line():
    """The function (result, code, prog="nst-run") that checks a failure is one error line, and returns that line."""
    return _error_line


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """../shared/images (tubingen.jpg, starry_night.jpg, ...), or a skip where this machine lacks it."""
    if not SHARED.is_dir():
        pytest.skip("../shared/images is not present on this machine")
    return SHARED


# --- the command lines -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def invoke(runner):
    """nst-run in-process: invoke(*args, model=None); `model` becomes --model."""
    from nst.cli.run_cmd import app

    def invoke(*args, model=None):
        base = ["--model", str(model)] if model is not None else []
        return runner.invoke(app, [*base, *map(str, args)])

    return invoke


@pytest.fixture(scope="session")
def nst_run(invoke):
    """nst-run on a model at the small working size SIZE, quiet: nst_run(model_dir, *args)."""

    def nst_run(model_dir, *args):
        return invoke("--size", SIZE, "-q", *args, model=model_dir)

    return nst_run


@pytest.fixture(scope="session")
def nst_run_exe() -> Path:
    """The installed nst-run script, for tests that need a real process (signals, onnxruntime's own stderr)."""
    return Path(sys.executable).parent / "nst-run"


def _interrupt_when(cmd: list, ready, timeout: float = 90) -> tuple[int, str]:
    """Run `cmd` in its own process, wait until ready() is true, then press Ctrl-C: (exit code, stderr)."""
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell running us in the background (as CI may) starts children with SIGINT ignored,
        # and Python then installs no KeyboardInterrupt handler: give the child the default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"not ready after {timeout} s: {cmd}"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr


@pytest.fixture(scope="session")
def interrupt_when():
    """The function (cmd, ready) -> (exit code, stderr): run cmd, wait until ready() is true, then press Ctrl-C."""
    return _interrupt_when


@pytest.fixture(scope="session")
def interrupt_nst_run(nst_run_exe):
    """interrupt_nst_run(args, frame) -> (exit code, stderr): run nst-run in its own process, wait for `frame` (a
    --save-every image) to appear, then press Ctrl-C."""
    return lambda args, frame: _interrupt_when([nst_run_exe, *args], frame.exists)


# --- models and image files ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The default export (original weights, default taps)."""
    from nst.export import export_model

    out = tmp_path_factory.mktemp("models") / "vgg19"
    export_model(out)
    return out


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory) -> Path:
    from nst.export import export_model

    out = tmp_path_factory.mktemp("models") / "vgg19-random"
    export_model(out, weights="random", seed=3)
    return out


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory) -> Path:
    """content.png and two styles as files, for CLI tests."""
    from PIL import Image

    d = tmp_path_factory.mktemp("images")
    Image.fromarray((_synthetic_image(60, 80, 0) * 255).astype(np.uint8)).save(d / "content.png")
    rng = np.random.default_rng(1)
    stripes = np.zeros((64, 64, 3), np.float32)
    stripes[:, ::8] = [0.9, 0.7, 0.1]
    stripes[::8, :] = [0.1, 0.2, 0.8]
    Image.fromarray((stripes * 255).astype(np.uint8)).save(d / "style1.png")
    Image.fromarray((rng.random((50, 70, 3)) * 255).astype(np.uint8)).save(d / "style2.jpg")
    return d


@pytest.fixture
def content(images_dir) -> Path:
    """The 60x80 content image file."""
    return images_dir / "content.png"


@pytest.fixture
def style(images_dir) -> Path:
    return images_dir / "style1.png"
