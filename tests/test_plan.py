"""Run planning (engine/plan.py): the coarse-to-fine schedule, layer and weight resolution, typed refusals. Pure
functions on the model's manifest: no onnxruntime runs here."""

from __future__ import annotations

import pytest

from nst.engine import LayerError, SizeError, StylizeOptions, plan_run, read_manifest
from nst.engine.images import fit_long_side
from nst.engine.options import OptionError
from nst.engine.plan import schedule


@pytest.fixture(scope="module")
def manifest(model_dir):
    return read_manifest(model_dir)


def longs(stages):
    return [max(hw) for hw, _ in stages]


def test_default_schedule_steps_at_most_2x_and_ends_at_size():
    for size, expected in [
        (512, [256, 512]),
        (1024, [256, 512, 1024]),
        (2048, [256, 512, 1024, 2048]),
        (700, [256, 423, 700]),
        (256, [256]),
        (200, [200]),
    ]:
        stages = schedule((768, 1024), StylizeOptions(size=size), 16)
        assert longs(stages) == expected, size
        assert all(b / a <= 2.0 + 1e-9 for a, b in zip(longs(stages), longs(stages)[1:]))


def test_iterations_fall_in_proportion_to_the_long_side():
    stages = schedule((768, 1024), StylizeOptions(size=1024, iterations=200), 16)
    assert [it for _, it in stages] == [200, 100, 50]
    assert [it for _, it in schedule((3, 4), StylizeOptions(size=2048, iterations=3), 1)][-1] >= 1


def test_explicit_scales_and_min_size():
    stages = schedule((600, 800), StylizeOptions(size=800, scales=3, min_size=200, iterations=90), 16)
    assert longs(stages) == [200, 400, 800] and [it for _, it in stages] == [90, 45, 22]
    assert longs(schedule((600, 800), StylizeOptions(size=800, scales=1), 16)) == [800]


def test_odd_aspect_ratio_sizes_are_the_content_resized():
    stages = schedule((300, 1000), StylizeOptions(size=1000), 16)
    for hw, _ in stages:
        assert hw == fit_long_side(300, 1000, max(hw))
    assert stages[-1][0] == fit_long_side(300, 1000, 1000)


def test_first_stage_is_raised_to_the_deepest_layers_minimum():
    """A 1:10 panorama at 256 px would be 26 px high: fine for relu5_1's 16 px. At 1:20 it would be 13 px: the first
    stage starts at the smallest long side whose short side reaches 16 px instead."""
    stages = schedule((100, 2000), StylizeOptions(size=1024), 16)
    assert min(stages[0][0]) >= 16 > min(fit_long_side(100, 2000, max(stages[0][0]) - 1))


def test_plan_resolves_layers_weights_and_stages(manifest):
    plan = plan_run(manifest, (600, 800), [(500, 500)], StylizeOptions(size=512))
    assert plan.content_layer == manifest.default_content_layer
    assert plan.style_layers == manifest.default_style_layers
    assert plan.style_layer_weights is None  # auto: derived per stage from the style targets
    assert plan.style_weight == manifest.style_weight and plan.content_weight == manifest.content_weight
    assert [s.index for s in plan.stages] == [1, 2] and plan.size == (384, 512)
    assert plan.stages[-1].style_sizes == ((512, 512),) and plan.stages[0].style_sizes == ((256, 256),)
    equal = plan_run(manifest, (600, 800), [(500, 500)], StylizeOptions(style_layer_weights="equal"))
    assert equal.style_layer_weights == (0.2,) * 5 and equal.style_weight == manifest.style_weight_equal
    given = plan_run(manifest, (600, 800), [(500, 500)], StylizeOptions(style_layer_weights=(1, 1, 2, 0, 0)))
    assert given.style_layer_weights == (0.25, 0.25, 0.5, 0.0, 0.0)


def test_plan_refusals_are_typed(manifest):
    with pytest.raises(LayerError, match="--extra-layers relu5_4"):
        plan_run(manifest, (60, 80), [(60, 80)], StylizeOptions(style_layers=("relu5_4",)))
    with pytest.raises(SizeError) as e:
        plan_run(manifest, (60, 80), [(60, 80)], StylizeOptions(size=8))
    assert e.value.smallest is not None and min(fit_long_side(60, 80, e.value.smallest)) >= 16
    with pytest.raises(OptionError, match="3 values for 5 style layers"):
        plan_run(manifest, (60, 80), [(60, 80)], StylizeOptions(size=48, style_layer_weights=(1, 2, 3)))


@pytest.mark.parametrize(
    "bad, needle",
    [
        (dict(scales=0), "scales"),
        (dict(min_size=600, size=512), "min_size"),
        (dict(style_layer_weights="some"), "auto, equal"),
        (dict(preserve_colors="chroma"), "luminance, histogram"),
    ],
)
def test_bad_options_name_the_option(bad, needle):
    with pytest.raises(OptionError, match=needle):
        StylizeOptions(**bad)
