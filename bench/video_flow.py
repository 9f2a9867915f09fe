"""Which DIS preset for nst.video.flow: endpoint error on known motion vs time per frame pair.

    .venv/bin/python bench/video_flow.py                 # tubingen.jpg at 256 px long side
    .venv/bin/python bench/video_flow.py --size 512 --repeats 9

The second frame is the first moved by a known affine map M (cv2.warpAffine, bicubic): subpixel shifts and a zoom
about the centre. The true flow from frame 1 to frame 2 is then M(q) - q. The endpoint error (EPE, pixels) is the
mean of |flow - truth| over pixels 16 px or more inside the frame whose target stays in the frame. Time: the median
of --repeats calls of optical_flow() (DIS object created in each, as there) on one thread. Needs ../shared/images."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
MOTIONS = {  # name -> (zoom, dx, dy)
    "shift (0.4, 0.3)": (1.0, 0.4, 0.3),
    "shift (2.7, -1.6)": (1.0, 2.7, -1.6),
    "shift (7.5, 3.2)": (1.0, 7.5, 3.2),
    "zoom 1.03": (1.03, 0.0, 0.0),
    "zoom 1.03 + shift (1.5, 1)": (1.03, 1.5, 1.0),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, default=SHARED / "tubingen.jpg")
    ap.add_argument("--size", type=int, default=256, help="long side in pixels")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    if not args.image.is_file():
        print(f"video_flow: skipped: {args.image} is not present on this machine")
        return 0
    import cv2

    from nst.engine import load_image, resize
    from nst.engine.images import fit_long_side
    from nst.video.flow import PRESETS, optical_flow

    cv2.setNumThreads(1)
    img = load_image(args.image)
    a = resize(img, fit_long_side(*img.shape[:2], args.size))
    h, w = a.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    print(f"{args.image.name} at {w}x{h}; EPE in pixels (mean over the interior), time per pair in ms\n")
    print("| preset | " + " | ".join(MOTIONS) + " | mean EPE | ms/pair |")
    print("|---" * (len(MOTIONS) + 3) + "|")
    for name in PRESETS:
        epes = []
        for zoom, dx, dy in MOTIONS.values():
            m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, zoom)
            m[:, 2] += np.array([dx, dy])
            b = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            tx, ty = m[0, 0] * xs + m[0, 1] * ys + m[0, 2], m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
            truth = np.stack([tx - xs, ty - ys], axis=-1)
            inside = (xs >= 16) & (xs < w - 16) & (ys >= 16) & (ys < h - 16)
            inside &= (tx >= 16) & (tx < w - 16) & (ty >= 16) & (ty < h - 16)
            flow = optical_flow(a, np.clip(b, 0, 1), name)
            epes.append(float(np.linalg.norm(flow - truth, axis=-1)[inside].mean()))
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            optical_flow(a, b, name)
            times.append(time.perf_counter() - t0)
        cells = " | ".join(f"{e:.3f}" for e in epes)
        print(f"| {name} | {cells} | {np.mean(epes):.3f} | {1000 * np.median(times):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
