"""The runtime needs no PyTorch: no module on nst-run's, nst-batch's or nst-web's path imports torch, and nst-run and
nst-batch work where `import torch` fails (nst-batch's worker processes included)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'onnx'):
            raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, Block())
"""


def test_no_torch_import_in_runtime_sources():
    for folder in ("engine", "cli", "batch", "views", "video", "web"):
        for path in (ROOT / folder).glob("*.py"):
            if path.name == "export_cmd.py":  # nst-export's CLI imports nst.export lazily, inside the command
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                )
                assert not any(n.split(".")[0] in ("torch", "onnx") for n in names), f"{path}: {names}"
                if isinstance(node, ast.ImportFrom) and node.level:
                    assert "export" not in (node.module or "").split("."), f"{path} imports nst.export"


def test_runtime_imports_load_no_torch():
    code = BLOCK + (
        "import nst.engine, nst.cli.run_cmd, nst.cli.batch_cmd, nst.batch, nst.batch.local, nst.batch.ray_executor\n"
        "from nst.batch.worker import JobRunner\n"
        "import nst.cli.inspect_cmd, nst.views.units, nst.views.units_figure, nst.views.reconstruct, nst.views.sweep\n"
        "import nst.views.report, nst.views.image_set, nst.cli.run_report\n"
        "import nst.video.source, nst.video.sink, nst.video.flow\n"
        "import nst.cli.web_cmd, nst.web.jobs, nst.web.runner, nst.web.examples\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')]\n"
        "print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_export_package_constants_import_without_torch():
    """nst.export's tables, defaults and error types import where torch and onnx do not; so does nst-export's CLI
    module (it says which extra to install only when the command runs)."""
    code = BLOCK + (
        "from nst.export import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, ExportError, vgg_layers\n"
        "import nst.cli.export_cmd\n"
        "assert DEFAULT_CONTENT_LAYER == 'relu4_2' and vgg_layers('vgg19')[-1].name == 'pool5'\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')]\n"
        "print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_nst_run_where_torch_cannot_be_imported(model_dir, images_dir, tmp_path):
    out = tmp_path / "out.png"
    args = [
        str(images_dir / "content.png"),
        str(images_dir / "style1.png"),
        "-o",
        str(out),
        "--model",
        str(model_dir),
        "--size",
        "64",
        "--iterations",
        "3",
        "--quiet",
    ]
    code = (
        BLOCK
        + f"""
sys.argv = ['nst-run', *{args!r}]
from nst.cli.run_cmd import main
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')]
try:
    import torch
except ImportError:
    print('torch blocked')
"""
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert "torch blocked" in r.stdout
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (64, 48)


def test_nst_batch_where_torch_cannot_be_imported(model_dir, images_dir, tmp_path):
    """The block goes in a sitecustomize.py on PYTHONPATH, so the spawned worker processes have it too."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    exe = Path(sys.executable).parent / "nst-batch"
    args = [
        images_dir / "content.png",
        "-s",
        images_dir / "style1.png",
        "-o",
        tmp_path / "out",
        "--model",
        model_dir,
        "--size",
        48,
        "--iterations",
        2,
        "--workers",
        1,
        "-q",
    ]
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "content__style1.png").is_file()
    r = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "blocked in this test" in r.stderr  # the block did apply


def test_nst_inspect_and_run_report_where_torch_cannot_be_imported(model_dir, images_dir, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    bin_dir = Path(sys.executable).parent
    content, style = images_dir / "content.png", images_dir / "style1.png"
    commands = [
        [
            bin_dir / "nst-inspect",
            "reconstruct",
            content,
            style,
            "-o",
            tmp_path / "strip.png",
            "--model",
            model_dir,
            "--size",
            32,
            "--iterations",
            1,
            "--content-layers",
            "relu1_1",
            "--style-layers",
            "relu1_1",
            "-q",
        ],
        [
            bin_dir / "nst-inspect",
            "units",
            "--layer",
            "relu1_1",
            "--units",
            1,
            "--images",
            images_dir,
            "--no-default-images",
            "--size",
            32,
            "--gradient",
            "-o",
            tmp_path / "units.png",
            "--model",
            model_dir,
            "-q",
        ],
        [
            bin_dir / "nst-run",
            content,
            style,
            "-o",
            tmp_path / "out.png",
            "--model",
            model_dir,
            "--size",
            32,
            "--iterations",
            2,
            "--report",
            tmp_path / "report.png",
            "-q",
        ],
    ]
    for command in commands:
        r = subprocess.run([str(a) for a in command], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
    for name in ("strip.png", "units.png", "units.json", "report.png"):
        assert (tmp_path / name).is_file(), name
