"""Regions (style masks): does each style stay in its region, and does the rest stay the photo? And at what cost?

    flock /tmp/nst-cpu.lock .venv/bin/python bench/regions_bench.py              # 256 px, both cases, both methods
    flock /tmp/nst-cpu.lock .venv/bin/python bench/regions_bench.py --size 384

Cases on ../shared/images (masks drawn here, in the content's frame):
  halves  starry_night on the left half of tubingen, the_scream on the right, a soft seam (10% of the width);
          run with --mask-method resize and inside, and without masks (the two styles blended) for the time.
  disc    starry_night inside a soft-edged disc, the rest left as the photo; with resize, and without a mask.
  whole   the yardstick's reference: each painting alone over the whole picture, no mask (starry_night's is the disc's
          run without a mask; the_scream's is one more run), measured with the plain Gram of the whole picture. A
          region's reduction is read against its style's here: what the same size and iterations reach without masks.
Per region (its mask at the final size, brought to the layers by "resize" for every run, so methods are measured
alike): the guided Gram's relative distance to its own style's Gram, photo -> output, squared (the reduction of the
style loss, as bench/quality.py measures the stills; the JSON also has the plain distance ratio), and the ratio of its
squared distance to the other style's Gram over its own. The uncovered part's mean absolute pixel difference to
the photo, at several distances from the region. Time: the optimisation's seconds and per evaluation against the run
without masks. Prints a Markdown table, writes bench/results/regions/{regions.json,contact.png}."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt

from nst.engine import StylizeOptions, load_image, load_model, resize, stylize
from nst.engine.images import fit_long_side, to_nchw
from nst.engine.plan import style_size
from nst.engine.regions import guided_gram, layer_masks
from nst.views.grid import Cell, draw_grid, save_picture

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
OUT = ROOT / "bench" / "results" / "regions"
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MARGINS = (0, 16, 32, 64)  # px from the region (mask >= 0.01) at the final size


def halves(h: int, w: int, seam: float = 0.10) -> tuple[np.ndarray, np.ndarray]:
    """Left and right halves with a linear ramp `seam` x width wide between them (they sum to 1)."""
    x = (np.arange(w) + 0.5) / w
    left = np.clip((0.5 - x) / seam + 0.5, 0.0, 1.0)
    m = np.repeat(left[None], h, axis=0).astype(np.float32)
    return m, (1.0 - m).astype(np.float32)


def disc(h: int, w: int, radius: float = 0.32, edge: float = 0.06) -> np.ndarray:
    """A disc of `radius` x the short side, centred a little right of the middle, with a linear edge `edge` wide."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(y - 0.5 * h, x - 0.55 * w) / min(h, w)
    return np.clip((radius - r) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def measure(model, photo, output, masks, targets, others) -> list[dict]:
    """Per region: Gram distances at every layer (photo, output) to its own target and the output's to the other."""
    fp = model.features(to_nchw(photo), keep_state=False)
    fo = model.features(to_nchw(output), keep_state=False)
    rows = []
    for m, own, other in zip(masks, targets, others):
        lm = layer_masks(m, model.manifest, LAYERS, "resize")
        row = {}
        for la in LAYERS:
            gp, go = guided_gram(fp[la], lm[la]), guided_gram(fo[la], lm[la])
            d_photo, d_out, d_other = rel(gp, own[la]), rel(go, own[la]), rel(go, other[la])
            # reduction: of the squared distance (the style loss), as bench/quality.py measures the stills;
            # distance_ratio: of the distance itself (its square root)
            row[la] = {
                "photo": d_photo,
                "output": d_out,
                "reduction": (d_photo / d_out) ** 2,
                "distance_ratio": d_photo / d_out,
                "other_over_own": (d_other / d_out) ** 2,
                "other_over_own_distance": d_other / d_out,
            }
        rows.append(row)
    return rows


def leak(photo: np.ndarray, output: np.ndarray, union: np.ndarray) -> dict[str, float | None]:
    """Mean |output - photo| over uncovered pixels at least `margin` px from the region."""
    away = distance_transform_edt(union < 0.01)
    diff = np.abs(output - photo).mean(axis=2)
    return {str(k): (float(diff[away > k].mean()) if np.any(away > k) else None) for k in MARGINS}


def whole(model, photo, output, target) -> dict:
    """The reference: the whole picture's Gram distance to the style's, photo -> output, with no mask."""
    fp = model.features(to_nchw(photo), keep_state=False)
    fo = model.features(to_nchw(output), keep_state=False)
    out = {}
    for la in LAYERS:
        d_photo, d_out = rel(guided_gram(fp[la], None), target[la]), rel(guided_gram(fo[la], None), target[la])
        out[la] = {
            "photo": d_photo,
            "output": d_out,
            "reduction": (d_photo / d_out) ** 2,
            "distance_ratio": d_photo / d_out,
        }
    return out


def style_grams(model, style: np.ndarray, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    feats = model.features(to_nchw(resize(style, hw)), keep_state=False)
    return {la: guided_gram(feats[la], None) for la in LAYERS}


def run(model, content, styles, options, masks) -> tuple[np.ndarray, dict]:
    t0 = time.perf_counter()
    r = stylize(model, content, styles, options, style_masks=masks)
    wall = time.perf_counter() - t0
    return r.image, {"seconds": r.seconds, "wall": wall, "evaluations": r.evaluations, "iterations": r.iterations}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=120)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "vgg19")
    ap.add_argument("--time-only", action="store_true", help="only the resize runs and their no-mask runs (the times)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, "cpu")
    content = load_image(SHARED / "tubingen.jpg")
    starry, scream = load_image(SHARED / "starry_night.jpg"), load_image(SHARED / "the_scream.jpg")
    hw = fit_long_side(*content.shape[:2], args.size)
    photo = resize(content, hw)
    grams = {
        name: style_grams(model, s, style_size(s.shape[:2], hw, 1.0))
        for name, s in (("starry_night", starry), ("the_scream", scream))
    }
    base = StylizeOptions(size=args.size, iterations=args.iterations, scales=1, device="cpu")
    H, W = content.shape[:2]
    left, right = halves(H, W)
    ring = disc(H, W)
    cases = [
        # name, styles, masks (content frame), method, names of the region's own / other style
        ("halves", [starry, scream], None, "resize", None),
        ("halves", [starry, scream], [left, right], "resize", ["starry_night", "the_scream"]),
        ("halves", [starry, scream], [left, right], "inside", ["starry_night", "the_scream"]),
        ("disc", [starry], None, "resize", None),
        ("disc", [starry], [ring], "resize", ["starry_night"]),
        ("whole", [scream], None, "resize", None),
    ]
    if args.time_only:
        cases = [c for c in cases if c[0] != "whole" and c[3] == "resize"]
    names = {id(starry): "starry_night", id(scream): "the_scream"}
    results, images, baseline, reference = [], {}, {}, {}
    for case, styles, masks, method, own in cases:
        options = dataclasses.replace(base, mask_method=method)
        label = f"{case} {method if masks else 'no mask'}"
        print(f"running {label} ...", flush=True)
        image, timing = run(model, content, styles, options, masks)
        images[label] = image
        if masks is None:
            baseline[case] = timing
            if len(styles) == 1:
                name = names[id(styles[0])]
                reference[name] = whole(model, photo, image, grams[name])
            continue
        assert own is not None  # a masked case names its regions' styles
        final = [resize_mask(m, hw) for m in masks]
        other = {"starry_night": "the_scream", "the_scream": "starry_night"}
        regions = measure(model, photo, image, final, [grams[n] for n in own], [grams[other[n]] for n in own])
        union = np.max(final, axis=0)
        b = baseline[case]
        results.append(
            {
                "case": case,
                "method": method,
                "regions": [{"style": n, "layers": r} for n, r in zip(own, regions)],
                "uncovered_share": float(np.mean(1.0 - union)),
                "uncovered_mad": leak(photo, image, union) if float(np.mean(union < 0.01)) > 0 else None,
                "timing": timing,
                "baseline": b,
                "time_ratio": timing["seconds"] / b["seconds"],
                "per_eval_ratio": (timing["seconds"] / timing["evaluations"]) / (b["seconds"] / b["evaluations"]),
            }
        )
    report = {"size": list(hw), "iterations": args.iterations, "results": results, "reference": reference}
    (OUT / "regions.json").write_text(json.dumps(report, indent=1))
    print_table(results, reference, hw)
    contact(content, [starry, scream], left, right, ring, images, hw)


def resize_mask(m: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from nst.engine.images import resize_grey

    return resize_grey(m, hw)


def print_table(results: list[dict], reference: dict[str, dict], hw: tuple[int, int]) -> None:
    print(f"\nRegions at {hw[1]}x{hw[0]} px, one stage (bench/regions_bench.py)\n")
    head = "| case | method | region | reduction relu1_1 / 2_1 / 3_1 / 4_1 / 5_1 | other / own relu1_1 / 2_1 / 3_1 |"
    print(head + " uncovered MAD at 0 / 16 / 32 / 64 px | time vs no mask (total, per evaluation) |")
    print("|" + "---|" * 7)
    for r in results:
        mad = r["uncovered_mad"]
        mad_text = " / ".join("-" if mad[k] is None else f"{mad[k]:.3f}" for k in map(str, MARGINS)) if mad else "-"
        for i, reg in enumerate(r["regions"]):
            L = reg["layers"]
            red = " / ".join(f"{L[la]['reduction']:.0f}" for la in LAYERS)
            oth = " / ".join(f"{L[la]['other_over_own']:.0f}" for la in LAYERS[:3])
            first = i == 0
            print(
                f"| {r['case'] if first else ''} | {r['method'] if first else ''} | {reg['style']} | {red} | {oth} | "
                f"{mad_text if first else ''} | "
                + (f"{r['time_ratio']:.2f}x, {r['per_eval_ratio']:.2f}x |" if first else " |")
            )
    for name, L in reference.items():
        red = " / ".join(f"{L[la]['reduction']:.0f}" for la in LAYERS)
        print(f"| whole | no mask | {name} | {red} | - | - | - |")


def contact(content, styles, left, right, ring, images, hw) -> None:
    """Rows: the halves and the disc; columns: content | masks | styles | outputs."""
    grey = lambda m: np.repeat(resize_mask(m, hw)[..., None], 3, axis=2)  # noqa: E731
    c = resize(content, hw)
    rows = [
        [
            Cell(c, "content"),
            Cell(grey(left), "mask 1"),
            Cell(grey(right), "mask 2"),
            Cell(styles[0], "style 1"),
            Cell(styles[1], "style 2"),
            Cell(images["halves no mask"], "no mask (blend)"),
            Cell(images["halves resize"], "resize"),
            Cell(images["halves inside"], "inside") if "halves inside" in images else None,
        ],
        [
            Cell(c, "content"),
            Cell(grey(ring), "mask 1"),
            None,
            Cell(styles[0], "style 1"),
            None,
            Cell(images["disc no mask"], "no mask"),
            Cell(images["disc resize"], "resize"),
            None,
        ],
    ]
    picture = draw_grid(rows, (hw[1], hw[0]), title="regions: content | masks | styles | outputs")
    save_picture(picture, OUT / "contact.png")
    print(f"\ncontact sheet: {OUT / 'contact.png'}")


if __name__ == "__main__":
    main()
