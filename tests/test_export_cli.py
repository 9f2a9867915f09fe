"""nst-export's command line: help, bad options, offline torchvision, an existing or interrupted export; one error
line and the right exit code."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.torch
pytest.importorskip("torch", reason="export tests need the export extra (torch)")
from nst.cli.export_cmd import app  # noqa: E402


def _err_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    return lines[0]


def test_help(runner):
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "--weights" in r.stdout and "--pooling" in r.stdout


def test_bad_layer_name(tmp_path, runner):
    r = runner.invoke(app, ["--out", str(tmp_path / "m"), "--content-layer", "relu9_9"])
    assert r.exit_code == 2 and "relu9_9" in _err_line(r) and "relu4_2" in _err_line(r)
    assert not (tmp_path / "m").exists()


def test_unknown_weights(tmp_path, runner):
    r = runner.invoke(app, ["--out", str(tmp_path / "m"), "--weights", "imagenet"])
    assert r.exit_code == 2 and "original, torchvision, random" in _err_line(r)


def test_offline_torchvision(tmp_path, monkeypatch, runner):
    import urllib.error

    import torch.hub

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    r = runner.invoke(app, ["--out", str(tmp_path / "m"), "--weights", "torchvision"])
    assert r.exit_code == 1 and "--weights original" in _err_line(r)
    assert not (tmp_path / "m").exists()


def test_export_prints_what_it_wrote(tmp_path, runner):
    r = runner.invoke(
        app,
        [
            "--out",
            str(tmp_path / "m"),
            "--weights",
            "random",
            "--style-layers",
            "relu1_1,relu2_1",
            "--content-layer",
            "relu2_2",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "weights.bin" in r.stdout and "validated" in r.stdout and "took" in r.stdout
    r2 = runner.invoke(app, ["--out", str(tmp_path / "m"), "--weights", "random"])
    assert r2.exit_code == 1 and "--force" in _err_line(r2)


def test_export_keeps_an_existing_directory(tmp_path, runner, error_line):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    line = error_line(runner.invoke(app, ["--out", str(tmp_path / "m"), "--weights", "random"]), 1, "nst-export")
    assert "--force" in line
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["keep.txt"]


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch, runner, error_line):
    import nst.export.onnx_graphs as exporter

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "build_graphs", interrupted)
    r = runner.invoke(app, ["--out", str(tmp_path / "models" / "m"), "--weights", "random"])
    assert "interrupted" in error_line(r, 130, "nst-export")
    assert list((tmp_path / "models").iterdir()) == []  # no model directory, no temporary directory
