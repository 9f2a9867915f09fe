"""nst-batch running on the local executor: records, resume after an interruption, a corrupt image among good ones, a
worker killed mid-job, Ctrl-C, one-line errors. Tiny images (48 px working size), a few iterations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst.batch import RECORD_FILE, build_jobs, run_batch
from nst.batch.record import batch_lock, read_lines
from nst.cli.batch_cmd import app
from nst.engine.options import StylizeOptions

SIZE = 48
runner = CliRunner()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """photos/c0..c2.png (40x60) and styles/s.png; bad/ holds one good photo and one corrupt file."""
    d = tmp_path_factory.mktemp("batch-inputs")
    (d / "photos").mkdir()
    (d / "styles").mkdir()
    (d / "bad").mkdir()
    for i in range(3):
        rng = np.random.default_rng(i)
        y, x = np.mgrid[0:40, 0:60]
        img = np.stack([x / 60, y / 40, 0.5 + 0.5 * np.sin(x / (3 + i))], -1) + 0.1 * rng.standard_normal((40, 60, 3))
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(d / "photos" / f"c{i}.png")
    stripes = np.zeros((48, 48, 3), np.uint8)
    stripes[:, ::6] = (230, 180, 30)
    stripes[::6, :] = (30, 50, 200)
    Image.fromarray(stripes).save(d / "styles" / "s.png")
    (d / "bad" / "good.png").write_bytes((d / "photos" / "c0.png").read_bytes())
    (d / "bad" / "broken.png").write_bytes((d / "photos" / "c1.png").read_bytes()[:100])  # truncated PNG
    return d


def nst_batch(model_dir: Path, *args: object):
    result = runner.invoke(app, ["--model", str(model_dir), "--size", str(SIZE), "-q", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def error_line(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("nst-batch: error: "), result.stderr
    return lines[0]


def records(outdir: Path) -> list[dict]:
    return read_lines(outdir / RECORD_FILE)


def test_batch_writes_outputs_and_records(model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    r = nst_batch(
        model_dir, inputs / "photos", "--style", inputs / "styles/s.png", "-o", out, "--iterations", 3, "--workers", 2
    )
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    names = sorted(p.name for p in out.iterdir())
    assert names == [".batch.lock", "batch.jsonl", "c0__s.png", "c1__s.png", "c2__s.png"]
    with Image.open(out / "c0__s.png") as im:
        assert im.size == (SIZE, 32) and im.mode == "RGB"
    recs = records(out)
    assert sorted(rec["job"] for rec in recs) == ["c0__s.png", "c1__s.png", "c2__s.png"]
    for rec in recs:
        assert rec["status"] == "done" and rec["error"] is None and rec["attempts"] == 1
        assert rec["options"]["iterations"] == 3 and rec["options"]["size"] == SIZE
        assert rec["iterations"] == 3 and rec["loss"] > 0 and rec["seconds"] > 0 and rec["size"] == [32, SIZE]
        assert rec["content"] == str((inputs / "photos" / rec["job"].split("__")[0]).with_suffix(".png").resolve())
        for key in ("model", "terms", "evaluations", "provider", "worker", "finished", "executor", "output"):
            assert key in rec, key
    assert len({rec["worker"] for rec in recs}) == 2  # two worker processes shared the jobs


def test_resume_after_interruption_skips_done_and_redoes_the_rest(model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    args = [inputs / "photos", "-s", inputs / "styles/s.png", "-o", out, "--iterations", 3, "--workers", 1]
    assert nst_batch(model_dir, *args).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    # Simulate a run killed while writing c2: its output is a half-written temporary file, its record missing, and
    # the jsonl ends in a torn line.
    (out / "c2__s.png").unlink()
    lines = (out / RECORD_FILE).read_text().splitlines(keepends=True)
    kept = [ln for ln in lines if '"c2__s.png"' not in ln]
    (out / RECORD_FILE).write_text("".join(kept) + '{"job":"c2__s.png","status":"do')
    tmp = out / ".c2__s.png.x7k2p9q1.tmp"
    tmp.write_bytes(b"\x89PNG\r\n\x1a\nhalf")
    r = runner.invoke(app, ["--model", str(model_dir), "--size", str(SIZE), "-v", *map(str, args)])
    assert r.exit_code == 0, r.output
    assert "skipped c0__s.png" in r.stdout and "skipped c1__s.png" in r.stdout and "done    c2__s.png" in r.stdout
    assert "3 jobs: 1 done, 2 skipped" in r.stdout
    assert not tmp.exists()
    assert (out / "c2__s.png").is_file()
    assert all((out / n).stat().st_mtime_ns == t for n, t in before.items() if n != "c2__s.png")
    # other options: nothing is done with them yet; --force redoes everything
    r = nst_batch(model_dir, *args[:-2], "--workers", 2, "--iterations", 4, "-v")
    assert r.exit_code == 0
    assert [rec["options"]["iterations"] for rec in records(out)][-3:] == [4, 4, 4]
    assert nst_batch(model_dir, *args[:-2], "--workers", 2, "--iterations", 4, "--force").exit_code == 0
    assert len(records(out)) == 2 + 1 + 3 + 3  # first run less c2, the redone c2, new options, --force


def test_corrupt_image_is_recorded_and_the_others_done(model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    r = nst_batch(
        model_dir, inputs / "bad", inputs / "photos/c1.png", "-s", inputs / "styles/s.png", "-o", out, "--iterations", 2
    )
    line = error_line(r, 1)
    assert "1 of 3 jobs failed" in line and "broken__s.png" in line and "2 done" in line
    assert str(out / RECORD_FILE) in line
    by_job = {rec["job"]: rec for rec in records(out)}
    assert by_job["broken__s.png"]["status"] == "failed"
    assert "broken.png" in by_job["broken__s.png"]["error"] and "\n" not in by_job["broken__s.png"]["error"]
    assert by_job["good__s.png"]["status"] == by_job["c1__s.png"]["status"] == "done"
    assert (out / "good__s.png").is_file() and (out / "c1__s.png").is_file() and not (out / "broken__s.png").exists()


def _killer(run, kills: int, stop: threading.Event) -> threading.Thread:
    """Kill the worker running the job, `kills` times, a moment after each attempt starts (mid-job: the model is
    still loading or the optimisation running)."""

    def loop() -> None:
        killed: set[int] = set()
        while len(killed) < kills and not stop.is_set():
            for slot in list(getattr(run.executor, "slots", [])):
                pid = slot.process.pid
                if slot.task is not None and pid not in killed:
                    time.sleep(0.3)
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kills, status", [(1, "done"), (2, "failed")])
def test_worker_killed_mid_job_is_retried_once(model_dir, inputs, tmp_path, kills, status):
    jobs = build_jobs([inputs / "photos/c0.png"], [inputs / "styles/s.png"], tmp_path / "out")
    run = run_batch(jobs, tmp_path / "out", StylizeOptions(size=SIZE, iterations=30), model_dir=model_dir, workers=1)
    stop = threading.Event()
    thread = _killer(run, kills, stop)
    try:
        (result,) = list(run)
    finally:
        stop.set()
        thread.join()
    assert result.status == status and result.attempts == 2, result.error
    (rec,) = records(tmp_path / "out")
    assert rec["status"] == status and rec["attempts"] == 2
    if status == "failed":
        assert "worker process died (killed by SIGKILL" in rec["error"] and "2 attempts" in rec["error"]
    assert (tmp_path / "out" / "c0__s.png").exists() == (status == "done")


WRAPPER = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # background shells start children with SIGINT ignored
sys.argv = ['nst-batch', *sys.argv[1:]]
from nst.cli.batch_cmd import main
main()
"""


def test_ctrl_c_stops_cleanly_and_a_rerun_continues(model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    jobs = [inputs / "photos", "-s", inputs / "styles/s.png", "-s", inputs / "bad/good.png", "-o", out]
    args = [*jobs, "--model", model_dir, "--size", SIZE, "--iterations", 25, "--workers", 1, "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not records(out) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group gets SIGINT
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst-batch: interrupted: "), stderr
    assert "rerun the same command to continue" in lines[0]
    done = {rec["job"] for rec in records(out) if rec["status"] == "done"}
    assert 1 <= len(done) < 6
    assert {p.name for p in out.glob("*.png")} == done  # finished outputs kept, nothing else written
    assert not list(out.glob(".*.tmp"))
    r = nst_batch(model_dir, *jobs, "--iterations", 25)
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("*.png"))) == 6
    finished = [rec["job"] for rec in records(out) if rec["status"] == "done"]
    assert sorted(finished) == sorted(set(finished)) and len(finished) == 6  # nothing done twice


def test_command_line_errors_are_one_line(model_dir, inputs, tmp_path):
    out = tmp_path / "out"
    style = inputs / "styles/s.png"
    assert "--style" in error_line(nst_batch(model_dir, inputs / "photos", "-o", out), 2)
    assert "matches no file" in error_line(nst_batch(model_dir, str(inputs / "*.nope"), "-s", style, "-o", out), 2)
    assert "--executor ray" in error_line(
        nst_batch(model_dir, inputs / "photos", "-s", style, "-o", out, "--address", "auto"), 2
    )
    assert "--iterations" in error_line(
        nst_batch(model_dir, inputs / "photos", "-s", style, "-o", out, "--iterations", 0), 2
    )
    assert "executor" in error_line(
        nst_batch(model_dir, inputs / "photos", "-s", style, "-o", out, "--executor", "spark"), 2
    )
    assert "nst-export" in error_line(nst_batch(tmp_path / "no-model", inputs / "photos", "-s", style, "-o", out), 1)
    out.mkdir()
    with batch_lock(out):
        assert "another nst-batch" in error_line(nst_batch(model_dir, inputs / "photos", "-s", style, "-o", out), 1)


BLOCK_RAY = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'ray':
            raise ImportError('ray is blocked in this test')
sys.meta_path.insert(0, Block())
"""


def test_executor_ray_without_ray_names_the_extra(model_dir, inputs, tmp_path):
    code = BLOCK_RAY + WRAPPER
    args = [
        inputs / "photos",
        "-s",
        inputs / "styles/s.png",
        "-o",
        tmp_path / "out",
        "--model",
        model_dir,
        "--executor",
        "ray",
    ]
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert (
        r.stderr.strip() == "nst-batch: error: --executor ray needs Ray, which is not installed: pip install 'nst[ray]'"
    )


def test_api_yields_results_as_they_finish(model_dir, inputs, tmp_path):
    jobs = build_jobs([inputs / "photos/c0.png", inputs / "photos/c1.png"], [inputs / "styles/s.png"], tmp_path)
    run = run_batch(jobs, tmp_path, StylizeOptions(size=SIZE, iterations=2), model_dir=model_dir, workers=1)
    assert (run.total, len(run.todo), len(run.skipped)) == (2, 2, 0)
    results = list(run)
    assert sorted(r.job.name for r in results) == ["c0__s.png", "c1__s.png"]
    assert all(r.status == "done" and r.seconds > 0 and r.record["loss"] > 0 for r in results)
    again = run_batch(jobs, tmp_path, StylizeOptions(size=SIZE, iterations=2), model_dir=model_dir)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert json.loads((tmp_path / RECORD_FILE).read_text().splitlines()[0])["job"] in ("c0__s.png", "c1__s.png")
