"""The memory preflight (issue 6): a run that would not fit in the available memory is refused before it starts,
naming a --size that fits, or --low-memory where that alone would do."""

from __future__ import annotations

import json
import re

from nst.engine import StylizeOptions, read_manifest
from nst.engine.images import fit_long_side
from nst.engine.memory import estimate_bytes

OPTIMIZER = StylizeOptions().optimizer  # the default run's, whose L-BFGS pairs the estimate counts


def test_memory_preflight_names_a_size_that_fits(model_dir, content, style, tmp_path, monkeypatch, invoke, error_line):
    import nst.engine.memory as memory

    m = read_manifest(model_dir)
    weights = (model_dir / m.weights.file).stat().st_size
    budget = estimate_bytes(m, *fit_long_side(60, 80, 300), 20, weights, OPTIMIZER)
    monkeypatch.setattr(memory, "available_bytes", lambda: budget)
    line = error_line(invoke(content, style, "--size", 4000, "-q", "-o", tmp_path / "o.png", model=model_dir), 1)
    assert "GiB" in line
    n = int(re.search(r"--size (\d+)", line).group(1))
    assert 16 <= n and estimate_bytes(m, *fit_long_side(60, 80, n), 20, weights, OPTIMIZER) <= budget
    assert n >= 300 - 16  # and not needlessly small
    assert not (tmp_path / "o.png").exists()

    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000_000)
    line = error_line(invoke(content, style, "--size", 64, "-q", "-o", tmp_path / "o.png", model=model_dir), 1)
    assert "free some memory" in line


def test_low_memory_fits_what_the_default_does_not(
    model_dir, content, style, tmp_path, monkeypatch, invoke, error_line
):
    """--low-memory (5 L-BFGS pairs) has a smaller estimate; the refusal offers it when it would fit."""
    import nst.engine.memory as memory

    m = read_manifest(model_dir)
    weights = (model_dir / m.weights.file).stat().st_size
    hw = fit_long_side(60, 80, 2000)
    budget = (estimate_bytes(m, *hw, 20, weights, OPTIMIZER) + estimate_bytes(m, *hw, 5, weights, OPTIMIZER)) // 2
    monkeypatch.setattr(memory, "available_bytes", lambda: budget)
    line = error_line(invoke(content, style, "--size", 2000, "-q", "-o", tmp_path / "o.png", model=model_dir), 1)
    assert "--low-memory" in line
    r = invoke(
        content,
        style,
        "--size",
        64,
        "--iterations",
        3,
        "--low-memory",
        "-q",
        "-o",
        tmp_path / "o.png",
        "--log-json",
        tmp_path / "o.json",
        model=model_dir,
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o.json").read_text())["options"]["low_memory"] is True


def test_the_estimate_counts_the_optimisers_pairs_at_their_precision(model_dir):
    """scipy's L-BFGS-B keeps float64 vectors, the array-API L-BFGS float32: the estimates differ by exactly that."""
    m = read_manifest(model_dir)
    n = 384 * 512
    scipy, lbfgs = (estimate_bytes(m, 384, 512, 20, 0, opt) for opt in ("scipy", "lbfgs"))
    assert scipy - lbfgs == (2 * 20 + 6) * 3 * n * 4
