"""nst-inspect units, below the CLI: receptive fields from the layer list, the top-9 search on planted patterns,
crops with grey padding, the one-hot gradient through the gradient graph, the image set."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst.engine import ImageError, load_model
from nst.engine.manifest import LayerSpec
from nst.engine.receptive import ReceptiveField, receptive_field
from nst.views.image_set import ImageSet, Source, folder_images, load_image_set
from nst.views.units import GREY, choose_units, crop, patch_pixels, search, to_nchw, unit_gradient


def vgg(arch: str) -> list[LayerSpec]:
    from nst.export.arch import vgg_layers  # the exporter's table (no torch needed for it)

    return [LayerSpec(x.name, x.out_channels, x.scale) for x in vgg_layers(arch)]


# (size, stride, offset) derived by hand: a 3x3 conv (pad 1) adds 2 x jump to the size and moves unit 0's first pixel
# up by 1 x jump; a 2x2 pool (stride 2) adds 1 x jump and doubles the jump.
HAND = {
    "vgg19": {
        "relu1_1": (3, 1, -1),
        "relu1_2": (5, 1, -2),
        "pool1": (6, 2, -2),
        "relu2_1": (10, 2, -4),
        "relu3_1": (24, 4, -10),
        "relu4_1": (68, 8, -30),
        "relu4_2": (84, 8, -38),
        "relu5_1": (156, 16, -70),
        "relu5_4": (252, 16, -118),
        "pool5": (268, 32, -118),
    },
    "vgg16": {
        "relu1_1": (3, 1, -1),
        "relu2_1": (10, 2, -4),
        "relu3_1": (24, 4, -10),
        "relu3_3": (40, 4, -18),
        "relu4_1": (60, 8, -26),
        "relu5_1": (132, 16, -58),
        "relu5_3": (196, 16, -90),
        "pool5": (212, 32, -90),
    },
}


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_receptive_fields_match_hand_derived_values(arch):
    layers = vgg(arch)
    for name, expected in HAND[arch].items():
        f = receptive_field(layers, name)
        assert (f.size, f.stride, f.offset) == expected, name
        assert f.centre(3, 5) == (3 * f.stride + (f.stride - 1) / 2, 5 * f.stride + (f.stride - 1) / 2)  # centred
    with pytest.raises(KeyError):
        receptive_field(layers, "relu9_9")


def test_receptive_field_from_an_exported_manifest(model_dir):
    m = load_model(model_dir, "cpu").manifest
    assert receptive_field(m.layers, "relu5_1") == ReceptiveField(156, 16, -70)
    assert receptive_field(m.layers, "relu3_1").box(2, 3) == (-2, 2, 22, 26)


def test_choose_units():
    assert choose_units(64, 9, None, 0) == choose_units(64, 9, None, 0)
    assert len(set(choose_units(64, 9, None, 0))) == 9 and choose_units(64, 9, None, 0) != choose_units(64, 9, None, 1)
    assert choose_units(64, 9, [5, 3, 5], 0) == (5, 3)
    with pytest.raises(ValueError, match="0-63"):
        choose_units(64, 9, [64], 0)
    with pytest.raises(ValueError, match="1-64"):
        choose_units(64, 65, None, 0)


def one_set(images: list[np.ndarray]) -> ImageSet:
    """The images as they are: no scales, no mirror images."""
    return ImageSet([Source(Path(f"img{i}.png"), im) for i, im in enumerate(images)], mirror=False, scales=(1.0,))


def test_planted_patterns_found_at_their_positions_sorted(model_dir):
    """A relu1_1 unit is linear in its 3x3 field while active: grey + c x (its own gradient) raises it by c x |g|^2 /
    max|g|. Patterns with c within a factor 2 beat every partly overlapping position that NMS keeps (those see at most
    half of |g|^2), so the top 9 are exactly the planted positions in order of c, at most 2 per image."""
    model = load_model(model_dir, "cpu")
    grey = np.full((40, 40, 3), 0.5, np.float32)
    a0 = model.features(to_nchw(grey))["relu1_1"][0, :, 20, 20]
    unit = int(np.argmax(a0))
    onehot = np.zeros((1, 64, 40, 40), np.float32)
    onehot[0, unit, 20, 20] = 1
    g = model.vjp(to_nchw(grey), {"relu1_1": onehot})[0].transpose(1, 2, 0)
    assert np.count_nonzero(np.abs(g).sum(axis=2)) == 9 and np.abs(g[19:22, 19:22]).sum() > 0  # only the 3x3 field
    template = g[19:22, 19:22] / np.abs(g).max()
    # (image, row, col, c): image 0 holds three patterns, the others two; c falls from 0.45 to 0.26
    plan = [
        (0, 8, 8, 0.45),
        (0, 30, 12, 0.44),
        (0, 12, 30, 0.43),
        (1, 10, 25, 0.42),
        (1, 28, 9, 0.40),
        (2, 20, 20, 0.38),
        (2, 6, 33, 0.36),
        (3, 33, 33, 0.34),
        (3, 15, 6, 0.32),
        (4, 25, 16, 0.30),
        (4, 9, 9, 0.26),
    ]
    images = [grey.copy() for _ in range(5)]
    for i, r, c, amp in plan:
        images[i][r - 1 : r + 2, c - 1 : c + 2] += amp * template
    blank_max = model.features(to_nchw(grey))["relu1_1"][0, unit].max()
    result = search(model, "relu1_1", one_set(images), [unit])
    patches = result.patches[unit]
    expected = [p for p in plan if p[:3] != (0, 12, 30)][:9]  # image 0's third pattern: over the 2-per-image limit
    assert [(p.source, *p.position) for p in patches] == [(i, r, c) for i, r, c, _ in expected]
    acts = [p.activation for p in patches]
    assert acts == sorted(acts, reverse=True) and min(acts) > blank_max
    for p in patches:  # the reported value is the features graph's at (image, unit, position)
        value = model.features(to_nchw(images[p.source]))["relu1_1"][0, unit, p.position[0], p.position[1]]
        assert p.activation == pytest.approx(float(value), rel=1e-6)
        assert p.box == (p.position[0] - 1, p.position[1] - 1, p.position[0] + 2, p.position[1] + 2)


def test_crop_pads_with_grey_and_keeps_the_field_size():
    image = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    inside = crop(image, (2, 3, 12, 13))
    assert inside.shape == (10, 10, 3) and np.array_equal(inside, image[2:12, 3:13])
    corner = crop(image, (-4, 25, 6, 35))
    assert corner.shape == (10, 10, 3)
    assert np.all(corner[:4] == GREY) and np.all(corner[:, 5:] == GREY)
    assert np.array_equal(corner[4:, :5], image[0:6, 25:30])


def test_search_crops_have_the_field_size_and_stay_in_bounds(model_dir, synthetic_image):
    model = load_model(model_dir, "cpu")
    images = one_set([synthetic_image(40, 48, s) for s in range(3)])
    result = search(model, "relu3_1", images, [0, 5])
    pixels = patch_pixels(images, result)
    assert result.field.size == 24
    for u in (0, 5):
        assert 1 <= len(result.patches[u]) <= 6  # 2 per source image at most
        for rank, p in enumerate(result.patches[u]):
            patch, grad = pixels[(u, rank)]
            assert patch.shape == (24, 24, 3) and grad is None
            assert patch.min() >= 0 and patch.max() <= 1
            top, left, _, _ = p.box
            if top < 0:  # the field starts above the image: grey rows there
                assert np.all(patch[:-top] == GREY)
            if left < 0:
                assert np.all(patch[:, :-left] == GREY)


@pytest.mark.parametrize(("layer", "position"), [("relu3_1", (5, 6)), ("relu5_1", (0, 3)), ("relu4_2", (3, 1))])
def test_one_hot_gradient_only_inside_the_receptive_field(model_dir, synthetic_image, layer, position):
    model = load_model(model_dir, "cpu")
    image = synthetic_image(64, 72, 2)
    feats = model.features(to_nchw(image))
    unit = int(np.argmax(feats[layer][0, :, position[0], position[1]]))  # an active unit: its gradient is not 0
    onehot = np.zeros_like(feats[layer])
    onehot[0, unit, position[0], position[1]] = 1
    full = model.vjp(to_nchw(image), {layer: onehot})[0].transpose(1, 2, 0)
    top, left, bottom, right = receptive_field(model.manifest.layers, layer).box(*position)
    outside = np.ones(full.shape[:2], bool)
    outside[max(top, 0) : bottom, max(left, 0) : right] = False
    assert np.all(full[outside] == 0) and np.abs(full).sum() > 0
    # unit_gradient works on a small window of the image; it must be the same gradient, and the same activation
    windowed, value = unit_gradient(model, layer, image, unit, position)
    np.testing.assert_allclose(windowed, crop(full, (top, left, bottom, right), 0.0), rtol=1e-4, atol=1e-6)
    assert value == pytest.approx(float(feats[layer][0, unit, position[0], position[1]]), rel=1e-5)


def test_gradient_pixels_for_every_patch(model_dir, synthetic_image):
    model = load_model(model_dir, "cpu")
    images = one_set([synthetic_image(36, 40, s) for s in range(2)])
    result = search(model, "relu2_1", images, [7], k=3)
    pixels = patch_pixels(images, result, model)
    for rank in range(len(result.patches[7])):
        patch, grad = pixels[(7, rank)]
        assert grad is not None and grad.shape == patch.shape[:2] == (10, 10) and grad.max() > 0


def write(path: Path, h: int = 30, w: int = 40, seed: int = 0) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)).save(path)


def test_folder_images_skip_non_images_with_a_count(tmp_path):
    write(tmp_path / "a.png")
    write(tmp_path / "b.jpg", seed=1)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    (tmp_path / ".hidden.png").write_text("ignored")
    (tmp_path / "sub").mkdir()
    images, skipped = folder_images(tmp_path)
    assert [p.name for p, _ in images] == ["a.png", "b.jpg"] and skipped == 2
    with pytest.raises(ImageError, match="no readable images"):
        folder_images(tmp_path / "sub")


def test_image_set_variants_and_source_boxes(tmp_path):
    write(tmp_path / "a.png", 30, 40)
    s = load_image_set([tmp_path], default_images=False, size=80)
    assert s.sources[0].image.shape == (60, 80, 3)
    variants = list(s.variants())
    assert [(v.scale, v.mirrored, v.image.shape[:2]) for v in variants] == [
        (1.0, False, (60, 80)),
        (1.0, True, (60, 80)),
        (0.5, False, (30, 40)),
        (0.5, True, (30, 40)),
    ]
    assert np.array_equal(variants[1].image, variants[0].image[:, ::-1])
    assert variants[3].to_source((2, 0, 12, 10)) == (4.0, 60.0, 24.0, 80.0)  # mirrored back, then scaled up
    assert len(s.specs(min_side=40)) == 2  # the half-size variants are below the model's smallest input


def test_default_image_set_without_scikit_image_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "skimage", None)  # `import skimage` now raises ImportError
    with pytest.raises(ImageError, match=r"nst\[inspect\].*--images"):
        load_image_set()
    write(tmp_path / "a.png")
    assert len(load_image_set([tmp_path]).sources) == 1  # a folder is enough without it


def test_default_image_set_is_scikit_images_photos():
    pytest.importorskip("skimage")
    s = load_image_set(size=32)
    names = {p.path.name for p in s.sources}
    assert {"astronaut.png", "chelsea.png", "coffee.png"} <= names
    assert all(src.image.shape[2] == 3 and max(src.image.shape[:2]) == 32 for src in s.sources)
