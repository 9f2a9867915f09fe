"""Where the weight-scale warning's bounds come from (engine/weight_scale.py LOW and HIGH): a sweep of r =
(beta/alpha) / the recommended ratio, and what each r does to the image.

    flock /tmp/nst-cpu.lock .venv/bin/python bench/weight_scale.py              # ~2 min on 2 cores
    .venv/bin/python bench/weight_scale.py --ratios 1e-4 1 1e4 --size 64 --iterations 20

Each r is one stylize() run from the content photo, one scale, the default (auto) layer weights, alpha = the
manifest's content weight and beta = r x its style weight. Per r: how much closer the output's Gram matrices are to
the style's than the photo's were, per style layer and the least of relu1_1..relu4_1 (bench/quality.py's measure;
relu5_1 is left out of the least because at small sizes its few positions make its Gram reduction noisy), J_content
against r = 1's, and whether L-BFGS stopped before the iterations asked (result.early_stop). Then the bounds
engine/weight_scale.py takes: LOW, the largest r whose least reduction is under 2x (the style was not transferred);
and where the content weight stops acting, the smallest r from which J_content and every layer's reduction stay
within 5% of the largest r's. Also printed: the smallest r whose J_content is over 20x r = 1's (the content lost),
if any. Needs ../shared/images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from quality import SHARED, measure

from nst.engine import load_image, load_model, read_manifest, stylize
from nst.engine.weight_scale import weight_scale_warnings

ROOT = Path(__file__).resolve().parents[1]
RATIOS = [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4]
LEAST_OF = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
NO_STYLE = 2.0  # least Gram reduction below this: the output is still the photo
NO_CONTENT = 20.0  # J_content over this many times the recommended run's: the layout is gone
SAME = 0.05  # figures within this of the largest r's: raising beta further changes nothing


def bounds(rows: list[dict]) -> dict[str, float | None]:
    """The rules above over rows sorted by r (each with reduction, least_reduction, J_content and
    content_vs_recommended); None where no swept r qualifies."""
    low = [r["ratio"] for r in rows if r["least_reduction"] < NO_STYLE]
    lost = [r["ratio"] for r in rows if r["content_vs_recommended"] > NO_CONTENT]
    last = rows[-1]

    def same(row: dict) -> bool:
        pairs = [(row["J_content"], last["J_content"])]
        pairs += [(row["reduction"][k], v) for k, v in last["reduction"].items()]
        return all(abs(a - b) <= SAME * abs(b) for a, b in pairs)

    inert = None
    for row in reversed(rows):
        if not same(row):
            break
        inert = row["ratio"]
    return {
        "low": max(low) if low else None,
        "content_inert": inert if inert != last["ratio"] else None,
        "content_lost": min(lost) if lost else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratios", type=float, nargs="+", default=RATIOS, help="r values; 1 is always added")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--pair", default="tubingen:starry_night", help="content:style stems in ../shared/images")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "vgg19")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"{SHARED} is missing: this benchmark needs the shared test images", file=sys.stderr)
        return 1
    model, m = load_model(args.model, "cpu"), read_manifest(args.model)
    c_stem, s_stem = args.pair.split(":")
    content, style = load_image(SHARED / f"{c_stem}.jpg"), load_image(SHARED / f"{s_stem}.jpg")
    layers = list(m.default_style_layers)
    rows = []
    for ratio in sorted({*args.ratios, 1.0}):
        alpha, beta = m.content_weight, ratio * m.style_weight
        r = stylize(
            model,
            content,
            [style],
            size=args.size,
            scales=1,
            iterations=args.iterations,
            content_weight=alpha,
            style_weight=beta,
        )
        q = measure(model, content, style, r.image, layers, m.default_content_layer)
        rows.append(
            {
                "ratio": ratio,
                "style_weight": beta,
                "reduction": q["reduction"],
                "least_reduction": min(q["reduction"][layer] for layer in LEAST_OF),
                "J_content": q["J_content"],
                "iterations": r.iterations,
                "early_stop": r.early_stop,
                "warns": bool(weight_scale_warnings(alpha, beta, m.content_weight, m.style_weight, True)),
            }
        )
    j1 = next(row["J_content"] for row in rows if row["ratio"] == 1.0)
    print(f"{args.pair} at {args.size} px, {args.iterations} iterations, one scale, auto layer weights\n")
    head = ["r", *[f"{layer} ×" for layer in layers], "least ×", "J_content", "÷ r=1", "early stop", "warned"]
    print("| " + " | ".join(head) + " |")
    print("|---" * len(head) + "|")
    for row in rows:
        row["content_vs_recommended"] = row["J_content"] / max(j1, 1e-30)
        print(
            f"| {row['ratio']:g} | "
            + " | ".join(f"{row['reduction'][layer]:.3g}" for layer in layers)
            + f" | {row['least_reduction']:.3g} | {row['J_content']:.3g} | {row['content_vs_recommended']:.3g} | "
            + f"{(row['early_stop'] or 'no').split(':')[0]} | {'yes' if row['warns'] else 'no'} |"
        )
    found = bounds(rows)
    print(f"\nLOW, the largest r with least reduction < {NO_STYLE:g}x: {found['low']}")
    print(
        f"the content weight inert (every figure within {SAME:.0%} of the largest r's) from r =", found["content_inert"]
    )
    print(f"the smallest r with J_content > {NO_CONTENT:g}x r=1's: {found['content_lost']}")
    if args.json:
        args.json.write_text(json.dumps({"pair": args.pair, "size": args.size, "rows": rows, "bounds": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
