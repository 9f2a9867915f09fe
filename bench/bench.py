"""nst benchmark (issue 5): the engine (onnxruntime + NumPy + scipy) against the torch autograd reference and pastiche.

    .venv/bin/python bench/bench.py [--quick] [--sizes 128 256 512] [--repeats N] [--large] [--confirm SIZE]
                                    [--out bench/results/bench.json]

Every measurement runs in its own child process (`bench.py --child engine|torch|pastiche|peak --size S`, see
children.py), so peak RSS belongs to one implementation only. This parent runs them size by size, adds FLOP rates and
ratios (report.py) and the memory fit (memory_fit.py), writes one JSON file and prints Markdown tables and the
targets, which are reported, never asserted. What each column means: bench/README.md.

bench.py is also every child's entry point, and a child must load only what it measures (see children.py), so the
modules that import nst are imported inside the parent's functions.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
import time
from pathlib import Path

from measure import ROOT, cores, machine_info, run_child, versions

DEFAULT_OUT = ROOT / "bench" / "results" / "bench.json"
SEMANTICS = {
    "evaluation": "one J and dJ/dimage at the same image (engine: Objective.__call__; torch: TorchObjective.__call__)",
    "engine_iteration": "one scipy L-BFGS-B iteration (maxcor 20, bounds [0, 1]); may take more than one evaluation "
    "(line search)",
    "pastiche_step": "one torch.optim.LBFGS step with max_iter=1, lr=1: exactly one evaluation, no line search, no "
    "bounds",
    "engine_vs_pastiche": "engine median s/iteration ÷ pastiche median s/step, same size, same number of "
    "iterations/steps",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", help="square sizes (default 128 256 512; --quick: 128 256)")
    p.add_argument("--large", action="store_true", help="also 1024² in the main comparison")
    p.add_argument("--repeats", type=int, help="timed evaluations per size (default 5; --quick: 2)")
    p.add_argument(
        "--iters",
        type=int,
        help="L-BFGS iterations / pastiche steps (default 10 to 256², 5 to 512², 3 above; --quick: 3)",
    )
    p.add_argument(
        "--scaling",
        type=int,
        nargs="*",
        help="extra engine-only sizes for the time/memory scaling series (default 384 640 768; --quick: 384)",
    )
    p.add_argument(
        "--confirm",
        type=int,
        metavar="SIZE",
        help="also two engine evaluations at SIZE² to check the memory fit there (0 = the computed largest "
        "square, which uses most of the RAM)",
    )
    p.add_argument(
        "--arena",
        choices=("shared", "session", "off"),
        default="shared",
        help="onnxruntime's CPU memory for the engine children (nst.engine.load_model's arena; default: the engine's)",
    )
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-pastiche", action="store_true")
    p.add_argument("--model", default=str(ROOT / "models" / "vgg19"))
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--quick", action="store_true", help="~1-2 minute smoke run: 128² and 256², 2 repeats, 3 iterations")
    p.add_argument("--child", choices=("engine", "torch", "pastiche", "peak"), help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--images", nargs=2, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def iters_for(size: int, quick: bool) -> int:
    """L-BFGS iterations / pastiche steps per size: enough to time, few enough to stay within minutes."""
    if quick:
        return 3
    return 10 if size <= 256 else 5 if size <= 512 else 3


def measure_size(s: int, iters: int, a: argparse.Namespace, manifest, tmp: Path, log) -> dict:
    """engine, torch and pastiche at s², each in its own child."""
    from report import flops_per_eval
    from workload import bench_images

    from nst.engine import save_image

    common = ["--size", str(s), "--iters", str(iters), "--model", a.model, "--repeats", str(a.repeats)]
    r: dict = {"flops": flops_per_eval(manifest, s, s), "iterations": iters}
    log(f"{s}²: engine")
    r["engine"] = run_child(["--child", "engine", *common, "--arena", a.arena])
    if not a.no_torch:
        log(f"{s}²: torch reference")
        r["torch"] = run_child(["--child", "torch", *common])
    if not a.no_pastiche:
        log(f"{s}²: pastiche CLI")
        content, style, _ = bench_images(s)  # pastiche reads files: the same pixels, as PNG
        pngs = [str(save_image(img, tmp / f"{name}{s}.png")) for name, img in (("content", content), ("style", style))]
        r["pastiche"] = run_child(["--child", "pastiche", "--size", str(s), "--iters", str(iters), "--images", *pngs])
    for k in ("engine", "torch", "pastiche"):
        if "error" in r.get(k, {}):
            log(r[k]["error"])
    return r


def scaling_points(res: dict, scaling: list[int], a: argparse.Namespace, log) -> tuple[list[dict], int]:
    """Evaluation-loop peak RSS and time at the main sizes plus engine-only children at the scaling sizes."""
    points, weights_bytes = [], 0
    engines = [(s, res["per_size"][str(s)]["engine"]) for s in res["sizes"]]
    for s in scaling:
        log(f"{s}²: engine (scaling series)")
        e = run_child(
            [
                "--child",
                "engine",
                "--size",
                str(s),
                "--iters",
                "0",
                "--repeats",
                "2",
                "--warmup",
                "1",
                "--model",
                a.model,
                "--arena",
                a.arena,
            ]
        )
        res["scaling"][str(s)] = e
        engines.append((s, e))
    for s, e in engines:
        if "error" in e:
            log(e["error"])
            continue
        points.append(
            {
                "size": s,
                "pixels": s * s,
                "peak_rss_eval_bytes": e["peak_rss_eval_bytes"],
                "s_per_eval": e["split_s"]["total"],
                **({"peak_rss_bytes": e["peak_rss_bytes"]} if s in res["sizes"] else {}),
            }
        )
        weights_bytes = e["weights_bytes"]
    return sorted(points, key=lambda q: q["pixels"]), weights_bytes


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.child:
        import children

        children.run(a)
        return 0
    from memory_fit import fit_prediction, memory_analysis
    from report import derive, evaluate_targets, report
    from workload import MAXCOR

    from nst.engine import ModelError, read_manifest
    from nst.engine.memory import available_bytes

    t_all = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_all:6.1f}s] {msg}", file=sys.stderr, flush=True)

    sizes = sorted(set((a.sizes or ([128, 256] if a.quick else [128, 256, 512])) + ([1024] if a.large else [])))
    a.repeats = a.repeats or (2 if a.quick else 5)
    scaling = sorted(set(a.scaling if a.scaling is not None else [384] if a.quick else [384, 640, 768]) - set(sizes))
    try:
        manifest = read_manifest(a.model)
    except ModelError as e:
        print(f"bench.py: {e}", file=sys.stderr)
        return 2
    machine = machine_info()
    res: dict = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions(),
        "model": {"path": a.model, "id": manifest.id, "taps": list(manifest.taps)},
        "settings": {
            "sizes": sizes,
            "repeats": a.repeats,
            "warmup": 2,
            "scaling_extra": scaling,
            "maxcor": MAXCOR,
            "quick": a.quick,
            "threads": cores(),
            "iterations": {str(s): a.iters or iters_for(s, a.quick) for s in sizes},
        },
        "semantics": SEMANTICS,
        "sizes": sizes,
        "per_size": {},
        "scaling": {},
    }
    log("measuring GEMM peak")
    res["peak"] = run_child(["--child", "peak"])
    with tempfile.TemporaryDirectory(prefix="nst-bench-") as tmp:  # pastiche's input images
        for s in sizes:
            r = measure_size(s, a.iters or iters_for(s, a.quick), a, manifest, Path(tmp), log)
            derive(r, res["peak"].get("peak_gflops"))
            res["per_size"][str(s)] = r
    points, weights_bytes = scaling_points(res, scaling, a, log)
    res["memory"] = memory_analysis(manifest, points, weights_bytes, available_bytes(), bool(machine.get("SwapTotal")))
    if a.confirm is not None:
        side = a.confirm or (res["memory"].get("largest_square") or {}).get("side")
        if side:
            log(f"{side}²: confirmation run (two evaluations)")
            # two evaluations: the peak settles on the second (the first call's state is still held during it)
            res["confirm"] = run_child(
                [
                    "--child",
                    "engine",
                    "--size",
                    str(side),
                    "--iters",
                    "0",
                    "--repeats",
                    "1",
                    "--warmup",
                    "1",
                    "--model",
                    a.model,
                ],
                timeout=3600,
            )
            res["confirm"].update(size=side, fit_predicted_bytes=fit_prediction(res["memory"], side))
    res["targets"] = evaluate_targets(res)
    res["seconds"] = time.perf_counter() - t_all
    res["report"] = text = report(res)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(text)
    print(f"\nwrote {out} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
