"""Shared fixtures: small exported models (random and original weights) and synthetic images.

Tests needing ../shared/images skip with that reason when it is absent; everything else runs on a bare machine."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/images is not present on this machine")


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) float32: smooth gradients, a flat patch, a saturated patch and some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 5.0 + y / 7.0)], axis=-1)
    img += 0.15 * rng.standard_normal((h, w, 3)).astype(np.float32)
    img[: h // 4, : w // 4] = 0.5
    img[-h // 4:, -w // 4:] = 1.0
    return np.clip(img, 0, 1).astype(np.float32)


def ok(result):
    """A CLI run that succeeded and printed nothing on stderr."""
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "", result.stderr
    return result


def pixels(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


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
    Image.fromarray((synthetic_image(60, 80, 0) * 255).astype(np.uint8)).save(d / "content.png")
    rng = np.random.default_rng(1)
    stripes = np.zeros((64, 64, 3), np.float32)
    stripes[:, ::8] = [0.9, 0.7, 0.1]
    stripes[::8, :] = [0.1, 0.2, 0.8]
    Image.fromarray((stripes * 255).astype(np.uint8)).save(d / "style1.png")
    Image.fromarray((rng.random((50, 70, 3)) * 255).astype(np.uint8)).save(d / "style2.jpg")
    return d
