"""nst-run on a missing or damaged model directory (issue 6): one error line saying what is wrong and to re-export,
exit 1. Each damaging test works on a private copy of the session's model."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

SIZE = 48  # conftest's nst_run working long side


def model_copy(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's model to damage (never the shared fixture)."""
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def edit_manifest(model: Path, edit) -> None:
    path = model / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))


def test_model_dir_missing(content, style, tmp_path, invoke, error_line):
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=tmp_path / "nowhere"), 1)
    assert "does not exist" in line and "nst-export" in line


def test_model_dir_without_manifest(content, style, tmp_path, invoke, error_line):
    (tmp_path / "m").mkdir()
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=tmp_path / "m"), 1)
    assert "manifest.json" in line


def test_manifest_not_json(content, style, tmp_path, invoke, error_line):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text("{ this is not json")
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=tmp_path / "m"), 1)
    assert "not valid JSON" in line and "re-export" in line


def test_manifest_from_newer_format(model_dir, content, style, tmp_path, invoke, error_line):
    model = model_copy(model_dir, tmp_path)
    edit_manifest(model, lambda m: m.update(format_version=m["format_version"] + 1))
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=model), 1)
    assert "format version" in line and "upgrade nst" in line


def test_manifest_from_older_format(model_dir, content, style, tmp_path, invoke, error_line):
    """Format 1 (round 1) had one recommended beta for equal layer weights; the engine asks for a re-export."""
    model = model_copy(model_dir, tmp_path)
    edit_manifest(model, lambda m: m.update(format_version=1))
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=model), 1)
    assert "format version 1" in line and "older" in line and "re-export" in line


def test_graph_file_sha256_mismatch(model_dir, content, style, tmp_path, invoke, error_line):
    model = model_copy(model_dir, tmp_path)
    with open(model / "features.onnx", "ab") as f:
        f.write(b"\0")
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=model), 1)
    assert "features.onnx" in line and "sha256" in line


def _truncate(model: Path, key: str) -> Path:
    """Cut a graph file in half and record the new sha256, so the truncation itself must be detected."""

    def edit(m):
        path = model / m["graphs"][key]["file"]
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        m["graphs"][key]["sha256"] = hashlib.sha256(data[: len(data) // 2]).hexdigest()

    edit_manifest(model, edit)
    return model


def test_truncated_graph_file(model_dir, content, style, tmp_path, invoke, error_line):
    model = _truncate(model_copy(model_dir, tmp_path), "features")
    line = error_line(invoke(content, style, "-o", tmp_path / "o.png", model=model), 1)
    assert "features.onnx" in line and "re-export" in line


def test_truncated_weights_one_line_on_the_real_stderr(model_dir, content, style, tmp_path, nst_run_exe):
    """onnxruntime logs load errors to file descriptor 2 itself: only a subprocess sees that."""
    model = _truncate(model_copy(model_dir, tmp_path), "weights")
    p = subprocess.run(
        [str(nst_run_exe), str(content), str(style), "--model", str(model), "-o", str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert lines[0].startswith("nst-run: error: ") and "re-export" in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_model_without_the_requested_layer(model_dir, content, style, tmp_path, invoke, error_line):
    model = model_copy(model_dir, tmp_path)
    edit_manifest(model, lambda m: m.update(taps=[t for t in m["taps"] if t != "relu3_1"]))
    line = error_line(invoke(content, style, "-q", "--size", SIZE, "-o", tmp_path / "o.png", model=model), 1)
    assert "relu3_1" in line and "re-export" in line
