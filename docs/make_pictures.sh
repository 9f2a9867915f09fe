#!/usr/bin/env bash
# The README's nst-inspect and --report pictures: the commands shown next to them, then each PNG reduced to 256
# colours (adaptive palette, Floyd-Steinberg) so the repository stays small. Needs models/vgg19 (nst-export),
# scikit-image (the units image set) and ../shared/images (tubingen, starry_night, golden_gate, the_scream).
set -euo pipefail
cd "$(dirname "$0")/.."
S=../shared/images
B=.venv/bin
mkdir -p out/docs
t() { local start=$SECONDS; "$@"; echo "took $((SECONDS - start)) s: $*" >&2; }
t $B/nst-inspect units --layer relu1_1 --units 6 --tile 48 -o docs/units-relu1_1.png --json out/docs/units-relu1_1.json
t $B/nst-inspect units --layer relu3_1 --units 6 --tile 64 -o docs/units-relu3_1.png --json out/docs/units-relu3_1.json
t $B/nst-inspect units --layer relu5_1 --units 4 --tile 72 --gradient -o docs/units-relu5_1-gradient.png \
  --json out/docs/units-relu5_1.json
t $B/nst-inspect reconstruct $S/tubingen.jpg $S/starry_night.jpg --cell 120 -o docs/reconstruct.png
t $B/nst-inspect sweep $S/golden_gate.jpg $S/the_scream.jpg --cell 136 -o docs/sweep.png
t $B/nst-run $S/tubingen.jpg $S/starry_night.jpg --size 384 --iterations 200 -o out/docs/tubingen.png --report docs/report.png
# nst-web's page mid-run: the browser test on the demo pair at 256 px, its screenshot 25 s after the preview changed
t env NST_WEB_SIZE=256 NST_WEB_SCREENSHOT=docs/web.png NST_WEB_SHOT_DELAY=25 $B/python -m pytest -q \
  tests/test_web_browser.py
$B/python - docs/units-relu1_1.png docs/units-relu3_1.png docs/units-relu5_1-gradient.png docs/reconstruct.png \
  docs/sweep.png docs/report.png docs/web.png <<'PY'
import sys
from PIL import Image
for path in sys.argv[1:]:
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
    small.save(path, optimize=True)
PY
ls -l docs/*.png
