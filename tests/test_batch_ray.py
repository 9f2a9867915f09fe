"""nst-batch --executor ray on a local Ray cluster (2 tiny jobs), the model shipped through the object store and
checked on the worker. Skipped only where Ray is not installed; .ci/run installs the `ray` extra, so CI runs them."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst.batch.ray_executor import materialize, model_files
from nst.batch.record import RECORD_FILE, read_lines
from nst.engine.errors import ModelError
from nst.engine.files import sha256_file
from nst.engine.options import StylizeOptions

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'nst[ray]'; .ci/run installs it)"
)
SIZE = 48


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("ray-inputs")
    rng = np.random.default_rng(0)
    for name, shape in (("a.png", (40, 60, 3)), ("b.png", (44, 52, 3)), ("s.png", (48, 48, 3))):
        Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(d / name)
    return d / "a.png", d / "b.png", d / "s.png"


def test_materialize_checks_the_shipped_model(model_dir, tmp_path):
    """What a worker on another machine does with the model from the object store (no Ray needed for this part)."""
    files = model_files(model_dir)
    sha = sha256_file(model_dir / "manifest.json")
    local = materialize(files, sha, tmp_path)
    assert sorted(p.name for p in local.iterdir()) == sorted(files)
    assert materialize(files, sha, tmp_path) == local  # once per node
    bad = dict(files)
    name = next(n for n in files if n.endswith(".bin"))
    bad[name] = bad[name][:-4] + b"\0\0\0\0"
    with pytest.raises(ModelError, match="sha256"):
        materialize(bad, sha, tmp_path / "other")
    with pytest.raises(ModelError, match="different manifest"):
        materialize(files, "0" * 64, tmp_path)


@needs_ray
def test_ray_executor_end_to_end(model_dir, pair, tmp_path):
    from nst.cli.batch_cmd import app

    a, b, s = pair
    out = tmp_path / "out"
    args = [
        "--model",
        str(model_dir),
        "--size",
        str(SIZE),
        "--iterations",
        "3",
        str(a),
        str(b),
        "-s",
        str(s),
        "-o",
        str(out),
        "--executor",
        "ray",
        "--cpus-per-job",
        "1",
        "-v",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "2 jobs: 2 done" in r.stdout
    recs = read_lines(out / RECORD_FILE)
    assert sorted(rec["job"] for rec in recs) == ["a__s.png", "b__s.png"]
    assert all(rec["status"] == "done" and rec["executor"] == "ray" and rec["iterations"] == 3 for rec in recs)
    for name in ("a__s.png", "b__s.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and max(im.size) == SIZE
    r = CliRunner().invoke(app, args)  # a rerun skips both without starting Ray
    assert r.exit_code == 0 and "2 skipped" in r.stdout


@needs_ray
def test_ray_ships_the_model_and_the_images(model_dir, pair, tmp_path):
    """Workers that cannot see the driver's files: the model from the object store (sha256 checked there), the
    images as bytes, the output back as bytes."""
    from nst.batch import build_jobs, run_batch
    from nst.batch.ray_executor import RayExecutor

    a, b, s = pair
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    jobs = build_jobs([a, b], [s], tmp_path / "out")
    run = run_batch(jobs, tmp_path / "out", StylizeOptions(size=SIZE, iterations=2), model_dir=copy, workers=1)
    run.executor = RayExecutor(
        copy, workers=2, options=StylizeOptions(size=SIZE, iterations=2), num_cpus=2, ship_model=True
    )
    results = list(run)
    assert [r.status for r in results] == ["done", "done"], [r.error for r in results]
    assert all(r.record["executor"] == "ray" for r in results)
    assert len(run.executor.setup) == 2
    assert all(w["shipped"] and w["load_seconds"] > 0 for w in run.executor.setup)
