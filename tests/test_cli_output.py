"""nst-run's output paths (issue 6): an unwritable or unsupported OUT is one error line and writes nothing; missing
parent directories are created; an existing OUT is left alone when the run fails."""

from __future__ import annotations

from pathlib import Path

from nst.cli.run_cmd import app

SIZE = 48  # conftest's nst_run working long side: the 60x80 content becomes 36x48


def test_unsupported_output_extension(model_dir, content, style, tmp_path, nst_run, error_line):
    line = error_line(nst_run(model_dir, content, style, "-o", tmp_path / "out.gif"), 2)
    assert ".gif" in line and ".png" in line and ".webp" in line
    assert not (tmp_path / "out.gif").exists()


def test_output_under_a_regular_file(model_dir, content, style, tmp_path, nst_run, error_line):
    (tmp_path / "somefile").write_text("x")
    line = error_line(nst_run(model_dir, content, style, "-o", tmp_path / "somefile" / "out.png"), 1)
    assert "cannot write" in line and "somefile" in line
    line = error_line(
        nst_run(model_dir, content, style, "-o", tmp_path / "o.png", "--log-json", tmp_path / "somefile" / "log.json"),
        1,
    )
    assert "cannot write" in line


def test_output_in_proc(model_dir, content, style, nst_run, error_line):
    line = error_line(nst_run(model_dir, content, style, "-o", "/proc/nst-test/out.png"), 1)
    assert "cannot write" in line


def test_output_in_read_only_directory(model_dir, content, style, tmp_path, monkeypatch, nst_run, error_line):
    """A directory we may not write to. chmod does not stop root (tests may run as root), so the permission error is
    raised where the CLI first tries to create a file there."""
    import nst.cli.outputs as run_cmd

    ro = tmp_path / "ro"
    ro.mkdir()
    real_mkstemp = run_cmd.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == ro:
            raise PermissionError(13, "Permission denied", str(ro))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(run_cmd.tempfile, "mkstemp", mkstemp)
    line = error_line(nst_run(model_dir, content, style, "-o", ro / "out.png"), 1)
    assert "cannot write" in line and "ro" in line and "Permission denied" in line
    assert list(ro.iterdir()) == []


def test_missing_parent_directories_are_created(model_dir, content, style, tmp_path, nst_run, ok, pixels, runner):
    out = tmp_path / "a" / "b" / "out.png"
    ok(nst_run(model_dir, content, style, "-o", out, "--iterations", 1))
    assert pixels(out).shape == (36, SIZE, 3)
    help_text = " ".join(runner.invoke(app, ["--help"]).stdout.split())
    assert "missing parent directories are created" in help_text


def test_existing_output_untouched_when_the_run_fails(model_dir, content, style, tmp_path, nst_run, invoke, error_line):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    error_line(nst_run(model_dir, content, tmp_path / "missing-style.png", "-o", out), 1)
    error_line(nst_run(model_dir, content, style, "--tv-weight", 1e300, "-o", out), 1)
    error_line(invoke(content, style, "-o", out, model=tmp_path / "no-model"), 1)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
