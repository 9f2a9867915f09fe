"""Where onnxruntime's CPU tensors live (load_model's arena) changes memory and speed, never a value."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine.model import ARENAS, load_model


def _evaluate(model, image: np.ndarray, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    feats = {k: v.copy() for k, v in model.features(image).items()}
    rng = np.random.default_rng(seed)
    grads = {k: rng.standard_normal(v.shape, dtype=np.float32) for k, v in feats.items()}
    return feats, model.vjp(image, grads).copy()


@pytest.mark.parametrize("arena", [a for a in ARENAS if a != "off"])
def test_arena_gives_bit_identical_features_and_gradients(model_dir, arena):
    rng = np.random.default_rng(0)
    images = [rng.random((1, 3, h, w), dtype=np.float32) for h, w in ((48, 64), (48, 64), (64, 40), (48, 64))]
    off = load_model(model_dir, "cpu", arena="off")
    model = load_model(model_dir, "cpu", arena=arena)
    for i, image in enumerate(images):  # repeated and changing sizes: reused and released buffers alike
        feats_off, grad_off = _evaluate(off, image, i)
        feats, grad = _evaluate(model, image, i)
        assert feats.keys() == feats_off.keys()
        for k in feats:
            assert np.array_equal(feats[k], feats_off[k]), k
        assert np.array_equal(grad, grad_off)


class _RunRecorder:
    """A features session that records, per run, its image's size and whether it shrank the arena."""

    def __init__(self, session):
        self.session, self.runs = session, []

    def io_binding(self):
        binding = self.session.io_binding()
        recorder = self

        class Binding:  # records the image size bound to a run
            def bind_cpu_input(self, name, array):
                recorder.bound = array.shape[2:]
                binding.bind_cpu_input(name, array)

            def __getattr__(self, name):
                return getattr(binding, name)

        return Binding()

    def run_with_iobinding(self, binding, run_options=None):
        self.runs.append((self.bound, run_options is not None))
        return self.session.run_with_iobinding(binding, run_options)  # onnxruntime reads binding._iobinding

    def run(self, names, feeds, run_options=None):
        self.runs.append((feeds["image"].shape[2:], run_options is not None))
        return self.session.run(names, feeds, run_options)


def test_the_arena_is_shrunk_before_a_new_image_size(model_dir):
    """At a new size, a run at the model's smallest size hands the free regions back first (onnxruntime shrinks at
    the end of a run); the run at the new size itself, and repeated runs at one size, shrink nothing."""
    model = load_model(model_dir, "cpu", arena="shared")
    recorder = _RunRecorder(model._features)
    model._features = recorder
    rng = np.random.default_rng(1)
    sizes = ((48, 64), (48, 64), (64, 64), (64, 64), (48, 64))
    for h, w in sizes:
        model.features(rng.random((1, 3, h, w), dtype=np.float32))
    m = model.manifest.min_size
    tiny = ((m, m), True)
    want = [((48, 64), False), ((48, 64), False), tiny, ((64, 64), False), ((64, 64), False), tiny, ((48, 64), False)]
    assert recorder.runs == want


def test_no_arena_never_shrinks(model_dir):
    model = load_model(model_dir, "cpu", arena="off")
    recorder = _RunRecorder(model._features)
    model._features = recorder
    rng = np.random.default_rng(2)
    for h, w in ((48, 64), (64, 64)):
        model.features(rng.random((1, 3, h, w), dtype=np.float32))
    assert recorder.runs == [((48, 64), False), ((64, 64), False)]


def test_the_default_is_the_shared_arena_without_a_memory_pattern(model_dir):
    """One arena for both sessions, and onnxruntime's memory pattern off wherever an arena is (bench/README.md: the
    pattern's block beside the saved state costs +350 MB at 512²); without an arena onnxruntime's defaults stay."""
    from nst.engine.model import import_ort, session_options

    ort = import_ort()
    model = load_model(model_dir, "cpu")
    assert model._run_options is not None  # only an arena is shrunk
    for arena in ARENAS:
        opts = session_options(ort, True, arena=arena)
        assert opts.enable_cpu_mem_arena == (arena != "off"), arena
        assert opts.enable_mem_pattern == (arena == "off"), arena
    shared = session_options(ort, True)
    assert shared.get_session_config_entry("session.use_env_allocators") == "1"


def test_unknown_arena_names_the_choices(model_dir):
    with pytest.raises(ValueError, match="shared, session, off"):
        load_model(model_dir, "cpu", arena="big")


def _terms(model, size: tuple[int, int], synthetic_image):
    from nst.engine.images import to_nchw
    from nst.engine.terms import ContentTerm, StyleTerm, style_targets

    layers = ("relu1_1", "relu2_1", "relu3_1")
    content = model.features(to_nchw(synthetic_image(*size, 4)), keep_state=False)["relu4_2"]
    style = style_targets(model, [to_nchw(synthetic_image(40, 56, 5))], [1.0], layers)
    return [ContentTerm(content, "relu4_2", 2.0), StyleTerm(style, (1.0, 0.5, 2.0), 1e4, layers)]


def test_objective_weights_the_tap_gradients_in_place_to_the_same_bits(model_dir, synthetic_image):
    """The objective scales each term's tap gradients in place (the LossTerm contract) instead of copying them; the
    gradient is bit for bit the one from weighted copies, here built by hand from the terms and the model."""
    from nst.engine.images import to_nchw
    from nst.engine.objective import Objective

    model = load_model(model_dir, "cpu")
    terms = _terms(model, (48, 64), synthetic_image)
    x = to_nchw(synthetic_image(48, 64, 6))
    ev = Objective(model, terms)(x)
    feats = model.features(x)
    sums: dict[str, np.ndarray] = {}
    for term in terms:
        for tap, g in term(feats, x).grads.items():
            sums[tap] = g * term.weight if tap not in sums else sums[tap] + g * term.weight
    assert np.array_equal(ev.grad, model.vjp(x, sums))
    again = Objective(model, terms)(x)  # the terms' own state (targets) was not scaled
    assert again.loss == ev.loss and np.array_equal(again.grad, ev.grad)


def test_style_loss_scale_weights_the_gradient_only(synthetic_image):
    from nst.engine.losses import gram, style_loss

    rng = np.random.default_rng(3)
    a = rng.random((1, 8, 6, 7), dtype=np.float32)
    g_s = gram(rng.random((1, 8, 5, 5), dtype=np.float32))
    v1, g1 = style_loss(a, g_s)
    v3, g3 = style_loss(a, g_s, scale=3.0)
    assert v3 == v1
    np.testing.assert_allclose(g3, 3.0 * g1, rtol=1e-5, atol=1e-6 * float(np.abs(g1).max()))
