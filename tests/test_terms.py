"""Loss terms as a list: a term added from outside the engine, the objective's sum, the progress record, stops and the
plan as the one source of settings."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pytest

from nst.engine import OptionError, load_model, plan_run, stylize
from nst.engine.images import resize, to_nchw
from nst.engine.objective import Objective
from nst.engine.terms import PIXELS, TermValue


@dataclass
class Pull:
    """An L2 pull of the pixels towards an image: J = mean (x - t)^2. Written here, outside the engine."""

    target: np.ndarray  # (1, 3, H, W)
    weight: float
    name: str = "pull"
    layers: tuple[str, ...] = ()

    def __call__(self, feats, image) -> TermValue:
        d = image - self.target
        return TermValue(float(np.mean(d.astype(np.float64) ** 2)), {PIXELS: d * (2.0 / d.size)})


@pytest.fixture(scope="module")
def model(model_dir):
    return load_model(model_dir, "cpu")


def test_a_pixel_term_from_outside_has_the_right_gradient(synthetic_image):
    rng = np.random.default_rng(0)
    t = to_nchw(synthetic_image(8, 10, 3)).astype(np.float64)
    x = rng.random(t.shape)
    term = Pull(t, 1.0)
    g = term({}, x).grads[PIXELS]
    for idx in [(0, 0, 0, 0), (0, 1, 3, 4), (0, 2, 7, 9)]:
        e = np.zeros_like(x)
        e[idx] = 1e-6
        fd = (term({}, x + e).value - term({}, x - e).value) / 2e-6
        assert g[idx] == pytest.approx(fd, rel=1e-6)


def test_objective_sums_any_terms_and_refuses_duplicate_names(model, synthetic_image):
    image = to_nchw(synthetic_image(48, 48, 1))
    target = to_nchw(synthetic_image(48, 48, 2))
    ev = Objective(model, [Pull(target, 3.0)])(image)  # pixels only: no network pass is needed
    assert ev.terms == {"pull": pytest.approx(3.0 * float(np.mean((image - target).astype(np.float64) ** 2)))}
    np.testing.assert_allclose(ev.grad, 3.0 * 2.0 * (image - target) / image.size, rtol=1e-6)
    with pytest.raises(ValueError, match="distinct"):
        Objective(model, [Pull(target, 1.0), Pull(target, 2.0)])


def test_an_extra_term_changes_the_result_and_is_carried_by_name(model, synthetic_image):
    content, style = synthetic_image(48, 64, 5), synthetic_image(64, 64, 6)
    goal = np.full_like(content, 0.5)
    seen = []

    def run(weight):
        return stylize(
            model,
            content,
            [style],
            size=64,
            scales=1,
            iterations=15,
            extra_terms=[lambda stage: Pull(to_nchw(resize(goal, stage.size)), weight)],
            callback=seen.append,
        )

    weak, strong = run(1e-6), run(1e9)
    assert np.abs(strong.image - 0.5).mean() < 0.5 * np.abs(weak.image - 0.5).mean()
    assert set(strong.terms) == {"content", "style", "pull"} and strong.terms["pull"] > 0
    assert sum(strong.terms.values()) == pytest.approx(strong.loss, rel=1e-9)
    assert all(set(h["terms"]) == {"content", "style", "pull"} for h in strong.history)
    assert strong.stages[0]["weights"]["pull"] == 1e9
    assert set(strong.parts["style"]) == set(model.manifest.default_style_layers)  # each layer's share
    assert sum(strong.parts["style"].values()) == pytest.approx(strong.terms["style"], rel=1e-9)
    assert all("pull" in p.terms and p.stage == 1 and p.size == (48, 64) for p in seen)


def test_every_evaluated_image_stays_in_the_box(model, synthetic_image, range_recorder):
    """bounds=box: L-BFGS-B never asks for an image outside [0, 1], though the style pull is strong; with clip the
    iterates leave the box and the network sees them clipped."""
    for bounds in ("box", "clip"):
        rec, iterates = range_recorder(), []
        stylize(
            model,
            synthetic_image(60, 80),
            [synthetic_image(64, 64, 1)],
            size=64,
            scales=1,
            iterations=8,
            bounds=bounds,
            style_weight=1e9,
            extra_terms=[lambda stage, rec=rec: rec],
            callback=lambda p, it=iterates: it.append((float(p.x.min()), float(p.x.max()))),
        )
        assert len(rec.seen) >= 8 and all(0.0 <= lo and hi <= 1.0 for lo, hi in rec.seen)
        outside = any(lo < 0.0 or hi > 1.0 for lo, hi in iterates)
        assert outside == (bounds == "clip"), bounds


def test_a_callback_stop_ends_the_run_with_the_best_image(model, synthetic_image):
    def stop_at_3(p):
        if p.iteration == 3:
            raise StopIteration

    r = stylize(
        model, synthetic_image(48, 64), [synthetic_image(64, 64, 1)], size=64, iterations=20, callback=stop_at_3
    )
    assert r.stopped and not r.interrupted and r.iterations == 3 and r.stage == 1
    assert r.early_stop is None  # asked for, so not reported as an early stop
    assert r.loss == min(h["loss"] for h in r.history) or r.loss <= r.history[-1]["loss"]
    assert r.image.shape == (48, 64, 3)


def test_a_plan_is_the_one_source_of_settings(model, synthetic_image):
    content, style = synthetic_image(48, 64), synthetic_image(64, 64, 1)
    options = dataclasses.replace(plan_options := _options(), tv_weight=0.0)
    plan = plan_run(model.manifest, content.shape[:2], [style.shape[:2]], options)
    with pytest.raises(OptionError, match="tv_weight"):
        stylize(model, content, [style], plan=plan, tv_weight=1.0)
    with pytest.raises(OptionError, match="iterations"):
        stylize(model, content, [style], dataclasses.replace(plan_options, iterations=3), plan=plan)
    r = stylize(model, content, [style], plan_options, plan=plan)  # the same options: fine
    assert r.iterations == plan.stages[0].iterations


def _options():
    from nst.engine import StylizeOptions

    return StylizeOptions(size=64, scales=1, iterations=2)


def test_early_stop_is_said_with_the_weights_fix(model_dir, content, style, tmp_path, nst_run):
    """Weights from another tool's tutorial (alpha 10, beta 1e-3) with auto layer weights: a warning before the run
    names the model's beta, and the line search's early stop is reported with its reason."""
    out, log = tmp_path / "o.png", tmp_path / "o.json"
    args = ["--size", 64, "--iterations", 30, "--content-weight", 10, "--style-weight", 1e-3, "-o", out]
    r = nst_run(model_dir, content, style, *args, "--log-json", log)
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("nst-run: warning: ") and "--style-weight 2e+07 at --content-weight 10" in lines[0]
    data = json.loads(log.read_text())
    assert data["resolved"]["warnings"] == [lines[0].removeprefix("nst-run: warning: ")]
    # L-BFGS ends at once on the nearly flat loss: said after the run, with the reason, the iteration and the fix
    assert data["early_stop"] is not None and "iteration 1 of 30" in data["early_stop"]
    note = lines[-1]
    assert note.startswith("nst-run: note: L-BFGS stopped early: ") and data["early_stop"] in note
    assert "try --style-weight 2e+07 at --content-weight 10" in note
    ok = nst_run(model_dir, content, style, "--size", 64, "--iterations", 3, "-o", tmp_path / "p.png")
    assert ok.exit_code == 0 and ok.stderr.strip() == ""  # the defaults: no warning


def test_the_log_records_what_the_plan_resolved(model_dir, content, style, tmp_path, nst_run, ok):
    log = tmp_path / "o.json"
    ok(
        nst_run(
            model_dir, content, style, "--iterations", 3, "--low-memory", "-o", tmp_path / "o.png", "--log-json", log
        )
    )
    data = json.loads(log.read_text())
    resolved = data["resolved"]
    assert resolved["lbfgs_pairs"] == 5 and data["options"]["maxcor"] == 20  # --low-memory's cap, not the echo
    assert resolved["style_weight"] == 2e6 and resolved["content_weight"] == 1.0  # the manifest's, for auto weights
    assert resolved["init"] == "content" and resolved["bounds"] == "box" and resolved["tv_weight"] == 0.0


def test_a_stop_from_the_callback_exits_0_with_the_best_image(model_dir, content, style, tmp_path, invoke, monkeypatch):
    """nst-run's own callback (the progress bar here) raising StopIteration: the run ends cleanly, OUT is written."""
    from nst.cli import progress

    def update(self, p):
        if p.iteration == 2:
            raise StopIteration

    monkeypatch.setattr(progress.ProgressBar, "update", update)
    out, log = tmp_path / "o.png", tmp_path / "o.json"
    r = invoke(content, style, "--size", 48, "--iterations", 20, "-o", out, "--log-json", log, model=model_dir)
    assert r.exit_code == 0, r.output
    data = json.loads(log.read_text())
    assert data["iterations"] == 2 and data["message"] == "stopped by the callback" and out.is_file()
