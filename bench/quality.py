"""What the defaults give (issue 10): per style layer, how much closer the output's Gram matrix is to the style's
than the content photo's was; J_content; wall time and peak RSS; a contact sheet to look at.

    .venv/bin/python bench/quality.py                       # 4 pairs at 512 px: new defaults vs round 1's
    .venv/bin/python bench/quality.py --size 256 --pairs tubingen:starry_night --configs default
    .venv/bin/python bench/quality.py --pairs golden_gate:the_scream --configs luminance histogram   # colours

Configurations are nst-run option lists (CONFIGS); each run is its own `nst-run` process under /usr/bin/time, so
wall time and peak RSS belong to that run alone. Needs ../shared/images. Writes bench/results/quality/ (images,
quality.json, contact.png) and prints a Markdown table."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nst.engine import load_image, load_model, read_manifest, resize
from nst.engine.images import fit_long_side, to_nchw
from nst.engine.losses import content_loss, gram

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
NST_RUN = Path(sys.executable).with_name("nst-run")
PAIRS = ["tubingen:starry_night", "tubingen:the_scream", "golden_gate:starry_night", "golden_gate:the_scream"]
# round 1's defaults, spelled out: one scale, equal layer weights, beta 1e-3, 300 iterations from the content
ROUND1 = [
    "--scales",
    "1",
    "--style-layer-weights",
    "equal",
    "--style-weight",
    "1e-3",
    "--iterations",
    "300",
    "--init",
    "content",
]
CONFIGS = {
    "round1": ROUND1,
    "default": [],
    "lbfgs": ["--optimizer", "lbfgs"],  # the array-API L-BFGS in place of scipy's L-BFGS-B
    "luminance": ["--preserve-colors", "luminance"],
    "histogram": ["--preserve-colors", "histogram"],
}
DEFAULT_CONFIGS = ["round1", "default"]  # the colour modes on request: --configs default luminance histogram


def run(content: Path, style: Path, out: Path, size: int, extra: list[str], model: Path) -> dict:
    """One nst-run process; its wall time and peak RSS (GNU time's %e and %M)."""
    log = out.with_suffix(".json")
    cmd = [
        "/usr/bin/time",
        "-f",
        "%e %M",
        str(NST_RUN),
        str(content),
        str(style),
        "-o",
        str(out),
        "--size",
        str(size),
        "--model",
        str(model),
        "--log-json",
        str(log),
        "-q",
        *extra,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    wall, kb = p.stderr.strip().splitlines()[-1].split()
    return {"seconds": float(wall), "peak_mb": int(kb) / 1024, "log": json.loads(log.read_text())}


def measure(model, content: np.ndarray, style: np.ndarray, out: np.ndarray, layers, content_layer) -> dict:
    """Gram distances to the style at the output's size: photo -> output reduction per layer, and J_content."""
    size = out.shape[:2]
    c = resize(content, size)
    s = resize(style, fit_long_side(*style.shape[:2], max(size)))
    fc, fs, fo = (model.features(to_nchw(a), keep_state=False) for a in (c, s, out))
    red = {}
    for layer in layers:
        gs = gram(fs[layer]).astype(np.float64)
        d_photo = float(np.sum((gram(fc[layer]) - gs) ** 2))
        d_out = float(np.sum((gram(fo[layer]) - gs) ** 2))
        red[layer] = d_photo / max(d_out, 1e-30)
    jc, _ = content_loss(fo[content_layer], fc[content_layer])
    return {"reduction": red, "J_content": jc}


def label(image: np.ndarray, text: str, width: int) -> Image.Image:
    im = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, im.height + 16), "white")
    canvas.paste(im, (0, 16))
    ImageDraw.Draw(canvas).text((3, 2), text, fill="black")
    return canvas


def contact_sheet(rows: list[list[Image.Image]], path: Path) -> None:
    w = sum(cell.width for cell in rows[0]) + 4 * (len(rows[0]) - 1)
    heights = [max(cell.height for cell in row) for row in rows]
    sheet = Image.new("RGB", (w, sum(heights) + 4 * (len(rows) - 1)), "white")
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for cell in row:
            sheet.paste(cell, (x, y))
            x += cell.width + 4
        y += h + 4
    sheet.save(path)


def table(results: list[dict], layers: list[str]) -> str:
    head = ["pair", "config", *[f"{layer} ×" for layer in layers], "J_content", "wall s", "peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [
            r["pair"],
            r["config"],
            *[f"{r['reduction'][layer]:.0f}" for layer in layers],
            f"{r['J_content']:.3g}",
            f"{r['seconds']:.0f}",
            f"{r['peak_mb']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--pairs", nargs="+", default=PAIRS, help="content:style stems in ../shared/images")
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "vgg19")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality")
    ap.add_argument("--extra", default="", help="more nst-run options for every run, e.g. '--maxcor 10'")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"{SHARED} is missing: this benchmark needs the shared test images", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, "cpu")
    m = read_manifest(args.model)
    layers, results, rows = list(m.default_style_layers), [], []
    t0 = time.time()
    for pair in args.pairs:
        c_stem, s_stem = pair.split(":")
        c_path, s_path = SHARED / f"{c_stem}.jpg", SHARED / f"{s_stem}.jpg"
        content, style = load_image(c_path), load_image(s_path)
        cells = [
            label(resize(content, fit_long_side(*content.shape[:2], 256)), c_stem, 256),
            label(resize(style, fit_long_side(*style.shape[:2], 256)), s_stem, 256),
        ]
        for name in args.configs:
            out = args.out / f"{c_stem}__{s_stem}__{name}.png"
            facts = run(c_path, s_path, out, args.size, [*CONFIGS[name], *args.extra.split()], args.model)
            q = measure(model, content, style, load_image(out), layers, m.default_content_layer)
            results.append(
                {
                    "pair": pair,
                    "config": name,
                    **q,
                    "seconds": facts["seconds"],
                    "peak_mb": facts["peak_mb"],
                    "stages": facts["log"].get("stages"),
                }
            )
            print(table(results[-1:], layers).splitlines()[-1], flush=True)
            cells.append(label(load_image(out), f"{name}: {facts['seconds']:.0f} s", 384))
        rows.append(cells)
    contact_sheet(rows, args.out / "contact.png")
    (args.out / "quality.json").write_text(json.dumps({"size": args.size, "results": results}, indent=1))
    print(f"\n{table(results, layers)}\n\ncontact sheet: {args.out / 'contact.png'} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
