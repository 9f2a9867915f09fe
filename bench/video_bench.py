"""nst-video against frames stylized independently: flicker (warping error), style matched, content kept, time.

    flock /tmp/nst-cpu.lock .venv/bin/python bench/video_bench.py --sweep       # choose the two defaults (one clip)
    flock /tmp/nst-cpu.lock .venv/bin/python bench/video_bench.py               # the table (every clip)

Clips from bench/video_clips.py (pan, zoom, object; 256 px), made in memory; style ../shared/images/starry_night.jpg.
(a) independent: each frame stylized from its own content frame, one stage at the same size with the same iterations
    as nst-video's later frames; (b) nst-video (nst.video.stylize.stylize_video) with its defaults or those given.
Both on the first --frames frames of each clip. Frame 1 of (b) is a still run with --first-iterations (default 120,
nst-run's; coarse to fine is one stage at 256 px); it is computed once per clip and handed to every run as a resumed
frame (stylize_video's `resume`), so a sweep pays for it once; its mean time over the clips is the still run's time.

Metrics, per clip and method:
- E_warp = mean over t of sum c_t ||O_t - warp(O_{t-1})||^2 / sum c_t, flow and c from the INPUT frames
  (nst.video.flow.WarpingError); E_warp10: the same between frames t-10 and t (long-range drift).
- Gram reduction at relu1_1..relu4_1: ||G(photo) - G_S||^2 / ||G(output) - G_S||^2 per frame (the style loss's
  reduction, as bench/quality.py measures the stills), the minimum over frames; the JSON also has the plain distance
  ratio (its square root) as gram_distance_ratio.
- J_content: the content loss (unweighted, relu4_2) of each output against its frame, the mean over frames.
- s/frame: the mean seconds of the frames after the first.
Prints a Markdown table, writes JSON and, per clip, a PNG of 3 consecutive frames (independent row vs nst-video row)
and one of 6 frames across the clip (drift) into --out."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
SHARED = ROOT.parent / "shared" / "images"
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def clip_frames(name: str, frames: int, size: int) -> list[np.ndarray]:
    from video_clips import CLIPS  # bench/video_clips.py

    return list(CLIPS[name](48, size))[:frames]  # the 48-frame clip's first frames: the same motion per frame


class Meter:
    """Gram reductions and content loss of output frames, against the style's Grams at the frames' size."""

    def __init__(self, model, style: np.ndarray, frame_hw: tuple[int, int]):
        from nst.engine.images import resize, to_nchw
        from nst.engine.losses import gram
        from nst.engine.plan import style_size

        self.model, self.gram, self.to_nchw = model, gram, to_nchw
        s = resize(style, style_size(style.shape[:2], frame_hw, 1.0))
        feats = model.features(to_nchw(s), keep_state=False)
        self.targets = {layer: gram(feats[layer]) for layer in LAYERS}

    def errors(self, image: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        feats = self.model.features(self.to_nchw(image), keep_state=False)
        errs = {k: float(np.linalg.norm(self.gram(feats[k]) - self.targets[k])) for k in LAYERS}
        return errs, feats["relu4_2"]

    def measure(self, photos: list[np.ndarray], outputs: list[np.ndarray]) -> dict:
        from nst.engine.losses import content_loss

        per_frame: dict[str, list[float]] = {k: [] for k in LAYERS}
        content = []
        for photo, out in zip(photos, outputs):
            e_photo, f_photo = self.errors(photo)
            e_out, f_out = self.errors(out)
            for k in LAYERS:
                per_frame[k].append(e_photo[k] / max(e_out[k], 1e-12))
            content.append(content_loss(f_out, f_photo)[0])
        # gram_reduction: of the squared distance (the style loss), as bench/quality.py measures the stills;
        # gram_distance_ratio: of the distance itself (its square root)
        squared = {k: [r * r for r in v] for k, v in per_frame.items()}
        return {
            "gram_reduction_min": {k: min(v) for k, v in squared.items()},
            "gram_reduction": squared,
            "gram_distance_ratio_min": {k: min(v) for k, v in per_frame.items()},
            "gram_distance_ratio": per_frame,
            "j_content": float(np.mean(content)),
        }


def warping(photos: list[np.ndarray], outputs: list[np.ndarray], step: int = 1) -> float:
    from nst.video.flow import flow_and_weights, pair_warping_error

    errs = []
    for t in range(step, len(photos)):
        flow, c = flow_and_weights(photos[t - step], photos[t])
        e = pair_warping_error(outputs[t - step], outputs[t], flow, c)
        if math.isfinite(e):
            errs.append(e)
    return float(np.mean(errs)) if errs else math.nan


def run_video(model, photos, style, first, video, cache, style_weight=None) -> tuple[list[np.ndarray], list[float]]:
    from nst.engine import StylizeOptions
    from nst.video.stylize import stylize_video

    size = max(photos[0].shape[:2])
    outs, secs = [], []
    gen = stylize_video(
        model,
        photos,
        [style],
        StylizeOptions(size=size, style_weight=style_weight),
        video_options=video,
        resume=[first],
        target_cache=cache,
    )
    for r in gen:
        outs.append(r.image)
        if not r.resumed:
            secs.append(r.seconds)
    return outs, secs


def run_independent(model, photos, style, iterations, cache, style_weight=None) -> tuple[list[np.ndarray], list[float]]:
    from nst.engine import stylize
    from nst.video.stylize import quantize

    size = max(photos[0].shape[:2])
    outs, secs = [], []
    for photo in photos:
        t0 = time.perf_counter()
        r = stylize(
            model,
            photo,
            [style],
            size=size,
            scales=1,
            iterations=iterations,
            target_cache=cache,
            style_weight=style_weight,
        )
        outs.append(quantize(r.image))
        secs.append(time.perf_counter() - t0)
    return outs, secs


def first_frame(model, photo, style, iterations, cache, style_weight=None) -> tuple[np.ndarray, float]:
    from nst.engine import stylize
    from nst.video.stylize import quantize

    t0 = time.perf_counter()
    r = stylize(
        model,
        photo,
        [style],
        size=max(photo.shape[:2]),
        iterations=iterations,
        target_cache=cache,
        style_weight=style_weight,
    )
    return quantize(r.image), time.perf_counter() - t0


def pictures(out: Path, clip: str, photos, indep, video, title: str) -> None:
    from nst.views.grid import Cell, draw_grid, save_picture

    t = min(len(photos) // 2, len(indep) - 3) if indep else len(photos) // 2
    rows = [[Cell(o, f"frame {t + k + 1}") for k, o in enumerate(indep[t : t + 3])]] if indep else []
    rows.append([Cell(o, f"frame {t + k + 1}") for k, o in enumerate(video[t : t + 3])])
    labels = (["independent"] if indep else []) + ["nst-video"]
    cell = (300, round(300 * photos[0].shape[0] / photos[0].shape[1]))
    save_picture(draw_grid(rows, cell, title=f"{clip}: {title}", row_labels=labels), out / f"video_{clip}_3.png")
    idx = sorted({round(i * (len(video) - 1) / 5) for i in range(6)})
    rows = [[Cell(photos[i], f"input {i + 1}") for i in idx], [Cell(video[i], f"frame {i + 1}") for i in idx]]
    save_picture(
        draw_grid(rows, (200, cell[1] * 2 // 3), title=f"{clip}: across the clip", row_labels=["input", "nst-video"]),
        out / f"video_{clip}_drift.png",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=["pan", "zoom", "object"])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--first-iterations", type=int, default=120, help="frame 1's iterations (still run)")
    ap.add_argument("--frame-iterations", type=int, default=None)
    ap.add_argument("--temporal-weight", type=float, default=None)
    ap.add_argument("--long-term", nargs="*", default=[], help="clips to also run with nst-video --long-term")
    ap.add_argument("--sweep", action="store_true", help="temporal weights x frame iterations on the first clip")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1e7, 1e8, 3e8, 1e9])
    ap.add_argument("--iterations", type=int, nargs="+", default=[5, 10, 20])  # at the default temporal weight
    ap.add_argument("--no-independent", action="store_true")
    ap.add_argument("--style-weight", type=float, help="beta for every run (default: the model's)")
    ap.add_argument(
        "--warp",
        choices=["cubic", "linear"],
        default="cubic",
        help="how nst-video warps the previous output (cubic: the engine's; the metric always uses the engine's)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"video_bench: skipped: {SHARED} is not present on this machine")
        return 0
    from nst.engine import load_image, load_model
    from nst.video.options import VideoOptions

    if args.warp != "cubic":  # the method's warp only: stylize.py imported warp by name, the metric keeps flow.warp
        import functools

        import nst.video.stylize as video_stylize
        from nst.video.flow import warp

        video_stylize.warp = functools.partial(warp, interpolation=args.warp)
    model = load_model(ROOT / "models" / "vgg19", "cpu")
    style = load_image(SHARED / args.style)
    args.out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    defaults = VideoOptions()
    fi = args.frame_iterations or defaults.frame_iterations
    gamma = defaults.temporal_weight if args.temporal_weight is None else args.temporal_weight
    rows, record = [], {"frames": args.frames, "size": args.size, "style": args.style, "clips": {}}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for clip in args.clips[:1] if args.sweep else args.clips:
        photos = clip_frames(clip, args.frames, args.size)
        meter = Meter(model, style, photos[0].shape[:2])
        first, first_s = first_frame(model, photos[0], style, args.first_iterations, cache, args.style_weight)
        print(f"{clip}: frame 1 (still run, {args.first_iterations} iterations) {first_s:.1f} s", flush=True)
        runs: dict[str, tuple] = {}
        if args.sweep:
            configs = [
                (f"gamma {w:g}, {fi} it", VideoOptions(frame_iterations=fi, temporal_weight=w)) for w in args.weights
            ]
            configs += [
                (f"gamma {gamma:g}, {n} it", VideoOptions(frame_iterations=n, temporal_weight=gamma))
                for n in args.iterations
                if n != fi
            ]
        else:
            configs = [("nst-video", VideoOptions(frame_iterations=fi, temporal_weight=gamma))]
            if clip in args.long_term:
                configs.append(("nst-video --long-term", VideoOptions(fi, gamma, long_term=True)))
        if not args.no_independent and not args.sweep:
            runs["independent"] = run_independent(model, photos, style, fi, cache, args.style_weight)
        for name, video in configs:
            runs[name] = run_video(model, photos, style, first, video, cache, args.style_weight)
        entry: dict[str, Any] = {"first_frame_seconds": first_s}
        for name, (outs, secs) in runs.items():
            m = meter.measure(photos, outs)
            later = secs[1:] if name == "independent" else secs
            m.update(e_warp=warping(photos, outs), e_warp10=warping(photos, outs, 10), seconds=float(np.mean(later)))
            m["seconds_per_frame"] = secs
            entry[name] = m
            red = m["gram_reduction_min"]
            rows.append(
                f"| {clip} | {name} | {m['e_warp']:.2e} | {m['e_warp10']:.2e} | "
                + " | ".join(f"{red[k]:.0f}" for k in LAYERS)
                + f" | {m['j_content']:.3g} | {m['seconds']:.1f} |"
            )
            print(rows[-1], flush=True)
        record["clips"][clip] = entry
        if not args.sweep:
            indep = runs.get("independent", ([], []))[0]
            pictures(args.out, clip, photos, indep, runs["nst-video"][0], f"gamma {gamma:g}, {fi} iterations")
    if not args.sweep:
        # frame 1 is a still run at the same size; with the default iterations (120) it is the still run's time
        still = [e["first_frame_seconds"] for e in record["clips"].values()]
        record["still_seconds"] = float(np.mean(still))
        print(f"still run at {args.size} px, {args.first_iterations} iterations: {record['still_seconds']:.1f} s")
    header = "| clip | method | E_warp | E_warp10 | " + " | ".join(LAYERS) + " | J_content | s/frame |"
    print("\n" + header + "\n" + "|---" * (header.count("|") - 1) + "|\n" + "\n".join(rows))
    path = args.out / f"video_bench_{'sweep_' if args.sweep else ''}{stamp}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
