"""Deployment without PyTorch, proven: a fresh virtual environment with the runtime alone (no torch, no onnx), the
project installed there, and nst-run on a model exported by the full environment. Takes about a minute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a virtual environment from the registry: about a minute

ROOT = Path(__file__).resolve().parents[1]
NO_REGISTRY = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found for setuptools",
)


def _pip(venv: Path, *args: str) -> None:
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        if any(s in r.stdout + r.stderr for s in NO_REGISTRY):
            pytest.skip("no package registry reachable: cannot build the runtime-only environment")
        raise AssertionError(r.stdout + r.stderr)


def test_runtime_only_venv_runs_exported_model(tmp_path, model_dir, images_dir):
    venv = tmp_path / "rt"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _pip(venv, str(ROOT))  # the base distribution: numpy, scipy, pillow, typer; no onnxruntime yet
    run = [
        str(venv / "bin" / "nst-run"),
        str(images_dir / "content.png"),
        str(images_dir / "style1.png"),
        "--model",
        str(model_dir),
        "--size",
        "64",
        "--iterations",
        "5",
        "-q",
    ]
    r = subprocess.run([*run, "-o", str(tmp_path / "a.png")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 1 and "nst[cpu]" in r.stderr and "Traceback" not in r.stderr, r.stderr
    _pip(venv, f"{ROOT}[cpu]")
    check = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; print(u.find_spec('torch') is None, u.find_spec('onnx') is None)",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert check.stdout.split() == ["True", "True"], check.stdout + check.stderr
    r = subprocess.run(
        [*run, "-o", str(tmp_path / "b.png"), "--log-json", str(tmp_path / "b.json")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b.png").stat().st_size > 0 and (tmp_path / "b.json").is_file()
