"""nst-batch executors (issue 12): 8 jobs of 256 px x 100 iterations, wall time per executor and split.

    flock /tmp/nst-cpu.lock .venv/bin/python bench/bench_batch.py [--model models/vgg19] [--size 256]
        [--iterations 100] [--configs local:1x2 local:2x1 ray:2x1] [--out bench/results/bench_batch.json]

The jobs: (tubingen, golden_gate) x (starry_night, the_scream) from ../shared/images, each twice (seed 0 and 1; with
the content init the seed changes nothing, so the 8 jobs cost the same two by two). Each configuration runs the same
8 jobs into a fresh folder through nst.batch.run_batch, the API nst-batch uses; `local:WxT` is W worker processes x T
onnxruntime threads, `ray:WxT` W Ray actors on a local Ray instance started by the run. Reported: wall time from
run_batch() to the last result (worker start-up and model loads included), jobs/hour, the mean job time, the model
load per worker (seconds of each worker's first job spent loading), and for Ray its start-up (ray.init, actors,
model shipped and loaded) before the first job. Skips (exit 0) without ../shared/images. Needs a quiet machine."""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
CONTENTS = ("tubingen.jpg", "golden_gate.jpg")
STYLES = ("starry_night.jpg", "the_scream.jpg")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "vgg19")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--configs", nargs="+", default=["local:1x2", "local:2x1", "ray:2x1"])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_batch.json")
    return p.parse_args(argv)


def write_pairs(folder: Path) -> Path:
    path = folder / "pairs.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["content", "style", "seed"])
        for seed in (0, 1):
            for c in CONTENTS:
                for s in STYLES:
                    w.writerow([SHARED / c, SHARED / s, seed])
    return path


def cpu_seconds() -> tuple[float, float]:
    """(busy seconds of the whole machine from /proc/stat, CPU seconds of this process and its reaped children)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_config(config: str, pairs: Path, model: Path, size: int, iterations: int, work: Path) -> dict:
    from nst.batch import build_jobs, run_batch
    from nst.engine.options import StylizeOptions, option_names

    kind, split = config.split(":")
    workers, threads = (int(v) for v in split.split("x"))
    extra = {"scales": 1} if "scales" in option_names() else {}  # one stage at 256 px, where the option exists
    options = StylizeOptions(size=size, iterations=iterations, **extra)
    outdir = Path(tempfile.mkdtemp(prefix=config.replace(":", "-") + ".", dir=work))  # a config may run twice
    jobs = build_jobs([], [], outdir, pairs_csv=pairs, base=options)
    busy0, ours0 = cpu_seconds()
    t0 = time.perf_counter()
    run = run_batch(jobs, outdir, options, model_dir=model, executor=kind, workers=workers, threads=threads)
    run.start()  # Ray: ray.init, actors, model shipped and loaded; local: the lock (workers start with the first job)
    startup = time.perf_counter() - t0
    results = list(run)
    wall = time.perf_counter() - t0
    busy1, ours1 = cpu_seconds()
    cores = len(os.sched_getaffinity(0))
    # CPU that other processes took during the run, as a share of the machine: a check that it was quiet. Not for
    # Ray: its workers are the raylet's children, not ours, so their CPU cannot be told from other processes'.
    others = max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (wall * cores) if kind == "local" else None
    failed = [f"{r.job.name} {r.status}: {r.error}" for r in results if r.status != "done"]
    if failed:
        raise SystemExit(f"{config}: {len(failed)} jobs failed, first: {failed[0]}")
    recs = [r.record for r in results]
    loads = [rec["load_seconds"] for rec in recs if rec.get("load_seconds")]
    if kind == "ray":
        loads = [w["load_seconds"] for w in getattr(run.executor, "setup", [])]
    return {
        "config": config,
        "executor": kind,
        "workers": workers,
        "threads": threads,
        "jobs": len(results),
        "wall_s": wall,
        "jobs_per_hour": len(results) / wall * 3600,
        "startup_s": startup,
        "job_mean_s": statistics.mean(rec["seconds"] for rec in recs),
        "optimise_mean_s": statistics.mean(rec["optimise_seconds"] for rec in recs),
        "model_load_per_worker_s": statistics.mean(loads) if loads else None,
        "iterations": [rec["iterations"] for rec in recs],
        "evaluations": [rec["evaluations"] for rec in recs],
        "sizes": sorted({tuple(rec["size"]) for rec in recs}),
        "other_processes_cpu_share": others,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| executor | workers × threads | wall | jobs/hour | mean job | model load per worker | Ray start-up | "
        "other processes' CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        load = "–" if r["model_load_per_worker_s"] is None else f"{r['model_load_per_worker_s']:.2f} s"
        startup = f"{r['startup_s']:.1f} s" if r["executor"] == "ray" else "–"
        share = r["other_processes_cpu_share"]
        others = "n/a" if share is None else f"{share:.0%}"
        lines.append(
            f"| {r['executor']} | {r['workers']} × {r['threads']} | {r['wall_s']:.0f} s | {r['jobs_per_hour']:.0f} | "
            f"{r['job_mean_s']:.1f} s | {load} | {startup} | {others} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not SHARED.is_dir():
        print(f"bench_batch: skipped: {SHARED} is not present on this machine")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="nst-bench-batch-") as tmp:
        pairs = write_pairs(Path(tmp))
        for config in args.configs:
            row = run_config(config, pairs, args.model, args.size, args.iterations, Path(tmp))
            print(f"{config}: {row['wall_s']:.1f} s", file=sys.stderr, flush=True)
            rows.append(row)
    import onnxruntime

    result = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "size": args.size,
        "iterations": args.iterations,
        "rows": rows,
    }
    try:
        import ray

        result["ray"] = ray.__version__
    except ImportError:
        pass
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    print(f"\n{result['date']}, {result['affinity']} cores; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
