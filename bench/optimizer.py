"""scipy's L-BFGS-B inside real runs (issue 13): its own time per iteration for --maxcor 5/10/20, with the box
constraints (--bounds box) and without them (--bounds clip), and what each does to the image (J, J_content, the
per-layer Gram reductions of bench/quality.py).

    .venv/bin/python bench/optimizer.py                          # tubingen + starry_night, 512 px, one stage
    .venv/bin/python bench/optimizer.py --size 384 --maxcor 10 20 --bounds box

Each run is a one-stage stylize() at --size (the variables are every pixel-channel: 512x384 = 590k), in this
process, one after another. "L-BFGS ms/it" and "setup s" are the engine's own record of the stage
(workload.lbfgs_figures): its time outside the objective (scipy's L-BFGS-B, the float64<->float32 conversions and the
per-iteration callback) less minimize()'s one-time setup, over its iterations; and that setup. Needs
../shared/images."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from quality import SHARED, measure
from workload import lbfgs_figures

from nst.engine import load_image, load_model, read_manifest, save_image, stylize

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--maxcor", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--bounds", nargs="+", default=["box", "clip"], choices=["box", "clip"])
    ap.add_argument("--pair", default="tubingen:starry_night")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "vgg19")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "optimizer")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"{SHARED} is missing: this benchmark needs the shared test images", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    model, m = load_model(args.model, "cpu"), read_manifest(args.model)
    c_stem, s_stem = args.pair.split(":")
    content, style = load_image(SHARED / f"{c_stem}.jpg"), load_image(SHARED / f"{s_stem}.jpg")
    rows = []
    print(
        "| maxcor | bounds | L-BFGS ms/it | setup s | objective ms/eval | evals/it | J | J_content | "
        + " | ".join(f"{layer} ×" for layer in m.default_style_layers)
        + " |"
    )
    for maxcor in args.maxcor:
        for bounds in args.bounds:
            t0 = time.perf_counter()
            r = stylize(
                model,
                content,
                [style],
                size=args.size,
                scales=1,
                iterations=args.iterations,
                maxcor=maxcor,
                bounds=bounds,
            )
            lbfgs = lbfgs_figures(r.stages[0])
            save_image(r.image, args.out / f"maxcor{maxcor}_{bounds}.png")
            q = measure(model, content, style, r.image, list(m.default_style_layers), m.default_content_layer)
            row = {
                "maxcor": maxcor,
                "bounds": bounds,
                "iterations": r.iterations,
                "evaluations": r.evaluations,
                **lbfgs,
                "loss": r.loss,
                "wall_s": time.perf_counter() - t0,
                **q,
            }
            rows.append(row)
            print(
                f"| {maxcor} | {bounds} | {1e3 * lbfgs['lbfgs_s_per_iteration']:.0f} | "
                f"{lbfgs['lbfgs_setup_seconds']:.1f} | {1e3 * lbfgs['objective_s_per_evaluation']:.0f} | "
                f"{r.evaluations / r.iterations:.2f} | {r.loss:.4g} | {q['J_content']:.3g} | "
                + " | ".join(f"{q['reduction'][layer]:.0f}" for layer in m.default_style_layers)
                + " |",
                flush=True,
            )
    (args.out / "optimizer.json").write_text(json.dumps({"size": args.size, "pair": args.pair, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
