"""nst-run's bad options (issue 6): exit 2 for a bad command line (1 for a layer the model lacks or a missing CUDA),
one error line naming the option, no output."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "args, code, needles",
    [
        (["--iterations", "0"], 2, ["--iterations", ">= 1"]),
        (["--iterations", "-3"], 2, ["--iterations"]),
        (["--size", "0"], 2, ["--size", ">= 1"]),
        (["--size", "-5"], 2, ["--size"]),
        (["--size", "big"], 2, ["--size"]),
        (["--style-weight", "nan"], 2, ["--style-weight", "finite"]),
        (["--content-weight", "-1"], 2, ["--content-weight", ">= 0"]),
        (["--tv-weight", "inf"], 2, ["--tv-weight"]),
        (["--style-blend", "0.7"], 2, ["--style-blend", "1 weights for 2 style"]),
        (["--style-blend", "0.7,0.2,0.1"], 2, ["--style-blend"]),
        (["--style-blend", "a,b"], 2, ["--style-blend"]),
        (["--style-layers", "relu5_4"], 1, ["relu5_4", "--extra-layers"]),
        (["--content-layer", "relu3_2"], 1, ["relu3_2", "relu4_2"]),
        (["--init", "nosie"], 2, ["--init", "nosie"]),
        (["--init", "mix:2"], 2, ["mix"]),
        (["--device", "tpu"], 2, ["--device", "cpu"]),
        (["--no-such-option"], 2, ["--no-such-option"]),
    ],
)
def test_bad_options(model_dir, images_dir, tmp_path, args, code, needles, nst_run, error_line):
    out = tmp_path / "o.png"
    r = nst_run(
        model_dir, images_dir / "content.png", images_dir / "style1.png", images_dir / "style2.jpg", "-o", out, *args
    )
    line = error_line(r, code)
    for needle in needles:
        assert needle in line, (needle, line)
    assert not out.exists()


def test_only_a_content_image(model_dir, content, tmp_path, nst_run, error_line):
    assert "STYLE" in error_line(nst_run(model_dir, content, "-o", tmp_path / "o.png"), 2)


def test_cuda_when_there_is_none(model_dir, content, style, tmp_path, nst_run, error_line):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime offers CUDA")
    line = error_line(nst_run(model_dir, content, style, "--device", "cuda", "-o", tmp_path / "o.png"), 1)
    assert "CUDA" in line and "--device cpu" in line


@pytest.mark.parametrize("flag, arena", [([], "shared"), (["--low-memory"], "off")])
def test_low_memory_loads_the_model_without_an_arena(
    model_dir, content, style, tmp_path, nst_run, monkeypatch, flag, arena
):
    """--low-memory also turns onnxruntime's arena off (StylizeOptions.arena); the default shares one arena."""
    import nst.engine
    from nst.engine.errors import ModelError

    seen = []

    def load_model(path, device="auto", threads=None, tf32=False, arena="shared"):
        seen.append(arena)
        raise ModelError("stop here")

    monkeypatch.setattr(nst.engine, "load_model", load_model)
    r = nst_run(model_dir, content, style, *flag, "-o", tmp_path / "o.png")
    assert r.exit_code == 1 and seen == [arena]
