"""bench/ still runs against the engine: every script's --help, every helper module's import, and one tiny engine
measurement, each in a subprocess of this Python, as `python bench/X.py` runs them (bench/ first on sys.path, the
siblings imported as top-level modules). The measurements themselves are minutes long and are not run here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__":' in p.read_text())
MODULES = sorted(p.stem for p in BENCH.glob("*.py") if p.name not in SCRIPTS)


def test_the_scripts_and_modules_are_found():
    # a glob that found nothing would make the tests below pass vacuously
    assert {"bench.py", "quality.py", "optimizer.py", "weight_scale.py"} <= set(SCRIPTS)
    assert {"children", "measure", "workload", "report", "memory_fit"} <= set(MODULES)


def test_every_script_answers_help():
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(BENCH / name), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in SCRIPTS
    }  # all at once: each pays its own imports
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{name}: {err}"
        assert out.startswith("usage:"), f"{name}: {out[:200]}"


def test_every_helper_module_imports():
    # `python -c` from bench/ puts bench/ first on sys.path, as running a script there does
    p = subprocess.run(
        [sys.executable, "-c", f"import {', '.join(MODULES)}"], cwd=BENCH, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr


def test_engine_child_measures_a_tiny_run(model_dir):
    """bench.py's engine child at 48 px: the split timings and a 2-iteration stylize with the engine's own L-BFGS
    record (no timing patched into the engine)."""
    args = ["--child", "engine", "--size", "48", "--iters", "2", "--repeats", "1", "--warmup", "0"]
    p = subprocess.run(
        [sys.executable, str(BENCH / "bench.py"), *args, "--model", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    (line,) = [ln for ln in p.stdout.splitlines() if ln.startswith("BENCH_JSON:")]  # measure.emit's tag
    r = json.loads(line.removeprefix("BENCH_JSON:"))
    assert r["kind"] == "engine" and r["split_s"]["total"] > 0
    run = r["stylize"]
    assert run["iterations"] == 2 and run["evaluations"] >= 2
    assert 0.0 < run["lbfgs_setup_seconds"] < run["lbfgs_seconds"] < run["seconds"]
    assert run["lbfgs_s_per_iteration"] > 0 and run["objective_s_per_evaluation"] > 0
